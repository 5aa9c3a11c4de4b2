//! Hostile components: each gets its specific error, and the next query still works.

use std::time::{Duration, Instant};

use crate::common::*;
use wasmudf_engine::{
    CacheOutcome, Engine, EngineConfig, Error, LimitOverrides, Limits, UdfOptions,
};

/// Options that name the function `name` (if given) and set `limits` by their SQL
/// spellings.
fn options(name: Option<&str>, limits: &[(&str, &str)]) -> UdfOptions {
    let mut overrides = LimitOverrides::default();
    for (limit, value) in limits {
        overrides.set(limit, value).unwrap();
    }
    UdfOptions {
        name: name.map(Into::into),
        limits: overrides,
        ..Default::default()
    }
}

/// Asserts the engine still serves ordinary queries after a failure.
async fn still_serves(engine: &Engine) {
    let ctx = session(engine, 2, &["math"]);
    assert_eq!(
        value(
            engine,
            &ctx,
            "SELECT sum(add_one(value)) FROM generate_series(1, 100)"
        )
        .await,
        "5150"
    );
}

#[tokio::test]
async fn infinite_loop_runs_out_of_fuel() {
    let engine = Engine::new(Limits {
        fuel: 50_000_000,
        ..Limits::default()
    })
    .unwrap();
    let ctx = session(&engine, 1, &["spin"]);
    let (state, msg) = udf_error(&engine, &ctx, "SELECT spin(1)").await;
    assert_eq!(state, "54000");
    assert_eq!(msg, "function spin: fuel exhausted (wasm.fuel = 50000000)");
    // The poisoned instance is gone; the same function fails the same way, cleanly.
    let (state, _) = udf_error(
        &engine,
        &ctx,
        "SELECT spin(value) FROM generate_series(1, 3)",
    )
    .await;
    assert_eq!(state, "54000");
    still_serves(&engine).await;
}

#[tokio::test]
async fn infinite_loop_hits_the_deadline_without_fuel() {
    let engine = Engine::new(EngineConfig {
        fuel_metering: false,
        defaults: Limits {
            timeout: Duration::from_millis(200),
            ..Limits::default()
        },
        ..EngineConfig::default()
    })
    .unwrap();
    let ctx = session(&engine, 1, &["spin"]);
    let start = Instant::now();
    let (state, msg) = udf_error(&engine, &ctx, "SELECT spin(1)").await;
    let took = start.elapsed();
    assert_eq!(state, "57014");
    assert_eq!(msg, "function spin: timed out (wasm.timeout = 200ms)");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    still_serves(&engine).await;
}

