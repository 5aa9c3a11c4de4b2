//! Scalar UDF benchmark: Wasm vs native Rust `ScalarUDF` vs DataFusion built-ins,
//! measured in the same run, per 8192-row batch and per `SELECT sum(f(x))` over 10M
//! rows; plus instantiation and fixed per-call cost, with fuel metering on and off.
//!
//! `cargo bench -p wasmudf-engine --bench scalar` (set `ROWS=1000000` for a quicker run).

// A test or bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, Int64Array, StringArray};
use datafusion::arrow::compute::kernels::numeric::add;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::datasource::MemTable;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use wasmudf_engine::{Engine, EngineConfig, LimitOverrides, UdfOptions};

const BATCH: usize = 8192;

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Median time of `f`, after warm-up, over enough iterations to be stable.
fn time(mut f: impl FnMut()) -> Duration {
    for _ in 0..5 {
        f();
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 15
        || (start.elapsed() < Duration::from_millis(300) && samples.len() < 2000)
    {
        let t = Instant::now();
        f();
        samples.push(t.elapsed());
    }
    median(samples)
}

fn fmt(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

fn ratio(a: Duration, b: Duration) -> String {
    format!("{:.2}×", a.as_secs_f64() / b.as_secs_f64())
}

// ---- native Rust implementations, as ScalarUDFs ----

#[derive(Debug, PartialEq, Eq, Hash)]
struct Native {
    name: &'static str,
    sig: Signature,
    ret: DataType,
}

fn native(name: &'static str, args: Vec<DataType>, ret: DataType) -> ScalarUDF {
    ScalarUDF::new_from_impl(Native {
        name,
        sig: Signature::exact(args, Volatility::Immutable),
        ret,
    })
}

impl ScalarUDFImpl for Native {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.sig
    }
    fn return_type(&self, _: &[DataType]) -> datafusion::error::Result<DataType> {
        Ok(self.ret.clone())
    }
    fn invoke_with_args(
        &self,
        args: ScalarFunctionArgs,
    ) -> datafusion::error::Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.name {
            "n_add_one" => {
                let x = arrays[0].as_any().downcast_ref::<Int64Array>().unwrap();
                Arc::new(
                    x.try_unary::<_, datafusion::arrow::datatypes::Int64Type, _>(|v| {
                        v.checked_add(1).ok_or_else(|| {
                            datafusion::arrow::error::ArrowError::ComputeError(
                                "bigint out of range".into(),
                            )
                        })
                    })?,
                )
            }
            "n_add_one_wrapping" => {
                let x = arrays[0].as_any().downcast_ref::<Int64Array>().unwrap();
                Arc::new(
                    x.unary::<_, datafusion::arrow::datatypes::Int64Type>(|v| v.wrapping_add(1)),
                )
            }
            "n_gcd" => {
                let a = arrays[0].as_any().downcast_ref::<Int64Array>().unwrap();
                let b = arrays[1].as_any().downcast_ref::<Int64Array>().unwrap();
                Arc::new(datafusion::arrow::compute::binary::<
                    _,
                    _,
                    _,
                    datafusion::arrow::datatypes::Int64Type,
                >(a, b, gcd)?)
            }
            "n_upper_ascii" => {
                let s = arrays[0].as_any().downcast_ref::<StringArray>().unwrap();
                let out: StringArray = s
                    .iter()
                    .map(|v| v.map(|v| v.to_ascii_uppercase()))
                    .collect();
                Arc::new(out)
            }
            "n_haversine" => {
                let c: Vec<&Float64Array> = arrays
                    .iter()
                    .map(|a| a.as_any().downcast_ref::<Float64Array>().unwrap())
                    .collect();
                let out: Float64Array = (0..c[0].len())
                    .map(|i| {
                        Some(haversine(
                            c[0].value(i),
                            c[1].value(i),
                            c[2].value(i),
                            c[3].value(i),
                        ))
                    })
                    .collect();
                Arc::new(out)
            }
            _ => unreachable!(),
        };
        Ok(ColumnarValue::Array(out))
    }
}

fn gcd(a: i64, b: i64) -> i64 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        // Cranelift keeps a 64-bit division 64-bit; LLVM narrows it on x86-64 when both
        // operands fit in 32 bits. Doing that here gives Wasm the same cheaper division.
        if (a | b) >> 32 == 0 {
            let (mut x, mut y) = (a as u32, b as u32);
            while y != 0 {
                (x, y) = (y, x % y);
            }
            return i64::from(x);
        }
        (a, b) = (b, a % b);
    }
    a as i64
}

