//! `wasmudf build`: what a user sees when the build cannot go on. (What a built
//! component does is the business of `sql-tests/slt/languages/`.) Needs the language's
//! toolchain: skipped without it, failed under WASMUDF_LANGUAGES=required.

use std::path::Path;
use std::process::{Command, Output};

use wasmudf_sql_tests::languages::{required, LANGUAGES};

fn wasmudf(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wasmudf"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run wasmudf")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn componentize_py() -> Option<String> {
    let python = LANGUAGES.iter().find(|l| l.name == "python")?;
    match python.toolchain() {
        Some(p) => Some(p.display().to_string()),
        None => {
            assert!(
                !required(),
                "componentize-py is not installed (WASMUDF_LANGUAGES=required)"
            );
            eprintln!("skipped: componentize-py is not installed");
            None
        }
    }
}

#[test]
fn a_python_build_that_cannot_go_on_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // No toolchain: how to install it.
    let missing = wasmudf(
        &[
            "build",
            "--lang",
            "python",
            "--toolchain",
            "/nonexistent/componentize-py",
            "x.py",
        ],
        d,
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("x.py: no such file"),
        "{}",
        stderr(&missing)
    );
    std::fs::write(d.join("x.py"), "import wasmudf\n").unwrap();
    let missing = wasmudf(
        &[
            "build",
            "--lang",
            "python",
            "--toolchain",
            "/nonexistent/componentize-py",
            "x.py",
        ],
        d,
    );
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("pip install componentize-py==0.25.1"),
        "{}",
        stderr(&missing)
    );
    // A file name that is not a module name, or one the SDK uses.
    std::fs::write(d.join("my-funcs.py"), "").unwrap();
    let bad = wasmudf(&["build", "--lang", "python", "my-funcs.py"], d);
    assert!(
        stderr(&bad).contains("must be a Python module name"),
        "{}",
        stderr(&bad)
    );
    std::fs::write(d.join("aggregate.py"), "").unwrap();
    let taken = wasmudf(&["build", "--lang", "python", "aggregate.py"], d);
    assert!(
        stderr(&taken).contains("taken by the SDK"),
        "{}",
        stderr(&taken)
    );

    let Some(toolchain) = componentize_py() else {
        return;
    };
    // A function the SDK cannot describe: the build fails with the SDK's message.
    std::fs::write(
        d.join("untyped.py"),
        "import wasmudf\n\n@wasmudf.scalar\ndef f(x) -> int:\n    return x\n",
    )
    .unwrap();
    let untyped = wasmudf(
        &[
            "build",
            "--lang",
            "python",
            "--toolchain",
            &toolchain,
            "untyped.py",
        ],
        d,
    );
    assert!(!untyped.status.success());
    assert!(
        stderr(&untyped).contains("wasmudf.scalar f: parameter x has no type annotation"),
        "{}",
        stderr(&untyped)
    );
    assert!(!d.join("untyped.wasm").exists());

    // A good one: written, checked as the server would, its functions listed; the
    // build leaves nothing beside the source.
    std::fs::write(
        d.join("good.py"),
        "import wasmudf\n\n@wasmudf.scalar\ndef twice(x: int) -> int:\n    return 2 * x\n",
    )
    .unwrap();
    let good = wasmudf(
        &[
            "build",
            "--lang",
            "python",
            "--toolchain",
            &toolchain,
            "good.py",
        ],
        d,
    );
    assert!(good.status.success(), "{}", stderr(&good));
    let listed = String::from_utf8_lossy(&good.stdout);
    assert!(
        listed.contains("scalar twice(bigint) returns bigint"),
        "{listed}"
    );
    assert!(d.join("good.wasm").exists());
    assert!(
        !d.join("__pycache__").exists(),
        "the build wrote __pycache__ beside the source"
    );
}