// Multi-threaded: the guest blocks its worker thread, as in the server, and the cancel
// arrives from another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_spinning_call() {
    let engine = Engine::new(EngineConfig {
        fuel_metering: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let ctx = session(&engine, 1, &["spin"]);
    let (err, latency) = cancel_after(
        &engine,
        &ctx,
        "SELECT spin(value) FROM generate_series(1, 1)",
        Duration::from_millis(300),
    )
    .await;
    assert!(
        matches!(as_udf_error(&err), Error::Canceled { function } if function == "spin"),
        "{err}"
    );
    assert_eq!(as_udf_error(&err).sqlstate(), "57014");
    assert!(
        latency < Duration::from_millis(100),
        "cancel took {latency:?}"
    );
    still_serves(&engine).await;
}

#[tokio::test]
async fn memory_bomb_hits_the_memory_limit() {
    let engine = Engine::new(Limits {
        memory: 32 << 20,
        ..Limits::default()
    })
    .unwrap();
    let ctx = session(&engine, 1, &["membomb"]);
    let (state, msg) = udf_error(&engine, &ctx, "SELECT membomb(1)").await;
    assert_eq!(state, "53200");
    assert!(
        msg.starts_with("function membomb: memory limit exceeded (wasm.memory = 33554432 bytes, guest asked for"),
        "{msg}"
    );
    still_serves(&engine).await;
}

#[tokio::test]
async fn unbounded_recursion_overflows_the_stack() {
    let engine = engine();
    let ctx = session(&engine, 1, &["recursion"]);
    let (state, msg) = udf_error(&engine, &ctx, "SELECT recurse(1)").await;
    assert_eq!(state, "54000");
    assert_eq!(
        msg,
        "function recurse: wasm stack overflow (wasm.stack = 1048576 bytes)"
    );
    still_serves(&engine).await;
}

/// `wasm.stack` per function: each size gets its own engine, and a stack larger than
/// the calling thread's (this test thread has 2 MiB) still traps cleanly at its limit.
#[tokio::test]
async fn each_function_gets_its_own_stack() {
    let engine = engine();
    let module = load(&engine, "recursion");
    let ctx = session(&engine, 2, &[]);
    for (name, stack) in [
        ("plain", None),
        ("shallow", Some("256kB")),
        ("deep", Some("8MB")),
    ] {
        let limits: &[(&str, &str)] = match stack {
            Some(s) => &[("stack", s)],
            None => &[],
        };
        let options = options(Some(name), limits);
        ctx.register_udf(module.scalar_udf("recurse_to", &options).unwrap());
    }
    let fits = |name: &'static str, depth: u64| {
        let (engine, ctx) = (engine.clone(), ctx.clone());
        async move {
            run(&engine, &ctx, &format!("SELECT {name}({depth})"))
                .await
                .is_ok()
        }
    };
    // The deepest recursion the default 1 MiB allows, found by bisection so the test
    // does not depend on the compiler's frame size.
    let (mut lo, mut hi) = (1_000u64, 1_000_000u64);
    assert!(fits("plain", lo).await && !fits("plain", hi).await);
    while hi - lo > lo / 100 {
        let mid = (lo + hi) / 2;
        if fits("plain", mid).await {
            lo = mid
        } else {
            hi = mid
        }
    }
    let one_mib = lo;
    // A quarter of the stack holds about a quarter of the depth.
    assert!(fits("shallow", one_mib / 5).await);
    let (state, msg) = udf_error(&engine, &ctx, &format!("SELECT shallow({one_mib})")).await;
    assert_eq!(state, "54000");
    assert_eq!(
        msg,
        "function shallow: wasm stack overflow (wasm.stack = 262144 bytes)"
    );
    // Eight times the stack: seven times the depth fits (~7 MiB, more than this thread
    // has), nine times overflows at the limit rather than crashing the thread.
    assert!(fits("deep", one_mib * 7).await);
    let (state, msg) = udf_error(&engine, &ctx, &format!("SELECT deep({})", one_mib * 9)).await;
    assert_eq!(state, "54000");
    assert_eq!(
        msg,
        "function deep: wasm stack overflow (wasm.stack = 8388608 bytes)"
    );
    // All three in one query, each under its own stack.
    let sql = format!(
        "SELECT count(plain(value + {a}) + shallow(value + {b}) + deep(value + {c})) \
         FROM generate_series(1, 4)",
        a = one_mib / 2,
        b = one_mib / 8,
        c = one_mib * 4
    );
    assert_eq!(value(&engine, &ctx, &sql).await, "4");
    // Above the ceiling, below the minimum: refused when the function is made.
    let err = module
        .scalar_udf("recurse_to", &options(None, &[("stack", "16MB")]))
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "invalid limit: wasm.stack = 16777216 bytes is above the server's ceiling of 8388608 bytes"
    );
    let err = LimitOverrides::default().set("stack", "1kB").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid limit: wasm.stack = 1024 bytes is below the minimum of 65536 bytes"
    );
    still_serves(&engine).await;
}

