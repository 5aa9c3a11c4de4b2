//! Every sqllogictest file in `sql-tests/slt/` on both targets: in-process (the engine)
//! and over pgwire (this package's `wasmudf` binary). One test per file and target:
//! `cargo test --test slt -- ddl` runs the DDL suite on both.

use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};
use wasmudf_sql_tests::{run_file, slt_files, Target};

fn main() {
    let args = Arguments::from_args();
    let pattern = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql-tests/slt/**/*.slt");
    let files = slt_files(pattern).expect("slt files");
    assert!(!files.is_empty(), "no .slt files under {pattern}");
    let targets = [
        Target::InProcess,
        Target::Server(env!("CARGO_BIN_EXE_wasmudf").into()),
    ];
    let mut trials = Vec::new();
    for file in files {
        let name = file
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql-tests/slt"))
            .unwrap_or(&file)
            .display()
            .to_string();
        for target in &targets {
            let file = file.clone();
            let target = target.clone();
            trials.push(Trial::test(
                format!("{}::{name}", target.label()),
                move || {
                    let runtime = tokio::runtime::Builder::new_multi_thread()
                        .worker_threads(2)
                        .enable_all()
                        .build()
                        .map_err(|e| Failed::from(e.to_string()))?;
                    runtime
                        .block_on(run_file(&file, &target))
                        .map_err(Failed::from)
                },
            ));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
