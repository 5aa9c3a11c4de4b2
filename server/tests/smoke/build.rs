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

/// The language's toolchain here, or None (the test is skipped; failed when required).
fn toolchain(language: &str) -> Option<String> {
    let found = LANGUAGES
        .iter()
        .find(|l| l.name == language)
        .and_then(|l| l.toolchain());
    if found.is_none() {
        assert!(
            !required(),
            "no {language} toolchain here (WASMUDF_LANGUAGES=required)"
        );
        eprintln!("skipped: no {language} toolchain here");
    }
    found.map(|p| p.display().to_string())
}

/// `wasmudf build --lang LANGUAGE --toolchain TOOLCHAIN FILE` in `dir`.
fn build(dir: &Path, language: &str, toolchain: &str, file: &str) -> Output {
    wasmudf(
        &["build", "--lang", language, "--toolchain", toolchain, file],
        dir,
    )
}

#[test]
fn a_python_build_that_cannot_go_on_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    // A missing file; then a missing toolchain, and how to install it.
    let missing = build(d, "python", "/nonexistent/componentize-py", "x.py");
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("x.py: no such file"),
        "{}",
        stderr(&missing)
    );
    std::fs::write(d.join("x.py"), "import wasmudf\n").unwrap();
    let missing = build(d, "python", "/nonexistent/componentize-py", "x.py");
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

    let Some(toolchain) = toolchain("python") else {
        return;
    };
    // A function the SDK cannot describe: the build fails with the SDK's message.
    std::fs::write(
        d.join("untyped.py"),
        "import wasmudf\n\n@wasmudf.scalar\ndef f(x) -> int:\n    return x\n",
    )
    .unwrap();
    let untyped = build(d, "python", &toolchain, "untyped.py");
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
    let good = build(d, "python", &toolchain, "good.py");
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

#[test]
fn a_c_build_that_cannot_go_on_says_why() {
    let Some(clang) = toolchain("c") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let build = |file: &str| build(d, "c", &clang, file);

    // The compiler's own message, and no output.
    std::fs::write(d.join("broken.c"), "#include \"wasmudf.h\"\nint f( {\n").unwrap();
    let broken = build("broken.c");
    assert!(!broken.status.success());
    assert!(
        stderr(&broken).contains("clang failed"),
        "{}",
        stderr(&broken)
    );
    assert!(
        stderr(&broken).contains("broken.c:2"),
        "{}",
        stderr(&broken)
    );
    assert!(!d.join("broken.wasm").exists());

    // No WASMUDF_EXPORT: the link names what is missing.
    std::fs::write(d.join("empty.c"), "#include \"wasmudf.h\"\n").unwrap();
    let empty = build("empty.c");
    assert!(!empty.status.success());
    assert!(
        stderr(&empty).contains("wasmudf_functions"),
        "{}",
        stderr(&empty)
    );

    // printf links against the deny-all adapter: still no import.
    std::fs::write(
        d.join("chatty.c"),
        "#include <stdio.h>\n#include \"wasmudf.h\"\n\
         static int64_t loud(int64_t x) { printf(\"%lld\\n\", (long long)x); return x; }\n\
         WASMUDF_ROWS_1(c_loud, i64, loud, i64)\n\
         WASMUDF_EXPORT(WASMUDF_SCALAR(\"c_loud\", c_loud, WASMUDF_INT64, WASMUDF_INT64))\n",
    )
    .unwrap();
    let chatty = build("chatty.c");
    assert!(chatty.status.success(), "{}", stderr(&chatty));
    let listed = String::from_utf8_lossy(&chatty.stdout);
    assert!(
        listed.contains("scalar c_loud(bigint) returns bigint"),
        "{listed}"
    );
}

