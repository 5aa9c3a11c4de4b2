//! Wasm functions in your own DataFusion `SessionContext`: load a component, register
//! its functions, and query through a scope that pools guest instances per query and
//! can be canceled.
//!
//! ```sh
//! cargo run -p wasmudf-engine --example embed
//! ```

use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use wasmudf_engine::{datafusion, Engine, EngineConfig, LimitOverrides, Limits, UdfOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // One engine per process: it owns the wasmtime engines, the instance pool and the
    // epoch clock that enforces deadlines.
    let engine = Engine::new(EngineConfig {
        defaults: Limits::default(),
        ..EngineConfig::default()
    })?;
    // Validated (imports nothing), compiled once per content hash, described.
    let math = engine.load_component(&std::fs::read(wasmudf_udfs::MATH)?)?;
    for f in math.functions() {
        println!("{f}");
    }

    let ctx = SessionContext::new();
    // Every function under its own name, with the component's declarations ...
    engine.register(&ctx, &math)?;
    // ... or one of them under a name and limits of your choosing.
    let mut limits = LimitOverrides::default();
    limits.set("fuel", "10000000")?;
    let tight = UdfOptions {
        name: Some("gcd_tight".into()),
        limits,
        ..UdfOptions::default()
    };
    ctx.register_udf(math.scalar_udf("gcd", &tight)?);

    let query = engine.query(&ctx);
    let batches = query
        .sql("SELECT gcd(1071, 462) AS gcd, gcd_tight(48, 18) AS tight, add_one(41) AS answer")
        .await?
        .collect()
        .await?;
    println!("{}", pretty_format_batches(&batches)?);

    // A limit or a trap is an error naming the function, with its SQLSTATE.
    let spin = engine.load_component(&std::fs::read(wasmudf_udfs::SPIN)?)?;
    let mut limits = LimitOverrides::default();
    limits.set("fuel", "1000000")?;
    let limited = UdfOptions {
        limits,
        ..UdfOptions::default()
    };
    let name = &spin.functions()[0].name;
    ctx.register_udf(spin.scalar_udf(name, &limited)?);
    let failed = engine
        .query(&ctx)
        .sql(&format!("SELECT {name}(1)"))
        .await?
        .collect()
        .await
        .expect_err("the spin runs out of fuel");
    let message = wasmudf_engine::find_udf_error(&failed)
        .map_or_else(|| failed.find_root().to_string(), ToString::to_string);
    println!("SQLSTATE {}: {message}", wasmudf_engine::sqlstate(&failed));
    Ok(())
}
