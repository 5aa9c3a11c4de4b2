//! Restart cost: `Database::open` on a data directory with 100 Wasm functions (two
//! modules), with the compiled artifacts cached (the normal restart) and without
//! them (first start after an upgrade, or a wiped cache).
//!
//! `cargo bench -p wasmudf-engine --bench restart`

// A test or bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use wasmudf_engine::{Database, DatabaseConfig};

fn config(data: &std::path::Path) -> DatabaseConfig {
    let mut config = DatabaseConfig::new(data);
    config.modules_dir = Some(wasmudf_udfs::DIR.into());
    config
}

async fn open_and_call(data: &std::path::Path, all: &str) -> Duration {
    let start = Instant::now();
    let db = Database::open(config(data)).await.expect("open");
    let elapsed = start.elapsed();
    // Every function really is back (not part of the timing).
    let s = db.session("bench");
    s.execute(all).await.expect("call all");
    elapsed
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    {
        let db = Database::open(config(&data)).await.expect("open");
        let s = db.session("bench");
        for i in 0..100 {
            let (module, export) = if i % 2 == 0 {
                ("math.wasm", "add_one")
            } else {
                ("types.wasm", "echo_i64")
            };
            s.execute(&format!("CREATE FUNCTION f{i}(bigint) RETURNS bigint LANGUAGE wasm AS '{module}', '{export}'"))
                .await
                .expect("create");
        }
    }
    let calls: Vec<String> = (0..100).map(|i| format!("f{i}(1)")).collect();
    let all = format!("SELECT {}", calls.join(" + "));
    let mut warm = Vec::new();
    let mut cold = Vec::new();
    for _ in 0..7 {
        warm.push(open_and_call(&data, &all).await);
        for entry in std::fs::read_dir(data.join("artifacts")).expect("artifacts") {
            let path = entry.expect("entry").path();
            if path.extension().is_some_and(|e| e == "cwasm") {
                std::fs::remove_file(path).expect("remove artifact");
            }
        }
        cold.push(open_and_call(&data, &all).await);
    }
    println!(
        "restart with 100 functions (2 modules): cached artifacts {:.1} ms, recompiling {:.1} ms (median of 7)",
        median(warm).as_secs_f64() * 1e3,
        median(cold).as_secs_f64() * 1e3
    );
}