#[test]
fn a_go_build_that_cannot_go_on_says_why() {
    let Some(go) = toolchain("go") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let build = |file: &str| build(d, "go", &go, file);

    // The compiler's own message, naming the user's file and line; no output.
    std::fs::write(
        d.join("broken.go"),
        "package main\n\nimport \"wasmudf/udf\"\n\nfunc init() {\n\tudf.Scalar1(\"f\", 42)\n}\n",
    )
    .unwrap();
    let broken = build("broken.go");
    assert!(!broken.status.success());
    let message = stderr(&broken);
    assert!(message.contains("go build failed"), "{message}");
    assert!(message.contains("broken.go:6"), "{message}");
    assert!(!d.join("broken.wasm").exists());

    // Not a Go file.
    std::fs::write(d.join("funcs.txt"), "package main\n").unwrap();
    let not_go = build("funcs.txt");
    assert!(!not_go.status.success());
    assert!(
        stderr(&not_go).contains("a Go source file (NAME.go) is needed"),
        "{}",
        stderr(&not_go)
    );

    // A Go that is too old is named, with what is needed.
    let old_go = d.join("old-go");
    std::fs::write(&old_go, "#!/bin/sh\necho go1.19.8\n").unwrap();
    std::fs::set_permissions(&old_go, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let old = wasmudf(
        &[
            "build",
            "--lang",
            "go",
            "--toolchain",
            "./old-go",
            "broken.go",
        ],
        d,
    );
    assert!(!old.status.success());
    assert!(
        stderr(&old).contains("is go1.19.8: Go 1.27.1 or later is needed"),
        "{}",
        stderr(&old)
    );

    // A good one: println links against the deny-all adapter (no import), the
    // functions are listed with their SQL types, nothing is left beside the source.
    std::fs::write(
        d.join("good.go"),
        "package main\n\nimport \"wasmudf/udf\"\n\nfunc init() {\n\
         \tudf.Scalar2(\"twice\", func(x int64, s string) string { println(x); return s + s })\n}\n",
    )
    .unwrap();
    // (The toolchain given relative to the current directory, as a user types it.)
    std::os::unix::fs::symlink(&go, d.join("go")).unwrap();
    let good = wasmudf(
        &["build", "--lang", "go", "--toolchain", "./go", "good.go"],
        d,
    );
    assert!(good.status.success(), "{}", stderr(&good));
    let listed = String::from_utf8_lossy(&good.stdout);
    assert!(
        listed.contains("scalar twice(bigint, text) returns text"),
        "{listed}"
    );
    let mut left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            "broken.go",
            "funcs.txt",
            "go",
            "good.go",
            "good.wasm",
            "old-go"
        ]
    );
}

#[test]
fn a_javascript_build_that_cannot_go_on_says_why() {
    let Some(componentize_js) = toolchain("js") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let build = |file: &str| build(d, "js", &componentize_js, file);

    // A syntax error: componentize-js's message, naming the file; no output.
    std::fs::write(
        d.join("broken.js"),
        "import { scalar } from \"./wasmudf.js\";\nscalar(\"f\", [\"bigint\"], \"bigint\", (x) => {\n",
    )
    .unwrap();
    let broken = build("broken.js");
    assert!(!broken.status.success());
    let message = stderr(&broken);
    assert!(message.contains("componentize-js failed"), "{message}");
    assert!(message.contains("broken.js"), "{message}");
    assert!(!d.join("broken.wasm").exists());

    // An SDK misuse at registration (a type that does not exist) is the SDK's message.
    std::fs::write(
        d.join("misuse.js"),
        "import { scalar } from \"./wasmudf.js\";\nscalar(\"f\", [\"bignum\"], \"bigint\", (x) => x);\n",
    )
    .unwrap();
    let misuse = build("misuse.js");
    assert!(!misuse.status.success());
    assert!(
        stderr(&misuse).contains("function f: not a wasmudf type: bignum"),
        "{}",
        stderr(&misuse)
    );

    // Not a module, and a name the build uses.
    std::fs::write(d.join("funcs.txt"), "").unwrap();
    let not_js = build("funcs.txt");
    assert!(
        stderr(&not_js).contains("a JavaScript module (NAME.js) is needed"),
        "{}",
        stderr(&not_js)
    );
    std::fs::write(d.join("wasmudf.js"), "").unwrap();
    let taken = build("wasmudf.js");
    assert!(
        stderr(&taken).contains("the SDK has a file of that name"),
        "{}",
        stderr(&taken)
    );

    // A good one, listed with its SQL signature.
    std::fs::write(
        d.join("good.js"),
        "import { scalar, types as t } from \"./wasmudf.js\";\n\
         scalar(\"twice\", [t.int64, \"text\"], t.text, (x, s) => s + s);\n",
    )
    .unwrap();
    let good = build("good.js");
    assert!(good.status.success(), "{}", stderr(&good));
    let listed = String::from_utf8_lossy(&good.stdout);
    assert!(
        listed.contains("scalar twice(bigint, text) returns text"),
        "{listed}"
    );
}