fn haversine(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = (lat2 - lat1).to_radians();
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * 6371.0088 * a.sqrt().asin()
}

// ---- data ----

fn columns(rows: usize) -> Vec<(&'static str, ArrayRef)> {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let a: Int64Array = (0..rows).map(|_| (next() % 1_000_000) as i64).collect();
    let b: Int64Array = (0..rows).map(|_| (next() % 1_000_000) as i64).collect();
    let s: StringArray = (0..rows)
        .map(|i| Some(format!("user-{:010}-{}", next() % 10_000_000_000, i % 10)))
        .map(|v| v.map(|v| v[..16].to_string()))
        .collect();
    let coords: Vec<Float64Array> = (0..4)
        .map(|k| {
            (0..rows)
                .map(|_| ((next() % 180_000) as f64 / 1000.0) - if k % 2 == 0 { 90.0 } else { 0.0 })
                .collect()
        })
        .collect();
    vec![
        ("a", Arc::new(a)),
        ("b", Arc::new(b)),
        ("s", Arc::new(s)),
        ("lat1", Arc::new(coords[0].clone())),
        ("lon1", Arc::new(coords[1].clone())),
        ("lat2", Arc::new(coords[2].clone())),
        ("lon2", Arc::new(coords[3].clone())),
    ]
}

fn invoke(udf: &ScalarUDF, args: &[ArrayRef], config: &Arc<ConfigOptions>) -> ArrayRef {
    let arg_fields = args
        .iter()
        .enumerate()
        .map(|(i, a)| Arc::new(Field::new(format!("c{i}"), a.data_type().clone(), true)))
        .collect::<Vec<_>>();
    let types: Vec<DataType> = args.iter().map(|a| a.data_type().clone()).collect();
    let ret = udf.return_type(&types).unwrap();
    let out = udf
        .invoke_with_args(ScalarFunctionArgs {
            args: args.iter().cloned().map(ColumnarValue::Array).collect(),
            arg_fields,
            number_rows: args[0].len(),
            return_field: Arc::new(Field::new("r", ret, true)),
            config_options: config.clone(),
        })
        .unwrap();
    match out {
        ColumnarValue::Array(a) => a,
        ColumnarValue::Scalar(s) => s.to_array().unwrap(),
    }
}

