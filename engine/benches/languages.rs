//! The other guest languages against the Rust example, in one run: `CREATE FUNCTION`
//! cold (a baseline compile, and when the optimized code takes over; and with the
//! optimizing compile first, as before tiering) and after a restart (cached artifact),
//! and `SELECT sum(f(x))` over a table, per row, next to the built-in `x + 1` and the
//! Rust component, every query on optimized code.
//!
//! The components come from `wasmudf build` (`cargo test --test slt -- languages`
//! builds every example into `target/udfs-lang/`); a language not built is skipped.
//!
//! `cargo bench -p wasmudf-engine --bench languages [-- ROWS]`

// A test or bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, Int64Array};
use wasmudf_engine::{collect, Database, DatabaseConfig, Output, Session};

fn config(data: &Path) -> DatabaseConfig {
    let mut config = DatabaseConfig::new(data.join("data"));
    config.modules_dir = Some(data.join("modules"));
    config
}

/// Waits until every loaded module runs optimized code (`wasm.modules.code`);
/// returns how long that took.
async fn wait_optimized(s: &Session) -> Duration {
    let start = Instant::now();
    loop {
        let mut baseline = 0;
        for output in s
            .execute("SELECT count(*) FROM wasm.modules WHERE code = 'baseline'")
            .await
            .unwrap()
        {
            if let Output::Rows(rows) = output {
                for batch in collect(rows).await.unwrap() {
                    let counts = batch
                        .column(0)
                        .as_any()
                        .downcast_ref::<Int64Array>()
                        .unwrap();
                    baseline += (0..counts.len()).map(|i| counts.value(i)).sum::<i64>();
                }
            }
        }
        if baseline == 0 {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "optimizing compile never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn built(language: &str, name: &str) -> Option<PathBuf> {
    let path = Path::new(wasmudf_udfs::DIR)
        .with_file_name("udfs-lang")
        .join(language)
        .join(format!("{name}.wasm"));
    path.exists().then_some(path)
}

/// Runs `sql` to the end (every result set read).
async fn run(s: &Session, sql: &str) {
    for output in s.execute(sql).await.unwrap() {
        if let Output::Rows(rows) = output {
            collect(rows).await.unwrap();
        }
    }
}

async fn timed(s: &Session, sql: &str) -> Duration {
    let start = Instant::now();
    run(s, sql).await;
    start.elapsed()
}

async fn median_query(s: &Session, sql: &str, runs: usize) -> Duration {
    let mut v = Vec::new();
    for _ in 0..runs {
        v.push(timed(s, sql).await);
    }
    v.sort();
    v[v.len() / 2]
}

fn ns_per_row(d: Duration, rows: u64) -> f64 {
    d.as_secs_f64() * 1e9 / rows as f64
}

fn label(language: &str) -> &'static str {
    match language {
        "c" => "C",
        "go" => "Go",
        _ => "JS",
    }
}

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000_000);
    let Some(python) = built("python", "math_py") else {
        println!("python: not built (run `cargo test --test slt -- languages` or `wasmudf build`)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    std::fs::create_dir_all(data.join("modules/python")).unwrap();
    std::fs::copy(&python, data.join("modules/python/math_py.wasm")).unwrap();
    std::fs::copy(
        wasmudf_udfs::path("math").unwrap(),
        data.join("modules/math.wasm"),
    )
    .unwrap();

    // CREATE cold: nothing cached (a fresh data directory, a fresh engine). First as
    // it was before tiering, the optimizing compile first, in a data directory of its own.
    let create_sql = "CREATE FUNCTION py_add_one_batch(bigint) RETURNS bigint LANGUAGE wasm AS 'python/math_py.wasm'";
    let optimized_first = {
        let mut untiered = config(&data);
        untiered.data_dir = data.join("untiered");
        untiered.engine.baseline_compile_min_size = None;
        let db = Database::open(untiered).await.unwrap();
        timed(&db.session("bench"), create_sql).await
    };
    let (create_cold, optimized_after) = {
        let db = Database::open(config(&data)).await.unwrap();
        let s = db.session("bench");
        let create = timed(&s, create_sql).await;
        // The restarts below should find the optimized artifact cached.
        (create, create + wait_optimized(&s).await)
    };
    // A restart: open (restoring the function from its cached artifact) and call it.
    let mut restarts = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let db = Database::open(config(&data)).await.unwrap();
        let s = db.session("bench");
        run(&s, "SELECT py_add_one_batch(1)").await;
        restarts.push(start.elapsed());
    }
    restarts.sort();
    println!(
        "python CREATE FUNCTION cold: {:.2} s (baseline code; optimized code runs {:.2} s after the CREATE began; optimizing compile first: {:.2} s)",
        create_cold.as_secs_f64(),
        optimized_after.as_secs_f64(),
        optimized_first.as_secs_f64()
    );
    println!(
        "python restart with it cached, open + first call: {:.3} s (median of 5)",
        restarts[2].as_secs_f64()
    );

    // The other languages: each example's per-row and batch add_one, and what its
    // first CREATE costs (compiling the component; nothing is cached yet).
    let compiled: Vec<(&str, [&str; 2])> = [
        ("c", "math_c", ["c_add_one", "c_add_one_batch"]),
        ("go", "math_go", ["go_add_one", "go_add_one_batch"]),
        ("js", "math_js", ["js_add_one", "js_add_one_batch"]),
    ]
    .into_iter()
    .filter_map(|(language, module, functions)| {
        let path = built(language, module)?;
        std::fs::create_dir_all(data.join("modules").join(language)).unwrap();
        std::fs::copy(
            &path,
            data.join("modules")
                .join(language)
                .join(format!("{module}.wasm")),
        )
        .unwrap();
        Some((language, functions))
    })
    .collect();
    let db = Database::open(config(&data)).await.unwrap();
    let s = db.session("bench");
    for (language, functions) in &compiled {
        for (i, f) in functions.iter().enumerate() {
            let module = format!("{language}/math_{language}.wasm");
            let create = timed(
                &s,
                &format!("CREATE FUNCTION {f}(bigint) RETURNS bigint LANGUAGE wasm AS '{module}'"),
            )
            .await;
            if i == 0 {
                let optimized = create + wait_optimized(&s).await;
                println!(
                    "{} CREATE FUNCTION cold: {:.2} s (optimized code after {:.2} s)",
                    label(language),
                    create.as_secs_f64(),
                    optimized.as_secs_f64()
                );
            }
        }
    }
    for sql in [
        "CREATE FUNCTION py_add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'python/math_py.wasm'"
            .into(),
        "CREATE FUNCTION add_one_batch(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'".into(),
        format!("CREATE TABLE t AS SELECT value AS x FROM generate_series(1, {rows})"),
    ] {
        run(&s, &sql).await;
    }
    wait_optimized(&s).await;
    // Warm every instance and the table.
    let warm = ["py_add_one_batch", "add_one_batch", "py_add_one"]
        .into_iter()
        .chain(compiled.iter().flat_map(|(_, fs)| fs.iter().copied()));
    for f in warm {
        timed(&s, &format!("SELECT sum({f}(x)) FROM t WHERE x < 10000")).await;
    }
    let builtin = median_query(&s, "SELECT sum(x + 1) FROM t", 5).await;
    let rust = median_query(&s, "SELECT sum(add_one_batch(x)) FROM t", 5).await;
    let mut compiled_figures = Vec::new();
    for (language, functions) in &compiled {
        for f in functions {
            let d = median_query(&s, &format!("SELECT sum({f}(x)) FROM t"), 5).await;
            compiled_figures.push((*language, *f, d));
        }
    }
    let py_batch = median_query(&s, "SELECT sum(py_add_one_batch(x)) FROM t", 3).await;
    let per_row_rows = rows.min(1_000_000);
    let py_row = median_query(
        &s,
        &format!("SELECT sum(py_add_one(x)) FROM t WHERE x <= {per_row_rows}"),
        3,
    )
    .await;
    println!("SELECT sum(f(x)) FROM t, {rows} rows (median):");
    println!(
        "  built-in x + 1:           {:>8.1} ms  {:>7.1} ns/row",
        builtin.as_secs_f64() * 1e3,
        ns_per_row(builtin, rows)
    );
    println!(
        "  Rust add_one_batch:       {:>8.1} ms  {:>7.1} ns/row",
        rust.as_secs_f64() * 1e3,
        ns_per_row(rust, rows)
    );
    for (language, f, d) in &compiled_figures {
        let language = label(language);
        println!(
            "  {language:<2} {f:<22} {:>8.1} ms  {:>7.1} ns/row  ({:.2}x Rust)",
            d.as_secs_f64() * 1e3,
            ns_per_row(*d, rows),
            d.as_secs_f64() / rust.as_secs_f64()
        );
    }
    println!(
        "  Python add_one, batch:    {:>8.1} ms  {:>7.1} ns/row  ({:.0}x Rust)",
        py_batch.as_secs_f64() * 1e3,
        ns_per_row(py_batch, rows),
        py_batch.as_secs_f64() / rust.as_secs_f64()
    );
    println!(
        "  Python add_one, per row:  {:>8.1} ms  {:>7.1} ns/row  (over {per_row_rows} rows)",
        py_row.as_secs_f64() * 1e3,
        ns_per_row(py_row, per_row_rows)
    );
}
