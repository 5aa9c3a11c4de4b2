//! The host's own work around a guest at load time (compiling, `describe`,
//! installing, restoring) is bounded, cancelable, and never holds up other clients.

use super::*;

const CREATE_STALLED: &str = "CREATE FUNCTION stalled(bigint) RETURNS bigint LANGUAGE wasm \
                              AS 'hostile/stall.wasm'";

/// How many functions the sprawl component defined.
const SPRAWLED: &str = "SELECT count(*) FROM wasm.functions WHERE module = \
                        (SELECT module FROM wasm.functions WHERE name = 'f0')";

/// Fuel without end, so only the deadline or a cancel stops the stalled `describe`.
const UNMETERED: &[&str] = &["--fuel", "1000000000000000", "--timeout", "8s"];

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, NoTls).await.expect("connect");
    tokio::spawn(conn);
    client
}

fn db_error(err: &tokio_postgres::Error) -> &tokio_postgres::error::DbError {
    err.as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {err}"))
}

/// No stalled CREATE or load left a function behind.
async fn assert_nothing_defined(client: &tokio_postgres::Client) {
    let left = query(
        client,
        "SELECT count(*) FROM wasm.functions WHERE name = 'stalled'",
    )
    .await;
    assert_eq!(left, vec![row(&["0"])]);
}

/// Three CREATE FUNCTIONs whose component never finishes describing itself run at
/// once; meanwhile new clients log in and run queries, and the CREATEs are still
/// running when they are done. Each CREATE ends with the guest's deadline (57014)
/// and leaves no function behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_creates_do_not_hold_up_other_clients() {
    let dir = tempfile::tempdir().expect("tempdir");
    let process = start_with_hostile_and(&dir, UNMETERED);
    let url = process.url();
    let mut creates = Vec::new();
    for _ in 0..3 {
        let client = connect(&url).await;
        creates.push(tokio::spawn(async move {
            client.simple_query(CREATE_STALLED).await.map(drop)
        }));
    }
    // Let all three reach the guest.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for i in 0..10 {
        let other = connect(&url).await;
        let rows = query(&other, &format!("SELECT {i} + 1, add_one({i})")).await;
        assert_eq!(
            rows,
            vec![row(&[&(i + 1).to_string(), &(i + 1).to_string()])]
        );
    }
    assert!(
        creates.iter().all(|c| !c.is_finished()),
        "a stalled CREATE ended before the other clients were served"
    );
    for create in creates {
        let err = create.await.expect("task").expect_err("stalled CREATE");
        let db = db_error(&err);
        assert_eq!(db.code().code(), "57014", "{}", db.message());
        assert!(
            db.message().contains("wasm.timeout = 8000ms"),
            "{}",
            db.message()
        );
    }
    let client = connect(&url).await;
    assert_nothing_defined(&client).await;
}

