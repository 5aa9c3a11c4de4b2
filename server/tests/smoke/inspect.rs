//! `wasmudf inspect` and `wasmudf check` on every example and hostile component: what
//! they report, and that the CREATE FUNCTION statements they print register the
//! functions on a real server.

use std::process::{Command, Output};

use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio_postgres::NoTls;
use wasmudf_sql_tests::ServerProcess;

fn wasmudf(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmudf"))
        .args(args)
        .output()
        .expect("run wasmudf")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn inspect_json(path: &str) -> Value {
    let out = wasmudf(&["inspect", "--json", path]);
    assert!(
        out.status.success(),
        "inspect {path}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&stdout(&out)).unwrap_or_else(|e| panic!("inspect {path}: {e}"))
}

#[test]
fn inspect_and_check_report_every_component() {
    for (name, kind, path) in wasmudf_udfs::ALL {
        let bytes = std::fs::read(path).unwrap();
        let report = inspect_json(path);
        assert_eq!(report["size"], bytes.len(), "{name}");
        assert_eq!(
            report["sha256"],
            hex::encode(Sha256::digest(&bytes)),
            "{name}"
        );
        let accepted = report["accepted"].as_bool().unwrap();
        if *kind == "example" {
            assert!(accepted, "{name}: {}", report["error"]);
            let functions = report["functions"].as_array().unwrap();
            assert!(!functions.is_empty(), "{name}");
            assert!(report["exports"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "wasmudf:udf/guest@0.1.0"));
        }
        // `check` agrees with `inspect`, and says so with its exit status.
        let check = wasmudf(&["check", path]);
        assert_eq!(check.status.success(), accepted, "check {name}");
        if !accepted {
            let stderr = String::from_utf8_lossy(&check.stderr);
            assert!(
                stderr.starts_with("wasmudf check: the server would refuse "),
                "{name}: {stderr}"
            );
            assert!(stderr.contains("(SQLSTATE "), "{name}: {stderr}");
        }
    }
}

#[test]
fn a_component_that_imports_wasi_is_shown_refused() {
    let path = wasmudf_udfs::path("wasi_fs").unwrap();
    let report = inspect_json(path);
    assert_eq!(report["accepted"], false);
    assert_eq!(report["error"]["sqlstate"], "42P13");
    assert_eq!(report["functions"], Value::Null);
    let imports = report["imports"].as_array().unwrap();
    assert!(imports
        .iter()
        .any(|i| i["name"].as_str().unwrap().starts_with("wasi:") && i["granted"] == false));
    let text = stdout(&wasmudf(&["inspect", path]));
    assert!(
        text.contains("(refused: the server grants no capabilities)"),
        "{text}"
    );
    assert!(text.contains("the server would refuse it: "), "{text}");
    assert!(text.contains("(SQLSTATE 42P13)"), "{text}");
}

#[test]
fn inspect_shows_signatures_and_the_statements_that_register_them() {
    let math = wasmudf_udfs::path("math").unwrap();
    let text = stdout(&wasmudf(&["inspect", math]));
    let sha = hex::encode(Sha256::digest(std::fs::read(math).unwrap()));
    assert!(text.contains(&format!("sha256 {sha}")), "{text}");
    assert!(
        text.contains("  scalar gcd(bigint, bigint) returns bigint: immutable, strict\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "  CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm';\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("SELECT * FROM wasm_load('math.wasm');"),
        "{text}"
    );
    let stats = stdout(&wasmudf(&["inspect", wasmudf_udfs::path("stats").unwrap()]));
    assert!(
        stats.contains("  aggregate geo_mean(double precision) returns double precision: immutable, strict, state ("),
        "{stats}"
    );
    let missing = wasmudf(&["inspect", "/nonexistent/f.wasm"]);
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr)
        .starts_with("wasmudf inspect: /nonexistent/f.wasm: "));
}

/// What `inspect` prints is what a user pastes: every example's statements, run on a
/// server with no functions, register exactly the functions the component describes.
#[tokio::test]
async fn the_printed_statements_register_every_example() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = ServerProcess::start(
        env!("CARGO_BIN_EXE_wasmudf").as_ref(),
        &data,
        &["--no-examples".to_string()],
    )
    .unwrap();
    let (client, conn) = tokio_postgres::connect(&server.url(), NoTls).await.unwrap();
    tokio::spawn(conn);
    let mut expected = 0;
    for (name, kind, path) in wasmudf_udfs::ALL {
        if *kind != "example" {
            continue;
        }
        std::fs::copy(path, data.join("modules").join(format!("{name}.wasm"))).unwrap();
        let report = inspect_json(path);
        for f in report["functions"].as_array().unwrap() {
            let create = f["create"].as_str().unwrap();
            client
                .batch_execute(create)
                .await
                .unwrap_or_else(|e| panic!("{create}: {e:?}"));
            expected += 1;
        }
    }
    let row = client
        .query_one("SELECT count(*) FROM wasm.functions", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), expected);
}