/// The smallest stack is enough for ordinary work (strings, allocation); aggregates and
/// their window form run in another stack size's engine like scalars.
#[tokio::test(flavor = "multi_thread")]
async fn minimum_stack_scalars_and_aggregates_with_their_own_stack() {
    let engine = engine();
    let ctx = session(&engine, 4, &[]);
    let own = |stack: &str, name: &str| options(Some(name), &[("stack", stack)]);
    let strings = load(&engine, "strings");
    ctx.register_udf(
        strings
            .scalar_udf("initials", &own("64kB", "initials_small"))
            .unwrap(),
    );
    ctx.register_udf(
        strings
            .scalar_udf("initials", &UdfOptions::default())
            .unwrap(),
    );
    let stats = load(&engine, "stats");
    for (stack, name) in [("128kB", "geo_small"), ("4MB", "geo_big")] {
        ctx.register_udaf(stats.aggregate_udf("geo_mean", &own(stack, name)).unwrap());
    }
    ctx.register_udaf(
        stats
            .aggregate_udf("geo_mean", &UdfOptions::default())
            .unwrap(),
    );
    let same = "SELECT count(*) FROM (\
        SELECT initials_small('Ada ' || CAST(value AS TEXT) || ' Lovelace') AS a, \
               initials('Ada ' || CAST(value AS TEXT) || ' Lovelace') AS b \
        FROM generate_series(1, 5000)) WHERE a = b";
    assert_eq!(value(&engine, &ctx, same).await, "5000");
    let grouped = "SELECT count(*) FROM (\
        SELECT value % 7 AS g, geo_small(CAST(value AS DOUBLE)) AS s, \
               geo_big(CAST(value AS DOUBLE)) AS b, geo_mean(CAST(value AS DOUBLE)) AS d \
        FROM generate_series(1, 20000) GROUP BY value % 7) \
        WHERE abs(s - d) < 1e-9 * d AND abs(b - d) < 1e-9 * d";
    assert_eq!(value(&engine, &ctx, grouped).await, "7");
    let window = "SELECT count(*) FROM (\
        SELECT geo_small(CAST(value AS DOUBLE)) OVER w AS s, \
               geo_mean(CAST(value AS DOUBLE)) OVER w AS d \
        FROM generate_series(1, 2000) \
        WINDOW w AS (PARTITION BY value % 5 ORDER BY value)) \
        WHERE abs(s - d) < 1e-9 * d";
    assert_eq!(value(&engine, &ctx, window).await, "2000");
}

/// `max_instances` bounds live instances across the main engine's pool and the
/// on-demand engines of other stack sizes together.
#[tokio::test]
async fn max_instances_counts_every_stack_size() {
    let query = "SELECT add_one(1) + gcd(4, 6)";
    for (max, works) in [(1, false), (2, true)] {
        let engine = Engine::new(EngineConfig {
            max_instances: max,
            ..EngineConfig::default()
        })
        .unwrap();
        let math = load(&engine, "math");
        let ctx = session(&engine, 1, &[]);
        let own_stack = options(None, &[("stack", "2MB")]);
        ctx.register_udf(math.scalar_udf("add_one", &own_stack).unwrap());
        ctx.register_udf(math.scalar_udf("gcd", &UdfOptions::default()).unwrap());
        // An idle instance pooled for the query keeps its slot, so the second function
        // finds none when the limit is one.
        if works {
            assert_eq!(value(&engine, &ctx, query).await, "4");
        } else {
            let (state, msg) = udf_error(&engine, &ctx, query).await;
            assert_eq!(state, "53000");
            assert!(
                msg.ends_with(
                    "1 guest instances are already running (the engine's max_instances); retry when fewer queries run"
                ),
                "{msg}"
            );
            // Slots come back when the query ends.
            let ctx = session(&engine, 1, &["math"]);
            assert_eq!(value(&engine, &ctx, "SELECT add_one(41)").await, "42");
        }
    }
}

