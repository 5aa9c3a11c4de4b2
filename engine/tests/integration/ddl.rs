//! CREATE / DROP FUNCTION through the engine's SQL entry point.

use crate::common::{fails_with, ok, open_db, scalar};

// What the slt suite cannot say (ddl.slt has the rest of CREATE / DROP FUNCTION): an
// absolute path, which depends on where the modules directory is; concurrent queries;
// roles other than the administrator.

#[tokio::test]
async fn absolute_paths_inside_the_modules_directory_are_modules_too() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    ok(
        &s,
        &format!(
            "CREATE FUNCTION h(bigint) RETURNS bigint LANGUAGE wasm AS '{}', 'add_one'",
            wasmudf_udfs::MATH
        ),
    )
    .await;
    assert_eq!(scalar(&s, "SELECT h(1)").await, "2");
    let outside = std::env::temp_dir().join("math.wasm");
    fails_with(
        &s,
        &format!(
            "CREATE FUNCTION x(bigint) RETURNS bigint LANGUAGE wasm AS '{}', 'add_one'",
            outside.display()
        ),
        "42501",
        "outside the modules directory",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn or_replace_leaves_running_queries_on_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    ok(
        &s,
        "CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'",
    )
    .await;
    // A query planned (and streaming) before the replacement...
    let mut outs = s
        .execute("SELECT sum(f(value)) FROM generate_series(1, 2000000)")
        .await
        .unwrap();
    let Some(wasmudf_engine::Output::Rows(running)) = outs.pop() else {
        panic!("no rows")
    };
    let other = db.session("bob");
    ok(&other, "CREATE OR REPLACE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'types.wasm', 'echo_i64'").await;
    // ... finishes with the old function, new queries get the new one.
    let batches = wasmudf_engine::collect(running).await.unwrap();
    let old =
        datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0).unwrap();
    assert_eq!(old, (2_000_000u64 * 2_000_001 / 2 + 2_000_000).to_string());
    assert_eq!(scalar(&s, "SELECT f(41)").await, "41");
}

#[tokio::test]
async fn only_administrators_define_functions_and_read_server_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = wasmudf_engine::DatabaseConfig::new(dir.path());
    config.modules_dir = Some(wasmudf_udfs::DIR.into());
    config.admin_roles = Some(vec!["admin".into()]);
    let db = wasmudf_engine::Database::open(config).await.unwrap();
    let admin = db.session("admin");
    let alice = db.session("alice");
    ok(
        &admin,
        "CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'",
    )
    .await;
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "a\n1\n").unwrap();
    for sql in [
        "CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'"
            .to_string(),
        "DROP FUNCTION add_one".to_string(),
        "SELECT * FROM wasm_load('math.wasm')".to_string(),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'",
            csv.display()
        ),
    ] {
        fails_with(&alice, &sql, "42501", "role \"alice\" may not").await;
    }
    // Everyone may call functions and keep their own tables.
    ok(&alice, "CREATE TABLE mine AS SELECT add_one(1) AS v").await;
    assert_eq!(scalar(&alice, "SELECT v FROM mine").await, "2");
    ok(&admin, "DROP FUNCTION add_one").await;
}
