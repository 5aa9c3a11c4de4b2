//! What survives a restart: functions, schemas, tables and their data, views,
//! external tables; and what a restart cleans up.

use crate::common::{fails_with, ok, open_db, scalar, squash};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_comes_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("cities.csv");
    std::fs::write(&csv, "name,population\nParis,2102650\nLyon,522250\n").unwrap();
    {
        let db = open_db(&dir.path().join("data")).await;
        let s = db.session("alice");
        ok(&s, "CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm IMMUTABLE STRICT AS 'math.wasm', 'gcd'").await;
        ok(&s, "CREATE FUNCTION f(text) RETURNS text LANGUAGE wasm SET wasm.fuel = '123456789' SET wasm.stack = '2MB' AS 'strings.wasm', 'reverse_text'").await;
        ok(
            &s,
            "CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'",
        )
        .await;
        // 30000 levels of recursion need about 1.4MB of stack: more than the default.
        ok(&s, "CREATE FUNCTION deep(bigint) RETURNS bigint LANGUAGE wasm SET wasm.stack = '2MB' AS 'recursion.wasm', 'recurse_to'").await;
        assert_eq!(scalar(&s, "SELECT deep(30000) < 0").await, "true");
        assert_eq!(
            ok(&s, "CREATE TABLE t (a bigint, s text)").await,
            "CREATE TABLE"
        );
        assert_eq!(
            ok(
                &s,
                "INSERT INTO t VALUES (12, 'abc'), (18, 'xyz'), (NULL, NULL)"
            )
            .await,
            "INSERT 0 3"
        );
        assert_eq!(
            ok(
                &s,
                "INSERT INTO t SELECT a * 10, s FROM t WHERE a IS NOT NULL"
            )
            .await,
            "INSERT 0 2"
        );
        assert_eq!(
            ok(&s, "CREATE TABLE doubled AS SELECT a * 2 AS a2 FROM t").await,
            "SELECT 5"
        );
        ok(&s, "CREATE SCHEMA sales").await;
        ok(&s, "CREATE TABLE sales.orders AS VALUES (1, 'x'), (2, 'y')").await;
        ok(&s, &format!("CREATE EXTERNAL TABLE cities STORED AS CSV LOCATION '{}' OPTIONS ('format.has_header' 'true')", csv.display())).await;
        ok(
            &s,
            "CREATE VIEW v AS SELECT f(s) AS r, gcd(a, 4) AS g FROM t WHERE a < 100",
        )
        .await;
        ok(&s, "CREATE TABLE gone (x int)").await;
        ok(&s, "DROP TABLE gone").await;
    }
    let db = open_db(&dir.path().join("data")).await;
    let s = db.session("bob");
    assert_eq!(scalar(&s, "SELECT gcd(1071, 462)").await, "21");
    assert_eq!(
        scalar(&s, "SELECT f('abc') || CAST(f(1) AS text)").await,
        "cba2"
    );
    let listed = ok(
        &s,
        "SELECT name, arguments, fuel, stack, owner FROM wasm.functions ORDER BY name, arguments",
    )
    .await;
    assert!(
        squash(&listed).contains("| f | text | 123456789 | 2MB | alice |"),
        "{listed}"
    );
    // The stored stack is in effect, not only listed.
    assert_eq!(scalar(&s, "SELECT deep(30000) < 0").await, "true");
    let rows = ok(&s, "SELECT a, s FROM t ORDER BY a NULLS LAST").await;
    assert!(squash(&rows).contains("| 180 | xyz |"), "{rows}");
    assert_eq!(scalar(&s, "SELECT count(*) FROM t").await, "5");
    assert_eq!(scalar(&s, "SELECT sum(a2) FROM doubled").await, "660");
    assert_eq!(scalar(&s, "SELECT count(*) FROM sales.orders").await, "2");
    assert_eq!(
        scalar(&s, "SELECT sum(population) FROM cities").await,
        "2624900"
    );
    let view = ok(&s, "SELECT r, g FROM v ORDER BY g").await;
    assert!(squash(&view).contains("| cba | 4 |"), "{view}");
    fails_with(&s, "SELECT * FROM gone", "42P01", "gone").await;
    // The dropped table's directory is gone, the live ones remain.
    let dirs: Vec<_> = std::fs::read_dir(dir.path().join("data/tables/public"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(dirs.iter().any(|d| d.starts_with("t-")), "{dirs:?}");
    assert!(!dirs.iter().any(|d| d.starts_with("gone-")), "{dirs:?}");
    // Data written after the restart persists too.
    ok(&s, "INSERT INTO t VALUES (7, 'q')").await;
    drop(s);
    drop(db);
    let db = open_db(&dir.path().join("data")).await;
    let s = db.session("carol");
    assert_eq!(scalar(&s, "SELECT count(*) FROM t").await, "6");
}

/// `(artifact)` of every module in `wasm.modules`, sorted and joined.
async fn artifacts(s: &wasmudf_engine::Session) -> String {
    scalar(
        s,
        "SELECT string_agg(artifact, ',' ORDER BY artifact) FROM wasm.modules",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_reuses_compiled_artifacts_and_recompiles_corrupt_ones() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // 100 functions over two modules.
    let calls: Vec<String> = (0..100).map(|i| format!("f{i}(1)")).collect();
    let all = format!("SELECT {}", calls.join(" + "));
    {
        let db = open_db(&data).await;
        let s = db.session("alice");
        for i in 0..100 {
            let (module, export) = if i % 2 == 0 {
                ("math.wasm", "add_one")
            } else {
                ("types.wasm", "echo_i64")
            };
            ok(&s, &format!("CREATE FUNCTION f{i}(bigint) RETURNS bigint LANGUAGE wasm AS '{module}', '{export}'")).await;
        }
        assert_eq!(scalar(&s, &all).await, "150");
        assert_eq!(artifacts(&s).await, "compiled,compiled");
    }
    let artifact_files = || {
        std::fs::read_dir(data.join("artifacts"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e != "key"))
            .collect::<Vec<_>>()
    };
    let before: Vec<(std::path::PathBuf, Vec<u8>)> = artifact_files()
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    assert_eq!(before.len(), 2, "{before:?}");
    {
        let db = open_db(&data).await;
        let s = db.session("alice");
        assert_eq!(scalar(&s, &all).await, "150");
        assert_eq!(artifacts(&s).await, "cached,cached");
    }
    // Nothing was rewritten by a restart that reused the artifacts.
    for (path, bytes) in &before {
        assert_eq!(&std::fs::read(path).unwrap(), bytes, "{}", path.display());
    }
    // Flip a byte in the middle of each artifact: both are rejected and recompiled,
    // never run, and the functions work.
    for (path, bytes) in &before {
        let mut corrupt = bytes.clone();
        let mid = corrupt.len() / 2;
        corrupt[mid] ^= 0x55;
        std::fs::write(path, corrupt).unwrap();
    }
    {
        let db = open_db(&data).await;
        let s = db.session("alice");
        assert_eq!(artifacts(&s).await, "recompiled,recompiled");
        assert_eq!(scalar(&s, &all).await, "150");
    }
    for (path, bytes) in &before {
        assert_eq!(
            &std::fs::read(path).unwrap(),
            bytes,
            "a recompiled artifact replaces the corrupt one: {}",
            path.display()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parquet_and_json_external_tables_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let json = dir.path().join("rows.json");
    std::fs::write(&json, "{\"a\": 1, \"s\": \"x\"}\n{\"a\": 5, \"s\": null}\n").unwrap();
    let parquet = dir.path().join("copy.parquet");
    {
        let db = open_db(&data).await;
        let s = db.session("alice");
        ok(
            &s,
            "CREATE TABLE src AS SELECT value AS v FROM generate_series(1, 10)",
        )
        .await;
        // A Parquet file the engine wrote, used as someone else's data file.
        let written = walk(&data.join("tables"))
            .into_iter()
            .find(|p| p.extension().is_some_and(|e| e == "parquet"))
            .expect("a parquet file under tables/");
        std::fs::copy(&written, &parquet).unwrap();
        ok(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE p STORED AS PARQUET LOCATION '{}'",
                parquet.display()
            ),
        )
        .await;
        ok(
            &s,
            &format!(
                "CREATE EXTERNAL TABLE j (a BIGINT, s TEXT) STORED AS JSON LOCATION '{}'",
                json.display()
            ),
        )
        .await;
        ok(
            &s,
            "CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'",
        )
        .await;
    }
    let db = open_db(&data).await;
    let s = db.session("alice");
    let total: i64 = scalar(&s, "SELECT sum(add_one(v)) FROM p")
        .await
        .parse()
        .unwrap();
    let rows_in_copy: i64 = scalar(&s, "SELECT count(*) FROM p").await.parse().unwrap();
    assert!(rows_in_copy >= 1, "{rows_in_copy}");
    assert!(total > rows_in_copy, "{total}");
    assert_eq!(
        scalar(&s, "SELECT sum(add_one(a)) FROM j WHERE s IS NULL").await,
        "6"
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `CREATE OR REPLACE TABLE` swaps tables only once the new one is filled and
/// committed: it may read the table it replaces, a failure keeps the old table and its
/// files, and a success leaves exactly one directory for the table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_or_replace_table_keeps_the_old_table_until_the_new_one_is_committed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let table_dirs = || -> Vec<String> {
        std::fs::read_dir(data.join("tables/public"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|d| d.starts_with("rep-"))
            .collect()
    };
    {
        let db = open_db(&data).await;
        let s = db.session("alice");
        ok(
            &s,
            "CREATE TABLE rep AS SELECT * FROM (VALUES (1), (2), (3)) v(n)",
        )
        .await;
        ok(
            &s,
            "CREATE OR REPLACE TABLE rep AS SELECT n * 10 AS n FROM rep WHERE n > 1",
        )
        .await;
        assert_eq!(scalar(&s, "SELECT sum(n) FROM rep").await, "50");
        assert_eq!(table_dirs().len(), 1, "{:?}", table_dirs());
        // Refused before anything is touched, and a failing fill changes nothing.
        fails_with(
            &s,
            "CREATE OR REPLACE TABLE rep AS SELECT x.n, y.n FROM rep x JOIN rep y ON x.n = y.n",
            "42701",
            "specified more than once",
        )
        .await;
        fails_with(
            &s,
            "CREATE OR REPLACE TABLE rep AS SELECT CAST(n / (n - 20) AS BIGINT) AS n FROM rep",
            "22012",
            "",
        )
        .await;
        assert_eq!(scalar(&s, "SELECT sum(n) FROM rep").await, "50");
        assert_eq!(table_dirs().len(), 1, "{:?}", table_dirs());
    }
    let db = open_db(&data).await;
    let s = db.session("alice");
    assert_eq!(scalar(&s, "SELECT sum(n) FROM rep").await, "50");
    assert_eq!(table_dirs().len(), 1, "{:?}", table_dirs());
}

/// The compiled artifacts in the data directory (not the cache's key).
fn artifact_files(data: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(data.join("artifacts"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "artifact.key")
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_modules_a_function_uses_keep_an_artifact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let math = {
        let db = open_db(&data).await;
        let s = db.session("alice");
        // Refused before compiling: nothing is cached, and only what is refused is named.
        let started = std::time::Instant::now();
        let (code, msg) = crate::common::fails(
            &s,
            "CREATE FUNCTION snoop(bigint) RETURNS bigint LANGUAGE wasm AS 'wasi_fs.wasm'",
        )
        .await;
        assert_eq!(code, "42P13", "{msg}");
        assert!(msg.contains("wasi:filesystem/preopens"), "{msg}");
        assert!(!msg.contains("wasmudf:udf/types@"), "{msg}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(artifact_files(&data), Vec::<String>::new());
        // Compiled, then refused for its declaration: its artifact goes too.
        fails_with(
            &s,
            "CREATE FUNCTION gcd(bigint, bigint) RETURNS text LANGUAGE wasm AS 'math.wasm'",
            "42P13",
            "returns bigint",
        )
        .await;
        assert_eq!(artifact_files(&data), Vec::<String>::new());

        ok(
            &s,
            "CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'",
        )
        .await;
        let math = artifact_files(&data);
        assert_eq!(math.len(), 1, "{math:?}");
        ok(
            &s,
            "CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'types.wasm', 'echo_i64'",
        )
        .await;
        assert_eq!(artifact_files(&data).len(), 2);
        // Replacing the only function of a module drops the module's artifact.
        ok(&s, "CREATE OR REPLACE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'").await;
        assert_eq!(artifact_files(&data), math);
        ok(
            &s,
            "CREATE FUNCTION g(bigint) RETURNS bigint LANGUAGE wasm AS 'types.wasm', 'echo_i64'",
        )
        .await;
        ok(&s, "DROP FUNCTION g").await;
        assert_eq!(artifact_files(&data), math);
        assert_eq!(scalar(&s, "SELECT f(gcd(12, 18))").await, "7");
        math
    };
    // What a crash or an older server left: swept at startup.
    std::fs::write(data.join("artifacts/00ff-0123456789abcdef.cwasm"), b"old").unwrap();
    std::fs::write(data.join("artifacts/00ff-0123.tmp4242"), b"half").unwrap();
    let (hash, _) = math[0].split_once('-').unwrap();
    std::fs::write(
        data.join(format!("artifacts/{hash}-0000000000000000.cwasm")),
        b"other wasmtime",
    )
    .unwrap();
    let db = open_db(&data).await;
    let s = db.session("alice");
    assert_eq!(artifact_files(&data), math);
    assert_eq!(artifacts(&s).await, "cached");
    assert_eq!(scalar(&s, "SELECT f(gcd(12, 18))").await, "7");
    // Dropping the last function leaves an empty cache.
    ok(&s, "DROP FUNCTION f").await;
    ok(&s, "DROP FUNCTION gcd").await;
    assert_eq!(artifact_files(&data), Vec::<String>::new());
    assert!(data.join("artifacts/artifact.key").exists());
}
