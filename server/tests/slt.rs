//! Every sqllogictest file in `sql-tests/slt/` on both targets: in-process (the engine)
//! and over pgwire (this package's `wasmudf` binary), and DataFusion's upstream files in
//! `sql-tests/conformance/` over pgwire. One test per file and target:
//! `cargo test --test slt -- ddl` runs the DDL suite on both.

// A test or bench harness: an unwrap that fails is a failed run, not a crashed server.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use libtest_mimic::{Arguments, Failed, Trial};
use wasmudf_sql_tests::{is_upstream, languages, run_file, slt_files, Target};

fn main() {
    let args = Arguments::from_args();
    let pattern = concat!(env!("CARGO_MANIFEST_DIR"), "/../sql-tests/slt/**/*.slt");
    let mut files = slt_files(pattern).expect("slt files");
    assert!(!files.is_empty(), "no .slt files under {pattern}");
    let upstream = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../sql-tests/conformance/**/*.slt"
    );
    files.extend(slt_files(upstream).expect("conformance files"));
    let targets = [
        Target::InProcess,
        Target::Server(env!("CARGO_BIN_EXE_wasmudf").into()),
    ];
    // The other languages' examples, built once for both targets. A language whose
    // toolchain is missing has its suite skipped (failed under WASMUDF_LANGUAGES=
    // required); one whose build fails has it failed.
    let wasmudf = Path::new(env!("CARGO_BIN_EXE_wasmudf"));
    let built: Vec<(&str, Result<(), String>)> = languages::LANGUAGES
        .iter()
        .map(|l| (l.name, l.build_examples(wasmudf).map(drop)))
        .collect();
    let skippable = |language: &str| {
        !languages::required()
            && languages::LANGUAGES
                .iter()
                .any(|l| l.name == language && l.toolchain().is_none())
    };
    let mut trials = Vec::new();
    for file in files {
        let language = languages::of_suite(&file);
        let unavailable = language.and_then(|l| {
            built
                .iter()
                .find(|(name, _)| *name == l.name)
                .and_then(|(_, r)| r.clone().err())
        });
        let skip = language.is_some_and(|l| skippable(l.name));
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql-tests");
        let name = file
            .strip_prefix(root.join("slt"))
            .or_else(|_| file.strip_prefix(&root))
            .unwrap_or(&file)
            .display()
            .to_string();
        // Upstream files exist to show the wire layer keeps DataFusion's semantics.
        let targets = if is_upstream(&file) {
            &targets[1..]
        } else {
            &targets[..]
        };
        for target in targets {
            let file = file.clone();
            let target = target.clone();
            let unavailable = unavailable.clone();
            let name = format!("{}::{name}", target.label());
            if let Some(why) = unavailable.clone().filter(|_| skip) {
                eprintln!("skipped {name}: {why}");
                trials.push(Trial::test(name, || Ok(())).with_ignored_flag(true));
                continue;
            }
            trials.push(Trial::test(name, move || {
                if let Some(why) = unavailable {
                    return Err(Failed::from(why));
                }
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .map_err(|e| Failed::from(e.to_string()))?;
                runtime
                    .block_on(run_file(&file, &target))
                    .map_err(Failed::from)
            }));
        }
    }
    libtest_mimic::run(&args, trials).exit();
}
