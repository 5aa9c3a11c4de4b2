//! Crash safety: a process running DDL in a loop is SIGKILLed at random moments;
//! after each kill the catalog opens and is consistent (every function callable, no
//! orphan modules, every table readable, no orphan table directories).

use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::common::{ok, open_db, scalar};

const DIR_VAR: &str = "WASMUDF_CRASH_TEST_DIR";

/// The victim: DDL forever. Runs only when the parent test starts it.
#[tokio::test]
#[ignore = "started by ddl_survives_sigkill_at_any_point"]
async fn ddl_loop_child() {
    let Ok(dir) = std::env::var(DIR_VAR) else {
        return;
    };
    let db = open_db(std::path::Path::new(&dir)).await;
    let s = db.session("victim");
    let start = scalar(&s, "SELECT count(*) FROM wasm.functions").await;
    let mut i: u64 = start.parse::<u64>().unwrap_or(0) * 1000 + 1;
    loop {
        let (module, export) = if i.is_multiple_of(2) {
            ("math.wasm", "add_one")
        } else {
            ("types.wasm", "echo_i64")
        };
        ok(&s, &format!("CREATE OR REPLACE FUNCTION f{i}(bigint) RETURNS bigint LANGUAGE wasm AS '{module}', '{export}'")).await;
        ok(
            &s,
            &format!("CREATE TABLE t{i} AS SELECT value AS v FROM generate_series(1, 1000)"),
        )
        .await;
        ok(&s, &format!("INSERT INTO t{i} VALUES (0)")).await;
        if i > 3 {
            ok(&s, &format!("DROP FUNCTION IF EXISTS f{}", i - 3)).await;
            ok(&s, &format!("DROP TABLE IF EXISTS t{}", i - 3)).await;
        }
        i += 1;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ddl_survives_sigkill_at_any_point() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    for round in 0..8 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash::ddl_loop_child",
                "--ignored",
                "--nocapture",
            ])
            .env(DIR_VAR, &data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the DDL loop");
        let jitter = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos() as u64
            % 700;
        std::thread::sleep(Duration::from_millis(400 + jitter));
        child.kill().expect("SIGKILL");
        child.wait().unwrap();

        let db = open_db(&data).await;
        let s = db.session("checker");
        let names = ok(&s, "SELECT name FROM wasm.functions ORDER BY name").await;
        for name in names
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .map(|l| l.trim_end_matches(" |").trim())
        {
            if name == "name" {
                continue;
            }
            let v = scalar(&s, &format!("SELECT {name}(41)")).await;
            assert!(v == "42" || v == "41", "round {round}: {name}(41) = {v}");
        }
        assert_eq!(
            scalar(&s, "SELECT count(*) FROM wasm.modules WHERE functions = 0").await,
            "0",
            "round {round}: orphan module"
        );
        let tables = ok(&s, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'").await;
        let mut count = 0;
        for t in tables
            .lines()
            .filter_map(|l| l.strip_prefix("| "))
            .map(|l| l.trim_end_matches(" |").trim())
        {
            if t == "table_name" {
                continue;
            }
            count += 1;
            // Readable, and never a half-written file.
            let rows: u64 = scalar(&s, &format!("SELECT count(*) FROM {t}"))
                .await
                .parse()
                .unwrap();
            assert!(
                rows == 1000 || rows == 1001,
                "round {round}: {t} has {rows} rows"
            );
        }
        let dirs = std::fs::read_dir(data.join("tables/public")).map_or(0, |d| d.count());
        assert_eq!(dirs, count, "round {round}: table directories vs tables");
    }
}
