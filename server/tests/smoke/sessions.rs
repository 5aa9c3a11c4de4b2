//! Sessions keep their settings; hostile connections leave the server serving.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_stay_in_their_connection_and_ddl_is_shared() {
    let server = Server::start("isolation");
    let a = server.client().await;
    let b = server.client().await;
    a.batch_execute("SET wasm.fuel = '12345'; SET statement_timeout = '7s'")
        .await
        .expect("set on a");
    assert_eq!(query(&a, "SHOW wasm.fuel").await, vec![row(&["12345"])]);
    assert_eq!(
        query(&a, "SHOW statement_timeout").await,
        vec![row(&["7s"])]
    );
    // b still has the server's defaults.
    assert_ne!(query(&b, "SHOW wasm.fuel").await, vec![row(&["12345"])]);
    assert_eq!(query(&b, "SHOW statement_timeout").await, vec![row(&["0"])]);
    // a's tiny fuel budget applies to a's calls only.
    let err = a
        .simple_query("SELECT gcd(value, 7) FROM generate_series(1, 100000)")
        .await
        .expect_err("out of fuel on a");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "54000");
    assert_eq!(
        query(
            &b,
            "SELECT sum(gcd(value, 7)) FROM generate_series(1, 100000)"
        )
        .await,
        vec![row(&["185710"])]
    );
    // Functions and tables created on one connection are visible on the other.
    a.batch_execute(
        "CREATE FUNCTION twice_gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm \
         AS 'examples/math.wasm', 'gcd'; CREATE TABLE shared AS SELECT 6 AS x",
    )
    .await
    .expect("ddl on a");
    assert_eq!(
        query(&b, "SELECT twice_gcd(x, 4) FROM shared").await,
        vec![row(&["2"])]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_oversized_and_idle_connections_do_not_hurt_the_server() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start("abuse");
    let port = server.port;
    let connect = || tokio::net::TcpStream::connect(("127.0.0.1", port));
    // An idle connection that never sends a byte stays open beside working clients.
    let _idle = connect().await.expect("idle connection");
    // Garbage instead of a startup packet: the server closes that connection.
    let mut garbage = connect().await.expect("connect");
    garbage
        .write_all(b"\x00\x00\x00\x08GARBAGE GARBAGE GARBAGE\r\n\r\n")
        .await
        .expect("write garbage");
    let mut sink = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), garbage.read_to_end(&mut sink)).await;
    assert!(closed.is_ok(), "the server kept a garbage connection open");
    // A startup packet that claims 2 GiB, then nothing: no allocation of that size, and
    // the connection ends when the client goes.
    let mut huge = connect().await.expect("connect");
    huge.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0])
        .await
        .expect("write huge length");
    drop(huge);
    // A logged-in client sending a query message that claims 1 GiB and closing.
    let client = server.client().await;
    let mut raw = connect().await.expect("connect");
    let startup = {
        let mut body = Vec::new();
        body.extend_from_slice(&196608u32.to_be_bytes());
        body.extend_from_slice(b"user\0wasmudf\0\0");
        let mut msg = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        msg.extend(body);
        msg
    };
    raw.write_all(&startup).await.expect("startup");
    raw.write_all(&[b'Q', 0x40, 0, 0, 0])
        .await
        .expect("huge query header");
    drop(raw);
    // The server still serves, and memory did not balloon.
    for _ in 0..3 {
        assert_eq!(query(&client, "SELECT 40 + 2").await, vec![row(&["42"])]);
    }
    let fresh = server.client().await;
    assert_eq!(query(&fresh, "SELECT add_one(1)").await, vec![row(&["2"])]);
    if let Some(rss) = resident_kib(server.process.pid()) {
        assert!(
            rss < 1 << 20,
            "server resident memory {rss} KiB after abuse"
        );
    }
}

