//! sqllogictest for wasmudf: one runner, two targets, the same `.slt` files.
//!
//! - [`Target::InProcess`]: the engine's SQL entry point ([`wasmudf_engine::Database`]),
//!   one fresh data directory per file.
//! - [`Target::Server`]: the real `wasmudf` binary on an ephemeral loopback port, one
//!   fresh data directory per file, driven by tokio-postgres over the extended protocol.
//! - [`Target::Url`]: any running server (yours), also over tokio-postgres.
//!
//! Both render results the way psql prints them (`t`/`f`, `Infinity`, `\x` bytea), so a
//! file passes on both or on neither. Beyond standard sqllogictest:
//!
//! - `statement error (42883)` matches a SQLSTATE (the sqllogictest crate's syntax);
//! - a line `restart` stops and starts the database on the same data directory, so
//!   persistence is testable; every connection reconnects;
//! - modules resolve in a modules directory holding `examples/` (the example
//!   components) and `hostile/` (the misbehaving ones): `AS 'examples/math.wasm'`;
//!   with `control substitution on`, `$B64_MATH` (and `$B64_<NAME>` for every example)
//!   is the module inline, for `AS 'base64:$B64_MATH'`;
//! - the label `inprocess` or `server` is set, for `onlyif` / `skipif` records that
//!   only make sense on one target (say why in the file).
//!
//! ```no_run
//! # async fn demo() -> Result<(), String> {
//! use wasmudf_sql_tests::{run_file, Target};
//! run_file("sql-tests/slt/scalar.slt".as_ref(), &Target::InProcess).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod arrays;
mod inprocess;
pub mod languages;
mod render;
mod runner;
mod server;
mod upstream;
mod wire;

pub use runner::{is_upstream, run_file, run_file_keep_going, slt_files, Target};
pub use server::ServerProcess;

/// Lays out a modules directory the way the suites expect: `examples/<name>.wasm` for
/// every example component, `hostile/<name>.wasm` for every hostile one, and
/// `<language>/<name>.wasm` for every other language's example that
/// [`languages::build_examples`] built.
pub fn write_modules_dir(dir: &std::path::Path) -> std::io::Result<()> {
    languages::copy_built(dir)?;
    for (name, kind, path) in wasmudf_udfs::ALL {
        let sub = if *kind == "hostile" {
            "hostile"
        } else {
            "examples"
        };
        let target = dir.join(sub);
        std::fs::create_dir_all(&target)?;
        std::fs::copy(path, target.join(format!("{name}.wasm")))?;
    }
    Ok(())
}