/// `statement_timeout` and a CancelRequest stop a CREATE FUNCTION or a `wasm_load`
/// while the component's load-time code runs: 57014 at once, nothing defined, and the
/// connection goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statement_timeout_and_cancel_stop_loading_a_component() {
    let dir = tempfile::tempdir().expect("tempdir");
    let process = start_with_hostile_and(&dir, UNMETERED);
    let client = connect(&process.url()).await;

    client
        .batch_execute("SET statement_timeout = 300")
        .await
        .expect("set");
    for sql in [
        CREATE_STALLED,
        "SELECT * FROM wasm_load('hostile/stall.wasm')",
    ] {
        let started = std::time::Instant::now();
        let err = client.simple_query(sql).await.expect_err(sql);
        let db = db_error(&err);
        assert_eq!(db.code().code(), "57014", "{sql}: {}", db.message());
        assert_eq!(db.message(), "canceling statement due to statement timeout");
        // Well before the guest's own 8 s deadline.
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{sql}: {:?}",
            started.elapsed()
        );
    }
    client
        .batch_execute("RESET statement_timeout")
        .await
        .expect("reset");

    // A CancelRequest stops a CREATE; pg_cancel_backend stops a wasm_load.
    let creator = connect(&process.url()).await;
    let pid: i32 = creator
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    for sql in [
        CREATE_STALLED,
        "SELECT * FROM wasm_load('hostile/stall.wasm')",
    ] {
        let token = creator.cancel_token();
        let canceller = {
            let client = connect(&process.url()).await;
            let by_request = sql.starts_with("CREATE");
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if by_request {
                    token.cancel_query(NoTls).await.expect("cancel request");
                } else {
                    let done = query(&client, &format!("SELECT pg_cancel_backend({pid})")).await;
                    assert_eq!(done, vec![row(&["t"])]);
                }
            })
        };
        let started = std::time::Instant::now();
        let err = creator.simple_query(sql).await.expect_err(sql);
        canceller.await.expect("canceller");
        let db = db_error(&err);
        assert_eq!(db.code().code(), "57014", "{sql}: {}", db.message());
        assert_eq!(db.message(), "canceling statement due to user request");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{sql}: {:?}",
            started.elapsed()
        );
        // The canceled connection goes on.
        assert_eq!(query(&creator, "SELECT 1").await, vec![row(&["1"])]);
    }
    assert_nothing_defined(&client).await;
}

/// A component that describes 20,000 functions is refused under the default ceiling
/// (54000, naming the setting), and with the ceiling raised it loads, answers, and
/// comes back after a crash, in linear time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_past_the_function_ceiling_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let process = start_with_hostile(&dir);
    let client = connect(&process.url()).await;
    for sql in [
        "CREATE FUNCTION f0(bigint) RETURNS bigint LANGUAGE wasm AS 'hostile/sprawl.wasm'",
        "SELECT * FROM wasm_load('hostile/sprawl.wasm')",
    ] {
        let err = client.simple_query(sql).await.expect_err(sql);
        let db = db_error(&err);
        assert_eq!(db.code().code(), "54000", "{sql}: {}", db.message());
        assert!(
            db.message().contains("20000 functions")
                && db.message().contains("max_functions_per_component = 1000"),
            "{}",
            db.message()
        );
    }
    drop(process);

    let dir = tempfile::tempdir().expect("tempdir");
    let raised = ["--max-functions-per-component", "20000"];
    let process = start_with_hostile_and(&dir, &raised);
    let client = connect(&process.url()).await;
    // The description's size has its own ceiling.
    let sql = "SELECT * FROM wasm_load('hostile/sprawl.wasm')";
    let err = client.simple_query(sql).await.expect_err(sql);
    let db = db_error(&err);
    assert_eq!(db.code().code(), "54000", "{}", db.message());
    assert!(
        db.message()
            .contains("max_description_size = 1048576 bytes"),
        "{}",
        db.message()
    );
    drop(process);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut process = start_with_hostile_and(
        &dir,
        &[raised[0], raised[1], "--max-description-size", "8MB"],
    );
    let client = connect(&process.url()).await;
    let loaded = query(
        &client,
        "SELECT count(*) FROM wasm_load('hostile/sprawl.wasm')",
    )
    .await;
    assert_eq!(loaded, vec![row(&["20000"])]);
    assert_eq!(
        query(&client, &format!("SELECT f0(41), ({SPRAWLED})")).await,
        vec![row(&["41", "20000"])]
    );
    drop(client);
    process.kill_and_restart().unwrap_or_else(|e| panic!("{e}"));
    let client = connect(&process.url()).await;
    assert_eq!(
        query(&client, &format!("SELECT f0(42), ({SPRAWLED})")).await,
        vec![row(&["42", "20000"])]
    );
    // Only f0 has code: another of the 20,000 is a guest error, not a crash.
    let err = client
        .simple_query("SELECT f19999(1)")
        .await
        .expect_err("no code");
    assert_eq!(db_error(&err).code().code(), "38000");
}
