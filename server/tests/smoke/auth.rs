//! Authentication and roles: SCRAM, TLS, the loopback rule.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scram_authentication_accepts_the_password_and_refuses_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args: Vec<String> = [
        "--no-examples",
        "--auth",
        "scram-sha-256",
        "--password",
        "s3cret pass",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let base = process.url();
    let (client, conn) = tokio_postgres::connect(&format!("{base} password='s3cret pass'"), NoTls)
        .await
        .expect("right password");
    tokio::spawn(conn);
    assert_eq!(query(&client, "SELECT 1").await, vec![row(&["1"])]);
    for url in [
        format!("{base} password=wrong"),
        format!(
            "host=127.0.0.1 port={} user=mallory password='s3cret pass'",
            process.port()
        ),
    ] {
        let err = tokio_postgres::connect(&url, NoTls)
            .await
            .err()
            .expect("refused");
        let db = err.as_db_error().unwrap_or_else(|| panic!("{err}"));
        assert_eq!(db.code().code(), "28P01", "{}", db.message());
    }
    // psql with PGPASSWORD.
    let output = psql(process.port())
        .args(["-A", "-t", "-c", "SELECT 6 * 7"])
        .env("PGPASSWORD", "s3cret pass")
        .output()
        .expect("psql is installed");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42");
    // And the server refuses to start with SCRAM but no password.
    let err = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data2"),
        &["--auth".to_string(), "scram-sha-256".to_string()],
    )
    .err()
    .expect("no password, no start");
    assert!(err.contains("needs a password"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_connections_with_psql() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = dir.path().join("server.crt");
    let key = dir.path().join("server.key");
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl is installed");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let args = vec![
        "--no-examples".to_string(),
        "--tls-cert".to_string(),
        cert.display().to_string(),
        "--tls-key".to_string(),
        key.display().to_string(),
    ];
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let conninfo = format!(
        "host=127.0.0.1 port={} user=wasmudf sslmode=require",
        process.port()
    );
    let output = std::process::Command::new("psql")
        .args([
            conninfo.as_str(),
            "-X",
            "-c",
            "\\conninfo",
            "-c",
            "SELECT 6 * 7",
        ])
        .output()
        .expect("psql is installed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("SSL connection"), "{stdout}");
    assert!(stdout.contains("42"), "{stdout}");
    // A bad key file stops the server at startup with a clear message.
    std::fs::write(&key, "not a key").expect("write");
    let err = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data2"),
        &args,
    )
    .err()
    .expect("bad key, no start");
    assert!(err.contains("--tls-key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_the_loopback_rule() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary: &std::path::Path = env!("CARGO_BIN_EXE_wasmudf").as_ref();
    // Trust on a non-loopback address is refused; with a password it is SCRAM.
    let open = ["--listen", "0.0.0.0:0", "--no-examples"].map(String::from);
    let err = ServerProcess::start(binary, &dir.path().join("open"), &open)
        .err()
        .expect("no authentication on 0.0.0.0");
    assert!(err.contains("refusing to listen on 0.0.0.0"), "{err}");
    let mut with_password = open.to_vec();
    with_password.extend(["--password".to_string(), "pw".to_string()]);
    let process = ServerProcess::start(binary, &dir.path().join("scram"), &with_password)
        .unwrap_or_else(|e| panic!("{e}"));
    let err = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .err()
        .expect("a password is required");
    // The server asked for a password the client does not have.
    assert!(format!("{err:?}").contains("password missing"), "{err:?}");
    let (client, conn) = tokio_postgres::connect(&format!("{} password=pw", process.url()), NoTls)
        .await
        .expect("with the password");
    tokio::spawn(conn);
    assert_eq!(
        query(&client, "SELECT current_user").await,
        vec![row(&["wasmudf"])]
    );
    drop(process);
    // On loopback with trust, other roles log in but may not define functions.
    let server = Server::start("roles");
    let (alice, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={} user=alice", server.port),
        NoTls,
    )
    .await
    .expect("alice logs in");
    tokio::spawn(conn);
    assert_eq!(
        query(&alice, "SELECT add_one(41), current_user").await,
        vec![row(&["42", "alice"])]
    );
    for sql in [
        "CREATE FUNCTION mine(bigint) RETURNS bigint LANGUAGE wasm AS 'examples/math.wasm', 'add_one'",
        "DROP FUNCTION add_one",
        "SELECT * FROM wasm_load('examples/math.wasm')",
    ] {
        let err = alice.simple_query(sql).await.expect_err(sql);
        let db = err.as_db_error().expect("db error");
        assert_eq!(db.code().code(), "42501", "{sql}: {}", db.message());
        assert!(db.message().contains("role \"alice\""), "{}", db.message());
    }
    assert_eq!(
        query(
            &alice,
            "CREATE TABLE notes AS SELECT 1 AS n; SELECT n FROM notes"
        )
        .await,
        vec![row(&["1"])]
    );
}