/// `pg_cancel_backend` stops another session's statement (57014, the session goes on);
/// `pg_terminate_backend` ends its connection; an unknown pid is `false`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_cancels_and_terminates_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (process, victim) = spin_connection(&dir).await;
    let (admin, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    assert_ne!(
        pid,
        admin
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .expect("pid")
            .get::<_, i32>(0)
    );
    let canceller = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let row = admin
            .query_one(&format!("SELECT pg_cancel_backend({pid})"), &[])
            .await
            .expect("cancel");
        (admin, row.get::<_, bool>(0))
    });
    let err = victim
        .query("SELECT spin($1)", &[&1i64])
        .await
        .expect_err("canceled");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("57014"),
        "{err}"
    );
    let (admin, signaled) = canceller.await.expect("canceller");
    assert!(signaled);
    assert_eq!(query(&victim, "SELECT add_one(1)").await, vec![row(&["2"])]);

    assert_eq!(
        query(&admin, "SELECT pg_cancel_backend(2000000000)").await,
        vec![row(&["f"])]
    );
    assert_eq!(
        query(&admin, &format!("SELECT pg_terminate_backend({pid})")).await,
        vec![row(&["t"])]
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        victim.simple_query("SELECT 1").await.is_err(),
        "the terminated connection is closed"
    );
    assert_eq!(query(&admin, "SELECT 1").await, vec![row(&["1"])]);

    // The terminated client is told why, as PostgreSQL tells it: FATAL 57P01.
    let (victim, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("connect");
    let served = tokio::spawn(conn);
    // The simple protocol returns after ReadyForQuery: the victim is idle when it is
    // terminated. (An extended query returns at CommandComplete, before its Sync is
    // answered; a FATAL then answers that pending Sync, as with PostgreSQL, and the
    // connection task ends without it.)
    let pid = query(&victim, "SELECT pg_backend_pid()").await[0][0]
        .clone()
        .expect("pid");
    assert_eq!(
        query(&admin, &format!("SELECT pg_terminate_backend({pid})")).await,
        vec![row(&["t"])]
    );
    let ended = tokio::time::timeout(Duration::from_secs(5), served)
        .await
        .expect("the connection ends")
        .expect("connection task");
    let err = ended.expect_err("the server ended the connection with an error");
    let db = err.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "57P01", "{db:?}");
    assert_eq!(db.severity(), "FATAL");
    assert_eq!(
        db.message(),
        "terminating connection due to administrator command"
    );
}

/// Found by the `pgwire_messages` fuzz target: pgwire 0.42.1 panics decoding many
/// malformed messages (here a Parse that declares a parameter type it does not carry).
/// The panic ends that connection only: its slot is released (with at most two
/// connections, five such clients in a row still get in), other sessions go on, and
/// the log gets one line per panic, no backtrace.
#[tokio::test]
async fn a_malformed_message_ends_only_its_connection() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = LoggedServer::start(
        dir.path(),
        &[
            "--max-connections".as_ref(),
            "2".as_ref(),
            "--log-level".as_ref(),
            "info".as_ref(),
        ],
    );
    let (port, url) = (server.port, server.url.clone());
    let bystander = server.client().await;
    let startup = {
        let mut body = 196_608u32.to_be_bytes().to_vec();
        body.extend_from_slice(b"user\0wasmudf\0database\0wasmudf\0\0");
        let mut packet = ((body.len() + 4) as u32).to_be_bytes().to_vec();
        packet.extend(body);
        packet
    };
    // Parse: unnamed, "SELECT 1", one parameter type declared, two of its bytes sent.
    let mut parse_body = b"\0SELECT 1\0".to_vec();
    parse_body.extend_from_slice(&1u16.to_be_bytes());
    parse_body.extend_from_slice(&[0, 0]);
    let mut parse = vec![b'P'];
    parse.extend_from_slice(&((parse_body.len() + 4) as u32).to_be_bytes());
    parse.extend(parse_body);
    // A logged-in raw connection; the previous one's slot may take a moment to free.
    let logged_in = || {
        for _ in 0..100 {
            let mut socket = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
            socket
                .set_read_timeout(Some(Duration::from_secs(10)))
                .expect("timeout");
            socket.write_all(&startup).expect("startup");
            let mut seen = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                if seen.windows(6).any(|w| w == b"Z\0\0\0\x05I") {
                    return socket;
                }
                match socket.read(&mut chunk) {
                    Ok(n) if n > 0 => seen.extend_from_slice(&chunk[..n]),
                    _ => break,
                }
            }
            // Refused (53300, too many connections): try again shortly.
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("no connection slot came free");
    };
    for _ in 0..5 {
        let mut socket = logged_in();
        socket.write_all(&parse).expect("parse");
        // The server closes this connection.
        let mut rest = Vec::new();
        let _ = socket.read_to_end(&mut rest);
    }
    assert_eq!(query(&bystander, "SELECT 41 + 1").await, vec![row(&["42"])]);
    let (newcomer, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .expect("a slot is free again");
    tokio::spawn(conn);
    assert_eq!(query(&newcomer, "SELECT 1").await, vec![row(&["1"])]);
    let log = server.stop();
    assert_eq!(
        log.matches("connection ended: serving it panicked").count(),
        5,
        "{log}"
    );
    assert!(!log.contains("stack backtrace"), "{log}");
}
