//! Command-line flags and the config file: module size, connections, limit ceilings.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn module_size_limit_comes_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let modules = dir.path().join("modules");
    wasmudf_sql_tests::write_modules_dir(&modules).expect("modules");
    let args: Vec<String> = ["--no-examples", "--max-module-size", "1KB", "--modules-dir"]
        .iter()
        .map(|s| s.to_string())
        .chain([modules.display().to_string()])
        .collect();
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    let err = client
        .simple_query(
            "CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'examples/math.wasm'",
        )
        .await
        .expect_err("too large");
    let db = err.as_db_error().expect("db error");
    assert_eq!(db.code().code(), "42P13", "{}", db.message());
    assert!(
        db.message().contains("above the limit of 1024 bytes"),
        "{}",
        db.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_limit_refuses_with_53300() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args: Vec<String> = ["--no-examples", "--max-connections", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let url = process.url();
    let connect = || tokio_postgres::connect(&url, NoTls);
    let (first, conn) = connect().await.expect("first connection");
    let first_task = tokio::spawn(conn);
    let err = connect().await.err().expect("second connection refused");
    let db = err.as_db_error().expect("db error");
    assert_eq!(db.code().code(), "53300");
    assert_eq!(db.message(), "sorry, too many clients already");
    // The slot frees when the first client leaves.
    drop(first);
    let _ = first_task.await;
    let mut connected = None;
    for _ in 0..50 {
        if let Ok((client, conn)) = connect().await {
            tokio::spawn(conn);
            connected = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let client = connected.expect("a connection after the first left");
    assert_eq!(query(&client, "SELECT 1").await, vec![row(&["1"])]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_settings_apply_and_flags_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("wasmudf.toml");
    // listen is overridden by the runner's own --listen 127.0.0.1:0 (flags win).
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:9\"\nmax-connections = 1\nno_examples = true\nstatement-timeout-is-not-a-setting = 1\n",
    )
    .expect("write");
    let args = vec!["--config".to_string(), config.display().to_string()];
    let err = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .err()
    .expect("unknown setting");
    assert!(
        err.contains("unknown setting \"statement-timeout-is-not-a-setting\""),
        "{err}"
    );
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:9\"\nmax-connections = 1\nno_examples = true\n",
    )
    .expect("write");
    let process = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &dir.path().join("data"),
        &args,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("first connection");
    tokio::spawn(conn);
    let err = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .err()
        .expect("max-connections = 1 from the file");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "53300");
    // no_examples = true: the example functions were not registered.
    let err = client
        .simple_query("SELECT add_one(1)")
        .await
        .expect_err("no examples");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "42883");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_ceilings_come_from_the_command_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let binary: &std::path::Path = env!("CARGO_BIN_EXE_wasmudf").as_ref();
    let args = |extra: &[&str]| -> Vec<String> {
        ["--no-examples"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    let err = ServerProcess::start(
        binary,
        &dir.path().join("bad"),
        &args(&["--memory", "1GB", "--max-memory", "64MB"]),
    )
    .err()
    .expect("default above ceiling");
    assert!(err.contains("above its ceiling"), "{err}");
    let err = ServerProcess::start(binary, &dir.path().join("bad"), &args(&["--stack", "16kB"]))
        .err()
        .expect("stack below the minimum");
    assert!(
        err.contains("--stack: invalid limit: wasm.stack = 16384 bytes is below the minimum"),
        "{err}"
    );
    let process = ServerProcess::start(
        binary,
        &dir.path().join("data"),
        &args(&[
            "--max-memory",
            "64MB",
            "--memory",
            "32MB",
            "--stack",
            "4MB",
            "--max-stack",
            "16MB",
        ]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (client, conn) = tokio_postgres::connect(&process.url(), NoTls)
        .await
        .expect("connect");
    tokio::spawn(conn);
    assert_eq!(query(&client, "SHOW wasm.stack").await, vec![row(&["4MB"])]);
    // (limit, above its ceiling, under it, as SHOW then tells it: a stack is rounded
    // up to a power of two, still within the ceiling).
    for (limit, above, under, shown) in [
        ("memory", "128MB", "48MB", "48MB"),
        ("stack", "32MB", "12MB", "16MB"),
    ] {
        let err = client
            .simple_query(&format!("SET wasm.{limit} = '{above}'"))
            .await
            .expect_err("above the ceiling");
        assert_eq!(err.as_db_error().expect("db error").code().code(), "22023");
        client
            .simple_query(&format!("SET wasm.{limit} = '{under}'"))
            .await
            .expect("under the ceiling");
        assert_eq!(
            query(&client, &format!("SHOW wasm.{limit}")).await,
            vec![row(&[shown])]
        );
    }
}