/// The repository's root (this package is `server/`).
fn repo() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn wasmudf_new_makes_a_rust_crate_that_builds_out_of_the_tree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let made = wasmudf(&["new", "--lang", "rust", "myfuncs"], d);
    assert!(made.status.success(), "{}", stderr(&made));
    let config = std::fs::read_to_string(d.join("myfuncs/.cargo/config.toml")).unwrap();
    assert!(config.contains("-unroll-partial-threshold=200"), "{config}");
    assert!(config.contains("wasm32-unknown-unknown"), "{config}");
    // Nothing is overwritten, and a name must be a crate name.
    let again = wasmudf(&["new", "--lang", "rust", "myfuncs"], d);
    assert!(!again.status.success());
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let bad = wasmudf(&["new", "--lang", "rust", "my-funcs"], d);
    assert!(
        stderr(&bad).contains("letters, digits and `_`"),
        "{}",
        stderr(&bad)
    );
    assert!(!d.join("my-funcs").exists());
    let no_sdk = wasmudf(
        &["new", "--lang", "rust", "other", "--sdk", "/nonexistent"],
        d,
    );
    assert!(
        stderr(&no_sdk).contains("pass --sdk DIR"),
        "{}",
        stderr(&no_sdk)
    );

    // Built with the guest workspace's lock and target directory: offline, and the
    // SDK's dependencies are already compiled there.
    std::fs::copy(repo().join("udfs/Cargo.lock"), d.join("myfuncs/Cargo.lock")).unwrap();
    let built = Command::new(env!("CARGO_BIN_EXE_wasmudf"))
        .args(["build", "--lang", "rust", "myfuncs"])
        .current_dir(d)
        .env("CARGO_TARGET_DIR", repo().join("target/udfs-build"))
        .env("CARGO_NET_OFFLINE", "true")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&built.stdout);
    assert!(built.status.success(), "{}{stdout}", stderr(&built));
    assert!(
        stdout.contains("scalar add_one(bigint) returns bigint"),
        "{stdout}"
    );
    assert!(stdout.contains("aggregate my_sum(bigint)"), "{stdout}");
    assert!(d.join("myfuncs/myfuncs.wasm").is_file());
}

#[test]
fn wasmudf_new_makes_a_project_in_every_other_language() {
    for (language, file) in [("python", "py"), ("c", "c"), ("go", "go"), ("js", "js")] {
        let Some(toolchain) = toolchain(language) else {
            continue;
        };
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let made = wasmudf(&["new", "--lang", language, "myfuncs"], d);
        assert!(made.status.success(), "{language}: {}", stderr(&made));
        assert!(d.join("myfuncs/README.md").is_file());
        let source = format!("myfuncs/myfuncs.{file}");
        let built = build(d, language, &toolchain, &source);
        let stdout = String::from_utf8_lossy(&built.stdout);
        assert!(
            built.status.success(),
            "{language}: {}{stdout}",
            stderr(&built)
        );
        assert!(stdout.contains("add_one(bigint)"), "{language}: {stdout}");
        assert!(stdout.contains("my_sum(bigint)"), "{language}: {stdout}");
    }
}