struct Case {
    name: &'static str,
    wasm: &'static str,
    native: ScalarUDF,
    cols: Vec<&'static str>,
    builtin_sql: &'static str,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let total: usize = std::env::var("ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let engine_fuel = Engine::new(EngineConfig::default()).unwrap();
    let engine_nofuel = Engine::new(EngineConfig {
        fuel_metering: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let cases = vec![
        Case { name: "add_one (i64, row API, overflow-checked)", wasm: "add_one", native: native("n_add_one", vec![DataType::Int64], DataType::Int64), cols: vec!["a"], builtin_sql: "a + 1" },
        Case { name: "add_one_batch (i64, batch API, wrapping)", wasm: "add_one_batch", native: native("n_add_one_wrapping", vec![DataType::Int64], DataType::Int64), cols: vec!["a"], builtin_sql: "a + 1" },
        Case { name: "gcd (i64, i64)", wasm: "gcd", native: native("n_gcd", vec![DataType::Int64, DataType::Int64], DataType::Int64), cols: vec!["a", "b"], builtin_sql: "gcd(a, b)" },
        Case { name: "upper_ascii (16-byte text)", wasm: "upper_ascii", native: native("n_upper_ascii", vec![DataType::Utf8], DataType::Utf8), cols: vec!["s"], builtin_sql: "upper(s)" },
        Case { name: "haversine (4 × f64)", wasm: "haversine", native: native("n_haversine", vec![DataType::Float64; 4], DataType::Float64), cols: vec!["lat1", "lon1", "lat2", "lon2"],
               builtin_sql: "2 * 6371.0088 * asin(sqrt(power(sin(radians(lat2 - lat1) / 2), 2) + cos(radians(lat1)) * cos(radians(lat2)) * power(sin(radians(lon2 - lon1) / 2), 2)))" },
    ];
    let component_named = |engine: &Engine, f: &str, name: Option<String>| -> ScalarUDF {
        let file = match f {
            "add_one_batch" | "add_one" | "gcd" => wasmudf_udfs::MATH,
            "upper_ascii" => wasmudf_udfs::STRINGS,
            _ => wasmudf_udfs::GEO,
        };
        engine
            .load_component(&std::fs::read(file).unwrap())
            .unwrap()
            .scalar_udf(
                f,
                &UdfOptions {
                    name,
                    ..UdfOptions::default()
                },
            )
            .unwrap()
    };

    let component = |engine: &Engine, f: &str| -> ScalarUDF { component_named(engine, f, None) };

    // ---- per batch ----
    let batch_cols = columns(BATCH);
    let col = |name: &str| {
        batch_cols
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .clone()
    };
    println!("# wasmudf scalar benchmark\n");
    println!("## One {BATCH}-row batch (median), Arrow in → Arrow out, output validated\n");
    println!("| function | native Rust UDF | built-in | Wasm (fuel on) | Wasm (fuel off) | Wasm/native (fuel on) | Wasm/native (fuel off) |");
    println!("|---|---|---|---|---|---|---|");
    let ctx = SessionContext::new();
    let q_fuel = engine_fuel.query(&ctx);
    let q_nofuel = engine_nofuel.query(&ctx);
    let cfg_fuel = q_fuel.session().state().config_options().clone();
    let cfg_nofuel = q_nofuel.session().state().config_options().clone();
    for case in &cases {
        let args: Vec<ArrayRef> = case.cols.iter().map(|c| col(c)).collect();
        let t_native = time(|| {
            black_box(invoke(&case.native, &args, &cfg_fuel));
        });
        let builtin = match case.wasm {
            "add_one_batch" | "add_one" => {
                let one = Int64Array::new_scalar(1);
                Some(time(|| {
                    black_box(add(&args[0], &one).unwrap());
                }))
            }
            "gcd" => {
                let f = datafusion::functions::math::gcd();
                Some(time(|| {
                    black_box(invoke(&f, &args, &cfg_fuel));
                }))
            }
            "upper_ascii" => {
                let f = datafusion::functions::string::upper();
                Some(time(|| {
                    black_box(invoke(&f, &args, &cfg_fuel));
                }))
            }
            _ => None,
        };
        let w_fuel = component(&engine_fuel, case.wasm);
        let w_nofuel = component(&engine_nofuel, case.wasm);
        let (w_out, n_out) = (
            invoke(&w_fuel, &args, &cfg_fuel),
            invoke(&case.native, &args, &cfg_fuel),
        );
        if let (Some(w), Some(n)) = (
            w_out.as_any().downcast_ref::<Float64Array>(),
            n_out.as_any().downcast_ref::<Float64Array>(),
        ) {
            // libm in the guest and the host's may differ in the last bits.
            assert!(
                w.values()
                    .iter()
                    .zip(n.values())
                    .all(|(a, b)| (a - b).abs() <= 1e-9 * b.abs().max(1.0)),
                "{}: Wasm and native disagree",
                case.name
            );
        } else {
            assert_eq!(
                w_out.as_ref(),
                n_out.as_ref(),
                "{}: Wasm and native disagree",
                case.name
            );
        }
        let t_fuel = time(|| {
            black_box(invoke(&w_fuel, &args, &cfg_fuel));
        });
        let t_nofuel = time(|| {
            black_box(invoke(&w_nofuel, &args, &cfg_nofuel));
        });
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            case.name,
            fmt(t_native),
            builtin.map(fmt).unwrap_or_else(|| "–".into()),
            fmt(t_fuel),
            fmt(t_nofuel),
            ratio(t_fuel, t_native),
            ratio(t_nofuel, t_native)
        );
    }

    // ---- counting (wasm.function_stats, metrics, EXPLAIN ANALYZE) ----
    println!("\n## Counting each call (`track_functions`), fuel on (median)\n");
    println!("| function | counted | not counted | counted/not |");
    println!("|---|---|---|---|");
    let engine_untracked = Engine::new(EngineConfig {
        track_functions: false,
        ..EngineConfig::default()
    })
    .unwrap();
    let small: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![1i64, 2]))];
    for (label, f, args) in [
        ("add_one_batch, 8192 rows", "add_one_batch", vec![col("a")]),
        ("add_one, 8192 rows", "add_one", vec![col("a")]),
        ("add_one_batch, 2 rows (fixed cost)", "add_one_batch", small),
    ] {
        let counted = component(&engine_fuel, f);
        let uncounted = component(&engine_untracked, f);
        let q_untracked = engine_untracked.query(&ctx);
        let cfg_untracked = q_untracked.session().state().config_options().clone();
        // Interleaved rounds, each side first in every other one, so drift in the
        // machine's speed and any first-runner effect hit both alike.
        let (mut on, mut off) = (Vec::new(), Vec::new());
        for round in 0..9 {
            let mut counted_round = || {
                on.push(time(|| {
                    black_box(invoke(&counted, &args, &cfg_fuel));
                }))
            };
            let mut uncounted_round = || {
                off.push(time(|| {
                    black_box(invoke(&uncounted, &args, &cfg_untracked));
                }))
            };
            if round % 2 == 0 {
                counted_round();
                uncounted_round();
            } else {
                uncounted_round();
                counted_round();
            }
        }
        let (on, off) = (median(on), median(off));
        println!(
            "| {label} | {} | {} | {} |",
            fmt(on),
            fmt(off),
            ratio(on, off)
        );
    }

    // ---- fixed costs ----
    println!("\n## Fixed costs (median)\n");
    println!("| what | fuel on | fuel off |");
    println!("|---|---|---|");
    let one: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![1i64, 2]))];
    let w_fuel = component(&engine_fuel, "add_one_batch");
    let w_nofuel = component(&engine_nofuel, "add_one_batch");
    let call_fuel = time(|| {
        black_box(invoke(&w_fuel, &one, &cfg_fuel));
    });
    let call_nofuel = time(|| {
        black_box(invoke(&w_nofuel, &one, &cfg_nofuel));
    });
    println!(
        "| call with 2 rows, pooled instance (whole UDF path) | {} | {} |",
        fmt(call_fuel),
        fmt(call_nofuel)
    );
    // Without a query scope every call instantiates afresh: the difference is instantiation.
    let no_scope = Arc::new(ConfigOptions::default());
    let fresh_fuel = time(|| {
        black_box(invoke(&w_fuel, &one, &no_scope));
    });
    let fresh_nofuel = time(|| {
        black_box(invoke(&w_nofuel, &one, &no_scope));
    });
    let load = |engine: &Engine| {
        engine
            .load_component(&std::fs::read(wasmudf_udfs::MATH).unwrap())
            .unwrap()
    };
    let (m_fuel, m_nofuel) = (load(&engine_fuel), load(&engine_nofuel));
    let inst_fuel = time(|| m_fuel.instantiate_once().unwrap());
    let inst_nofuel = time(|| m_nofuel.instantiate_once().unwrap());
    println!(
        "| instantiate alone (pooling allocator, `InstancePre`) | {} | {} |",
        fmt(inst_fuel),
        fmt(inst_nofuel)
    );
    println!(
        "| fresh instance's first call, extra over a pooled call (instantiate + page faults) | {} | {} |",
        fmt(fresh_fuel.saturating_sub(call_fuel)),
        fmt(fresh_nofuel.saturating_sub(call_nofuel))
    );
    // A function with its own `wasm.stack` instantiates in that size's engine, which
    // allocates on demand instead of from the pool.
    let own_stack = |m: &wasmudf_engine::Module| {
        let mut limits = LimitOverrides::default();
        limits.set("stack", "2MB").unwrap();
        let options = UdfOptions {
            limits,
            ..Default::default()
        };
        m.scalar_udf("add_one_batch", &options).unwrap()
    };
    let (s_fuel, s_nofuel) = (own_stack(&m_fuel), own_stack(&m_nofuel));
    let stack_fuel = time(|| {
        black_box(invoke(&s_fuel, &one, &no_scope));
    });
    let stack_nofuel = time(|| {
        black_box(invoke(&s_nofuel, &one, &no_scope));
    });
    println!(
        "| the same, for a function with its own `wasm.stack` (on-demand allocation) | {} | {} |",
        fmt(stack_fuel.saturating_sub(call_fuel)),
        fmt(stack_nofuel.saturating_sub(call_nofuel))
    );

    // ---- whole query ----
    println!("\n## `SELECT sum(f(...)) FROM t`, {total} rows in {BATCH}-row batches, 2 partitions (median of 5)\n");
    println!("| function | native Rust UDF | built-in expression | Wasm (fuel on) | Wasm/native | Wasm/built-in |");
    println!("|---|---|---|---|---|---|");
    let ctx = SessionContext::new_with_config(
        SessionConfig::new()
            .with_target_partitions(2)
            .with_batch_size(BATCH),
    );
    let mut partitions = vec![Vec::new(), Vec::new()];
    let template = columns(BATCH);
    let schema = Arc::new(Schema::new(
        template
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), false))
            .collect::<Vec<_>>(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        template.iter().map(|(_, a)| a.clone()).collect(),
    )
    .unwrap();
    for i in 0..total.div_ceil(BATCH) {
        partitions[i % 2].push(batch.clone());
    }
    ctx.register_table(
        "t",
        Arc::new(MemTable::try_new(schema, partitions).unwrap()),
    )
    .unwrap();
    for case in &cases {
        ctx.register_udf(case.native.clone());
        ctx.register_udf(component_named(
            &engine_fuel,
            case.wasm,
            Some(format!("w_{}", case.wasm)),
        ));
        let args = case.cols.join(", ");
        let run = |sql: String| {
            let ctx = ctx.clone();
            let engine = engine_fuel.clone();
            async move {
                let mut samples = Vec::new();
                for _ in 0..6 {
                    let t = Instant::now();
                    black_box(
                        engine
                            .query(&ctx)
                            .sql(&sql)
                            .await
                            .unwrap()
                            .collect()
                            .await
                            .unwrap(),
                    );
                    samples.push(t.elapsed());
                }
                samples.remove(0);
                median(samples)
            }
        };
        let agg = |expr: String| {
            if case.wasm == "upper_ascii" {
                format!("SELECT sum(length({expr})) FROM t")
            } else {
                format!("SELECT sum({expr}) FROM t")
            }
        };
        let t_native = run(agg(format!("{}({args})", case.native.name()))).await;
        let t_builtin = run(agg(case.builtin_sql.to_string())).await;
        let t_wasm = run(agg(format!("w_{}({args})", case.wasm))).await;
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            case.name,
            fmt(t_native),
            fmt(t_builtin),
            fmt(t_wasm),
            ratio(t_wasm, t_native),
            ratio(t_wasm, t_builtin)
        );
    }

    // The same query with calls counted and not: the cost of wasm.function_stats and
    // the metrics on the whole query (issue 15's 2% budget), interleaved rounds, each
    // side first in every other one. Fresh engines for both sides (the earlier sections
    // used `engine_fuel`), and a control: two engines that both do not count, which is
    // how far apart two identical sides measure here.
    println!("\n## The same `SELECT sum(f(a))`, calls counted and not (median of 10 rounds)\n");
    println!(
        "| function | counted | not counted | counted/not | control: not counted/not counted |"
    );
    println!("|---|---|---|---|---|");
    let engine_with = |track_functions| {
        Engine::new(EngineConfig {
            track_functions,
            ..EngineConfig::default()
        })
        .unwrap()
    };
    let (counting, not_counting, control) =
        (engine_with(true), engine_with(false), engine_with(false));
    for f in ["add_one_batch", "add_one"] {
        for (engine, prefix) in [(&counting, "c"), (&not_counting, "u"), (&control, "v")] {
            ctx.register_udf(component_named(engine, f, Some(format!("{prefix}_{f}"))));
        }
        let once = |engine: Engine, sql: String| {
            let ctx = ctx.clone();
            async move {
                let t = Instant::now();
                black_box(
                    engine
                        .query(&ctx)
                        .sql(&sql)
                        .await
                        .unwrap()
                        .collect()
                        .await
                        .unwrap(),
                );
                t.elapsed()
            }
        };
        let sql = |prefix: &str| format!("SELECT sum({prefix}_{f}(a)) FROM t");
        let mut samples: [Vec<Duration>; 3] = Default::default();
        for round in 0..12 {
            let mut order = [
                (0, &counting, "c"),
                (1, &not_counting, "u"),
                (2, &control, "v"),
            ];
            order.rotate_left(round % 3);
            for (i, engine, prefix) in order {
                let took = once(engine.clone(), sql(prefix)).await;
                // The first two rounds warm every side.
                if round > 1 {
                    samples[i].push(took);
                }
            }
        }
        let [on, off, off_too] = samples.map(median);
        println!(
            "| {f} | {} | {} | {} | {} |",
            fmt(on),
            fmt(off),
            ratio(on, off),
            ratio(off_too, off)
        );
    }
}