/// A function in another stack size's engine still meets its deadline: the epoch
/// ticker ticks every engine in use.
#[tokio::test]
async fn deadlines_fire_under_a_function_stack() {
    let engine = Engine::new(EngineConfig {
        fuel_metering: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let udf = load(&engine, "spin")
        .scalar_udf(
            "spin",
            &options(None, &[("stack", "512kB"), ("timeout", "200ms")]),
        )
        .unwrap();
    let ctx = session(&engine, 1, &[]);
    ctx.register_udf(udf);
    let started = Instant::now();
    let (state, msg) = udf_error(&engine, &ctx, "SELECT spin(1)").await;
    assert_eq!(msg, "function spin: timed out (wasm.timeout = 200ms)");
    assert_eq!(state, "57014");
    assert!(started.elapsed() < Duration::from_secs(5));
    still_serves(&engine).await;
}

#[tokio::test]
async fn explicit_trap_names_the_trap_and_function() {
    let engine = engine();
    let ctx = session(&engine, 1, &["trap"]);
    assert_eq!(value(&engine, &ctx, "SELECT trap_negative(5)").await, "5");
    let (state, msg) = udf_error(
        &engine,
        &ctx,
        "SELECT trap_negative(value - 3) FROM generate_series(1, 5)",
    )
    .await;
    assert_eq!(state, "38000");
    assert_eq!(
        msg,
        "function trap_negative: wasm trap: wasm `unreachable` instruction executed"
    );
    still_serves(&engine).await;
}

#[tokio::test]
async fn guest_errors_carry_message_and_row() {
    let engine = engine();
    let ctx = session(&engine, 1, &["math", "liar"]);
    let (state, msg) = udf_error(
        &engine,
        &ctx,
        "SELECT safe_div(10, value - 3) FROM generate_series(1, 5)",
    )
    .await;
    assert_eq!(state, "38000");
    assert_eq!(
        msg,
        "function safe_div: division by zero (at row 2 of the batch)"
    );
    let (state, msg) = udf_error(
        &engine,
        &ctx,
        "SELECT refuse(value) FROM generate_series(1, 4)",
    )
    .await;
    assert_eq!(state, "38000");
    assert_eq!(
        msg,
        "function refuse: input rejected by policy (at row 3 of the batch)"
    );
    let (_, msg) = udf_error(&engine, &ctx, "SELECT add_one(9223372036854775807)").await;
    assert_eq!(
        msg,
        "function add_one: bigint out of range (at row 0 of the batch)"
    );
    still_serves(&engine).await;
}

#[tokio::test]
async fn lying_output_is_rejected_before_datafusion_sees_it() {
    let engine = engine();
    let ctx = session(&engine, 1, &["liar"]);
    let cases = [
        ("wrong_len", "returned 11 rows for a batch of 10 rows"),
        (
            "short_values",
            "value buffer has 40 bytes, 10 rows of Int64 need 80",
        ),
        ("wrong_type", "value buffer is U32-wide but Int64 needs U64"),
        ("bad_offsets", "offset"),
        ("backwards_offsets", "offset"),
        ("bad_utf8", "utf-8"),
        (
            "short_validity",
            "validity bitmap has 0 bytes, 10 rows need 2",
        ),
        ("decimal_overflow", "does not fit decimal precision 5"),
    ];
    for (f, expected) in cases {
        let (state, msg) = udf_error(
            &engine,
            &ctx,
            &format!("SELECT {f}(value) FROM generate_series(1, 10)"),
        )
        .await;
        assert_eq!(state, "39000", "{f}: {msg}");
        assert!(
            msg.starts_with(&format!("function {f}: invalid output from guest: ")),
            "{f}: {msg}"
        );
        assert!(
            msg.to_lowercase().contains(&expected.to_lowercase()),
            "{f}: {msg}"
        );
    }
    still_serves(&engine).await;
}

#[tokio::test]
async fn components_that_import_anything_are_refused_at_load() {
    let engine = engine();
    let bytes = std::fs::read(wasmudf_udfs::WASI_FS).unwrap();
    let err = engine
        .load_component(&bytes)
        .err()
        .expect("must be refused");
    assert!(matches!(err, Error::ForbiddenImports { .. }));
    assert_eq!(err.sqlstate(), "42P13");
    assert!(
        err.to_string().contains("wasi:filesystem/preopens@0.2.0"),
        "{err}"
    );
    // The granted contract types are not among the refused.
    let Error::ForbiddenImports { imports } = &err else {
        unreachable!()
    };
    assert!(
        imports.iter().all(|i| !i.starts_with("wasmudf:udf/types@")),
        "{imports:?}"
    );
}

#[tokio::test]
async fn malformed_bytes_are_refused_with_a_reason() {
    let engine = engine();
    let core_module = wasmtime_core_module();
    let err = engine.load_component(&core_module).err().unwrap();
    assert!(
        err.to_string()
            .contains("core WebAssembly module, not a component"),
        "{err}"
    );
    let err = engine.load_component(b"definitely not wasm").err().unwrap();
    assert!(err.to_string().contains("bad magic number"), "{err}");
    let mut truncated = std::fs::read(wasmudf_udfs::MATH).unwrap();
    truncated.truncate(truncated.len() / 2);
    let err = engine.load_component(&truncated).err().unwrap();
    assert!(matches!(err, Error::InvalidComponent(_)), "{err}");
    let small = Engine::new(EngineConfig {
        max_module_size: 1000,
        ..EngineConfig::default()
    })
    .unwrap();
    let err = small
        .load_component(&std::fs::read(wasmudf_udfs::MATH).unwrap())
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("above the limit of 1000 bytes"),
        "{err}"
    );
}

/// The smallest valid core module: magic + version 1.
fn wasmtime_core_module() -> Vec<u8> {
    vec![0, b'a', b's', b'm', 1, 0, 0, 0]
}

#[tokio::test]
async fn per_function_limits_narrow_the_defaults() {
    let engine = engine();
    let module = load(&engine, "spin");
    let ctx = datafusion::prelude::SessionContext::new();
    let udf = module
        .scalar_udf("spin", &options(Some("spin_small"), &[("fuel", "1000000")]))
        .unwrap();
    ctx.register_udf(udf);
    let (_, msg) = udf_error(&engine, &ctx, "SELECT spin_small(1)").await;
    assert_eq!(
        msg,
        "function spin_small: fuel exhausted (wasm.fuel = 1000000)"
    );

    // Above the ceiling: refused when the function is created.
    let capped = Engine::new(EngineConfig {
        ceilings: Limits {
            memory: 64 << 20,
            ..Limits::default_ceilings()
        },
        defaults: Limits {
            memory: 16 << 20,
            ..Limits::default()
        },
        ..EngineConfig::default()
    })
    .unwrap();
    let err = load(&capped, "math")
        .scalar_udf("gcd", &options(None, &[("memory", "1GB")]))
        .err()
        .unwrap();
    assert_eq!(err.to_string(), "invalid limit: wasm.memory = 1073741824 bytes is above the server's ceiling of 67108864 bytes");
}

#[tokio::test]
async fn volatility_can_only_be_weakened() {
    let engine = engine();
    let types = load(&engine, "types");
    let err = types
        .scalar_udf(
            "calls",
            &UdfOptions {
                volatility: Some(datafusion::logical_expr::Volatility::Immutable),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "invalid function description in component: function calls is VOLATILE in its component and cannot be declared IMMUTABLE"
    );
    assert!(load(&engine, "math")
        .scalar_udf(
            "gcd",
            &UdfOptions {
                volatility: Some(datafusion::logical_expr::Volatility::Volatile),
                ..Default::default()
            }
        )
        .is_ok());
}

#[tokio::test]
async fn compiled_artifacts_are_cached_and_verified() {
    let dir = std::env::temp_dir().join(format!("wasmudf-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let config = EngineConfig {
        artifact_dir: Some(dir.clone()),
        ..EngineConfig::default()
    };
    let bytes = std::fs::read(wasmudf_udfs::MATH).unwrap();

    let first = Engine::new(config.clone()).unwrap();
    let (_, outcome) = first.load_component_traced(&bytes).unwrap();
    assert_eq!(outcome, CacheOutcome::Compiled);

    let second = Engine::new(config.clone()).unwrap();
    let (module, outcome) = second.load_component_traced(&bytes).unwrap();
    assert_eq!(outcome, CacheOutcome::Loaded);
    let ctx = datafusion::prelude::SessionContext::new();
    second.register(&ctx, &module).unwrap();
    assert_eq!(value(&second, &ctx, "SELECT gcd(84, 36)").await, "12");

    // Flip one byte of the artifact: it is rejected and recompiled, never run.
    let artifact = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .unwrap();
    let mut data = std::fs::read(&artifact).unwrap();
    let mid = data.len() / 2;
    data[mid] ^= 0x5a;
    std::fs::write(&artifact, &data).unwrap();
    let third = Engine::new(config.clone()).unwrap();
    let (module, outcome) = third.load_component_traced(&bytes).unwrap();
    assert_eq!(outcome, CacheOutcome::Rejected);
    let ctx = datafusion::prelude::SessionContext::new();
    third.register(&ctx, &module).unwrap();
    assert_eq!(value(&third, &ctx, "SELECT gcd(84, 36)").await, "12");

    // A foreign cache (another key) is not trusted either.
    std::fs::write(dir.join("artifact.key"), [7u8; 32]).unwrap();
    let fourth = Engine::new(config).unwrap();
    assert_eq!(
        fourth.load_component_traced(&bytes).unwrap().1,
        CacheOutcome::Rejected
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn limits_cover_instantiation_too() {
    let engine = engine();
    load(&engine, "math").instantiate_once().unwrap();
    // A Rust guest's initial linear memory is over 1 MiB: a 64 KiB limit refuses it
    // at instantiation, before any call.
    let tiny = Engine::new(Limits {
        memory: 64 << 10,
        ..Limits::default()
    })
    .unwrap();
    let bytes = std::fs::read(wasmudf_udfs::MATH).unwrap();
    let err = tiny
        .load_component(&bytes)
        .err()
        .expect("describe needs an instance");
    assert_eq!(err.sqlstate(), "53200", "{err}");
    assert!(
        err.to_string()
            .contains("memory limit exceeded (wasm.memory = 65536 bytes"),
        "{err}"
    );
}
