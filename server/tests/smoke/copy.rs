//! COPY FROM STDIN / TO STDOUT in CSV and text, and psql's \\copy.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_loads_and_exports_csv_and_text() {
    use futures::{SinkExt, TryStreamExt};

    let server = Server::start("copy");
    let client = server.client().await;
    client
        .simple_query(
            "CREATE TABLE people (id bigint, name text, born date, score double precision)",
        )
        .await
        .expect("create");
    // CSV with a header, a quoted delimiter, an unquoted empty field (NULL).
    let sink = client
        .copy_in("COPY people FROM STDIN WITH (FORMAT csv, HEADER true)")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"id,name,born,score\n1,Ada Lovelace,1815-12-10,9.5\n2,\"Turing, Alan\",1912-06-23,\n",
    ))
    .await
    .expect("send");
    sink.send(bytes::Bytes::from_static(b"3,,1906-12-09,7.25\n"))
        .await
        .expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 3);
    // Text format into a subset of the columns; the rest are NULL.
    let sink = client
        .copy_in("COPY people (name, id) FROM STDIN")
        .await
        .expect("copy in text");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"Grace Hopper\t4\n\\N\t5\n"))
        .await
        .expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 2);
    assert_eq!(
        query(
            &client,
            "SELECT id, name, initials(name), CAST(born AS TEXT), score FROM people ORDER BY id"
        )
        .await,
        vec![
            row(&["1", "Ada Lovelace", "AL", "1815-12-10", "9.5"]),
            vec![
                Some("2".into()),
                Some("Turing, Alan".into()),
                Some("TA".into()),
                Some("1912-06-23".into()),
                None
            ],
            vec![
                Some("3".into()),
                None,
                None,
                Some("1906-12-09".into()),
                Some("7.25".into())
            ],
            vec![
                Some("4".into()),
                Some("Grace Hopper".into()),
                Some("GH".into()),
                None,
                None
            ],
            vec![Some("5".into()), None, None, None, None],
        ]
    );
    // Bad data fails the whole COPY with 22P02 and adds nothing.
    let sink = client
        .copy_in("COPY people (id) FROM STDIN")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"6\nseven\n"))
        .await
        .expect("send");
    let err = sink.finish().await.expect_err("bad integer");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "22P02");
    assert_eq!(
        query(&client, "SELECT count(*) FROM people").await,
        vec![row(&["5"])]
    );
    for (sql, code) in [
        ("COPY nowhere FROM STDIN", "42P01"),
        ("COPY people (nope) FROM STDIN", "42703"),
        ("COPY people FROM '/etc/passwd'", "42501"),
        ("COPY people TO '/tmp/out.csv'", "42501"),
    ] {
        let err = client.simple_query(sql).await.expect_err(sql);
        assert_eq!(
            err.as_db_error().expect("db error").code().code(),
            code,
            "{sql}"
        );
    }
    // Out, through a Wasm function, as CSV with a header.
    let out: Vec<bytes::Bytes> = client
        .copy_out("COPY (SELECT id, initials(name) AS i FROM people ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)")
        .await
        .expect("copy out")
        .try_collect()
        .await
        .expect("copy data");
    let text: String = out.iter().map(|b| String::from_utf8_lossy(b)).collect();
    assert_eq!(text, "id,i\n1,AL\n2,TA\n3,\n4,GH\n5,\n");
    // psql's \copy, both ways.
    let csv = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(csv.path(), "10,\"Katherine Johnson\",1918-08-26,10\n").expect("write csv");
    let psql = |command: String| {
        psql(server.port)
            .args(["-A", "-t", "-c"])
            .arg(command)
            .output()
            .expect("psql is installed")
    };
    let loaded = psql(format!(
        "\\copy people FROM '{}' WITH (FORMAT csv)",
        csv.path().display()
    ));
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&loaded.stdout).trim(), "COPY 1");
    let exported =
        psql("\\copy (SELECT initials(name) FROM people WHERE id = 10) TO STDOUT".into());
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&exported.stdout).trim(), "KJ");
}

/// One COPY FROM STDIN may send at most `--max-copy-size`: past it the data is dropped
/// as it arrives (the server's memory stays flat however much the client sends), the
/// COPY ends with 54000 naming the limit, nothing is loaded, and the connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_from_stdin_is_bounded() {
    use futures::SinkExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let process = start_with_hostile_and(&dir, &["--max-copy-size", "1MB"]);
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    client
        .batch_execute("CREATE TABLE lines (id bigint, line text)")
        .await
        .expect("create");
    let before = resident_kib(process.pid());
    let sink = client
        .copy_in("COPY lines FROM STDIN")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    let chunk: String = (0..1000)
        .map(|i| format!("{i}\t{}\n", "x".repeat(60)))
        .collect();
    let chunk = bytes::Bytes::from(chunk);
    let mut sent = 0usize;
    while sent < 128 << 20 {
        sink.send(chunk.clone()).await.expect("send");
        sent += chunk.len();
    }
    let err = sink.finish().await.expect_err("past the limit");
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(db.code().code(), "54000", "{}", db.message());
    assert!(
        db.message().contains("max_copy_size = 1048576 bytes"),
        "{}",
        db.message()
    );
    if let (Some(before), Some(after)) = (before, resident_kib(process.pid())) {
        assert!(
            after < before + (64 << 10),
            "the server grew from {before} KiB to {after} KiB for a refused COPY"
        );
    }
    assert_eq!(
        query(&client, "SELECT count(*) FROM lines").await,
        vec![row(&["0"])]
    );
    // Under the limit, the same connection loads as usual.
    let sink = client
        .copy_in("COPY lines FROM STDIN")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"1\tone\n2\ttwo\n"))
        .await
        .expect("send");
    assert_eq!(sink.finish().await.expect("finish"), 2);
}

/// bytea columns read COPY fields as bytea's text form (`\x...` hex, as PostgreSQL's
/// COPY does), in text and CSV; a malformed one names its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_reads_bytea_as_postgresql_does() {
    use futures::SinkExt;

    let server = Server::start("copy-bytea");
    let client = server.client().await;
    client
        .batch_execute("CREATE TABLE blobs (id bigint, b bytea)")
        .await
        .expect("create");
    for (sql, data) in [
        ("COPY blobs FROM STDIN", &b"1\t\\\\x00ff10\n2\t\\N\n"[..]),
        (
            "COPY blobs FROM STDIN WITH (FORMAT csv)",
            &b"3,\\x4142\n"[..],
        ),
    ] {
        let sink = client.copy_in(sql).await.expect("copy in");
        futures::pin_mut!(sink);
        sink.send(bytes::Bytes::from_static(data))
            .await
            .expect("send");
        sink.finish().await.expect("finish");
    }
    assert_eq!(
        query(
            &client,
            "SELECT id, encode(b, 'hex') FROM blobs ORDER BY id"
        )
        .await,
        vec![
            row(&["1", "00ff10"]),
            vec![Some("2".into()), None],
            row(&["3", "4142"]),
        ]
    );
    let sink = client
        .copy_in("COPY blobs FROM STDIN WITH (FORMAT csv)")
        .await
        .expect("copy in");
    futures::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(b"4,\\x41\n5,\\xzz\n"))
        .await
        .expect("send");
    let err = sink.finish().await.expect_err("bad hex");
    let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
    assert_eq!(db.code().code(), "22P02", "{}", db.message());
    assert!(db.message().contains("line 2"), "{}", db.message());
}
