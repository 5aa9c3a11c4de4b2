//! CREATE / DROP FUNCTION through the engine's SQL entry point.

use crate::common::{fails_with, ok, open_db, scalar, squash};
use base64::Engine as _;

const GCD: &str = "CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint \
                   LANGUAGE wasm IMMUTABLE STRICT AS 'math.wasm', 'gcd'";

#[tokio::test]
async fn create_call_and_drop_a_function() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    assert_eq!(ok(&s, GCD).await, "CREATE FUNCTION");
    assert_eq!(scalar(&s, "SELECT gcd(1071, 462)").await, "21");
    // Another session sees it at its next statement.
    let other = db.session("bob");
    assert_eq!(
        scalar(
            &other,
            "SELECT gcd(a, 6) FROM (VALUES (9), (4)) t(a) ORDER BY 1"
        )
        .await,
        "2"
    );
    assert_eq!(
        ok(&s, "DROP FUNCTION gcd(bigint, bigint)").await,
        "DROP FUNCTION"
    );
    // gcd is also a DataFusion built-in: dropping the Wasm one brings it back.
    assert_eq!(scalar(&other, "SELECT gcd(12, 18)").await, "6");
    fails_with(&s, "DROP FUNCTION gcd", "42501", "built-in").await;
    assert_eq!(
        ok(&s, "DROP FUNCTION IF EXISTS nothing_here").await,
        "DROP FUNCTION"
    );
}

#[tokio::test]
async fn the_export_defaults_to_the_sql_name_and_options_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    ok(
        &s,
        "CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'",
    )
    .await;
    assert_eq!(scalar(&s, "SELECT add_one(41)").await, "42");
    // A called-on-null component declared STRICT: the host makes nulls, the guest never sees them.
    ok(
        &s,
        "CREATE FUNCTION is_missing(bigint) RETURNS boolean LANGUAGE wasm STRICT AS 'types.wasm'",
    )
    .await;
    assert_eq!(
        scalar(&s, "SELECT is_missing(CAST(NULL AS bigint)) IS NULL").await,
        "true"
    );
    // ... and the same export declared CALLED ON NULL INPUT under another name sees them.
    ok(
        &s,
        "CREATE FUNCTION missing(bigint) RETURNS boolean LANGUAGE wasm CALLED ON NULL INPUT \
         AS 'types.wasm', 'is_missing'",
    )
    .await;
    assert_eq!(
        scalar(&s, "SELECT missing(CAST(NULL AS bigint))").await,
        "true"
    );
    let listed = ok(
        &s,
        "SELECT name, arguments, returns, volatility, strict FROM wasm.functions ORDER BY name",
    )
    .await;
    assert!(
        squash(&listed).contains("| is_missing | bigint | boolean | immutable | true |"),
        "{listed}"
    );
    assert!(
        squash(&listed).contains("| missing | bigint | boolean | immutable | false |"),
        "{listed}"
    );
}

#[tokio::test]
async fn definitions_that_do_not_match_the_component_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    let cases = [
        ("CREATE FUNCTION gcd(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'", "takes 2 argument(s)"),
        ("CREATE FUNCTION gcd(bigint, text) RETURNS bigint LANGUAGE wasm AS 'math.wasm'", "argument 2 of gcd is declared text but the component's gcd takes bigint"),
        ("CREATE FUNCTION gcd(bigint, bigint) RETURNS text LANGUAGE wasm AS 'math.wasm'", "declared to return text but the component's gcd returns bigint"),
        ("CREATE FUNCTION nope(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'", "has no function \"nope\" (it has: "),
        ("CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint AS 'math.wasm'", "no language specified"),
        ("CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm", "AS 'module.wasm'"),
        ("CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'wasi_fs.wasm', 'f'", "imports"),
        ("CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'base64:AGFzbQEAAAA='", "core WebAssembly module"),
        ("CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'base64:not base64!'", "not valid base64"),
        ("CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'missing.wasm'", "cannot read module"),
        ("CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'sha256:00'", "not a SHA-256"),
        (&format!("CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'sha256:{}'", "ab".repeat(32)), "no stored module"),
        // The component says calls() is volatile: it may not be declared immutable.
        ("CREATE FUNCTION calls() RETURNS bigint LANGUAGE wasm IMMUTABLE AS 'types.wasm'", "VOLATILE in its component"),
        // A strict component's code never handles nulls.
        ("CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm CALLED ON NULL INPUT AS 'math.wasm'", "cannot be declared CALLED ON NULL INPUT"),
    ];
    for (sql, text) in cases {
        fails_with(&s, sql, "42P13", text).await;
    }
    fails_with(
        &s,
        "CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE plpgsql AS 'x'",
        "0A000",
        "LANGUAGE plpgsql",
    )
    .await;
    fails_with(
        &s,
        "CREATE FUNCTION other.f(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'",
        "0A000",
        "schema public",
    )
    .await;
    fails_with(&s, "CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm SET search_path = 'x' AS 'math.wasm'", "0A000", "search_path").await;
    // Nothing of the failed statements was stored.
    assert_eq!(scalar(&s, "SELECT count(*) FROM wasm.functions").await, "0");
    assert_eq!(scalar(&s, "SELECT count(*) FROM wasm.modules").await, "0");
}

#[tokio::test]
async fn names_clash_only_as_sql_says() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    ok(&s, GCD).await;
    fails_with(&s, GCD, "42723", "already exists").await;
    ok(&s, &GCD.replace("CREATE", "CREATE OR REPLACE")).await;
    // Built-ins can be neither shadowed nor dropped.
    fails_with(
        &s,
        "CREATE FUNCTION abs(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'",
        "42723",
        "built-in",
    )
    .await;
    fails_with(&s, "DROP FUNCTION abs", "42501", "built-in").await;
    fails_with(&s, "DROP FUNCTION IF EXISTS sum", "42501", "built-in").await;
    assert_eq!(scalar(&s, "SELECT abs(-3)").await, "3");
    // Unquoted names fold to lower case; quoted names keep theirs.
    ok(
        &s,
        "CREATE FUNCTION AddOne(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'",
    )
    .await;
    assert_eq!(scalar(&s, "SELECT ADDONE(1) + addone(1)").await, "4");
    ok(&s, "CREATE FUNCTION \"PlusOne\"(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'").await;
    assert_eq!(scalar(&s, "SELECT \"PlusOne\"(1)").await, "2");
    fails_with(&s, "SELECT PlusOne(1)", "42883", "plusone").await;
    ok(&s, "DROP FUNCTION \"PlusOne\"").await;
    ok(&s, "DROP FUNCTION public.addone(bigint)").await;
}

#[tokio::test]
async fn overloads_resolve_by_argument_types() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    ok(
        &s,
        "CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'",
    )
    .await;
    ok(
        &s,
        "CREATE FUNCTION f(text) RETURNS text LANGUAGE wasm AS 'strings.wasm', 'reverse_text'",
    )
    .await;
    ok(&s, "CREATE FUNCTION f(double precision) RETURNS double precision LANGUAGE wasm AS 'types.wasm', 'echo_f64'").await;
    assert_eq!(scalar(&s, "SELECT f(41)").await, "42");
    assert_eq!(scalar(&s, "SELECT f('abc')").await, "cba");
    assert_eq!(scalar(&s, "SELECT f(2.5)").await, "2.5");
    // An integer column prefers the integer overload (no conversion beats one).
    assert_eq!(scalar(&s, "SELECT f(CAST(1 AS integer))").await, "2");
    fails_with(
        &s,
        "SELECT f(true)",
        "42883",
        "candidates are f(bigint), f(text), f(double precision)",
    )
    .await;
    fails_with(&s, "DROP FUNCTION f", "42725", "not unique").await;
    ok(&s, "DROP FUNCTION f(text)").await;
    fails_with(&s, "SELECT f('abc')", "42883", "f(text) does not exist").await;
    assert_eq!(scalar(&s, "SELECT f(41)").await, "42");
    fails_with(
        &s,
        "DROP FUNCTION f(text)",
        "42883",
        "f(text) does not exist",
    )
    .await;
    ok(&s, "DROP FUNCTION f(bigint), f(double precision)").await;
    fails_with(&s, "SELECT f(41)", "42883", "").await;
}

#[tokio::test]
async fn modules_come_from_files_inline_bytes_or_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    let bytes = std::fs::read(wasmudf_udfs::MATH).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    ok(
        &s,
        &format!(
            "CREATE FUNCTION inc(bigint) RETURNS bigint LANGUAGE wasm AS 'base64:{b64}', 'add_one'"
        ),
    )
    .await;
    assert_eq!(scalar(&s, "SELECT inc(1)").await, "2");
    let hash = scalar(&s, "SELECT hash FROM wasm.modules").await;
    ok(&s, &format!("CREATE FUNCTION g(bigint, bigint) RETURNS bigint LANGUAGE wasm AS 'sha256:{hash}', 'gcd'")).await;
    assert_eq!(scalar(&s, "SELECT g(12, 18)").await, "6");
    assert_eq!(scalar(&s, "SELECT functions FROM wasm.modules").await, "2");
    // Absolute paths inside the modules directory are fine; anything outside is not.
    ok(
        &s,
        &format!(
            "CREATE FUNCTION h(bigint) RETURNS bigint LANGUAGE wasm AS '{}', 'add_one'",
            wasmudf_udfs::MATH
        ),
    )
    .await;
    for bad in ["../udfs/math.wasm", "/etc/passwd", "sub/../../math.wasm"] {
        fails_with(
            &s,
            &format!(
                "CREATE FUNCTION x(bigint) RETURNS bigint LANGUAGE wasm AS '{bad}', 'add_one'"
            ),
            "42501",
            "outside the modules directory",
        )
        .await;
    }
    // Dropping the last user of a module removes its bytes.
    ok(&s, "DROP FUNCTION inc; DROP FUNCTION g; DROP FUNCTION h").await;
    assert_eq!(scalar(&s, "SELECT count(*) FROM wasm.modules").await, "0");
}

#[tokio::test]
async fn wasm_load_registers_a_whole_module() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    let listed = ok(
        &s,
        "SELECT name, arguments, returns FROM wasm_load('math.wasm') ORDER BY name",
    )
    .await;
    assert!(
        squash(&listed).contains("| gcd | bigint, bigint | bigint |"),
        "{listed}"
    );
    assert_eq!(scalar(&s, "SELECT gcd(add_one(11), 18)").await, "6");
    // Loading the same module again changes nothing (a client that describes a
    // statement before running it plans the call twice) ...
    let again = ok(&s, "SELECT name FROM wasm_load('math.wasm') ORDER BY name").await;
    assert!(squash(&again).contains("| safe_div |"), "{again}");
    assert_eq!(scalar(&s, "SELECT count(*) FROM wasm.functions").await, "4");
    // ... but a name defined otherwise is a conflict, and nothing of the load is kept.
    ok(&s, "DROP FUNCTION add_one").await;
    ok(&s, "CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one_batch'").await;
    fails_with(
        &s,
        "SELECT * FROM wasm_load('math.wasm')",
        "42723",
        "already exists",
    )
    .await;
    assert_eq!(scalar(&s, "SELECT count(*) FROM wasm.functions").await, "4");
    fails_with(&s, "SELECT * FROM wasm_load(42)", "42P13", "string literal").await;
}

#[tokio::test]
async fn limits_per_function_and_per_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    ok(&s, "CREATE FUNCTION spin(bigint) RETURNS bigint LANGUAGE wasm SET wasm.fuel = '1000000' SET wasm.timeout = '5s' AS 'spin.wasm'").await;
    fails_with(&s, "SELECT spin(1)", "54000", "wasm.fuel = 1000000").await;
    let listed = ok(&s, "SELECT fuel, timeout FROM wasm.functions").await;
    assert!(squash(&listed).contains("| 1000000 | 5000ms |"), "{listed}");
    // Session defaults apply to functions without their own setting.
    ok(
        &s,
        "CREATE FUNCTION spin2(bigint) RETURNS bigint LANGUAGE wasm AS 'spin.wasm', 'spin'",
    )
    .await;
    assert_eq!(ok(&s, "SET wasm.fuel = '2000000'").await, "SET");
    // PostgreSQL's SHOW: one column named after the setting.
    assert_eq!(scalar(&s, "SHOW wasm.fuel").await, "2000000");
    let shown = ok(&s, "SHOW wasm.fuel").await;
    assert!(shown.contains("| wasm.fuel |"), "{shown}");
    fails_with(&s, "SELECT spin2(1)", "54000", "wasm.fuel = 2000000").await;
    // ... but not to other sessions.
    let other = db.session("bob");
    let shown = ok(&other, "SHOW wasm.fuel").await;
    assert!(shown.contains("2000000000"), "{shown}");
    ok(&s, "SET wasm.fuel TO DEFAULT").await;
    let shown = ok(&s, "SHOW wasm.fuel").await;
    assert!(shown.contains("2000000000"), "{shown}");
    // Limits above the ceilings, malformed values, and the process-wide stack are refused.
    fails_with(&s, "SET wasm.memory = '64GB'", "22023", "ceiling").await;
    fails_with(&s, "SET wasm.timeout = 'soon'", "22023", "duration").await;
    fails_with(&s, "SET wasm.stack = '16MB'", "22023", "ceiling").await;
    fails_with(
        &s,
        "SET wasm.stack = '1kB'",
        "22023",
        "minimum of 65536 bytes",
    )
    .await;
    fails_with(&s, "CREATE FUNCTION r(bigint) RETURNS bigint LANGUAGE wasm SET wasm.stack = '9MB' AS 'recursion.wasm', 'recurse_to'", "22023", "ceiling").await;
    // The stack as the others: a session setting, taken by a function FROM CURRENT.
    assert_eq!(scalar(&s, "SHOW wasm.stack").await, "1MB");
    ok(&s, "SET wasm.stack = '2MB'").await;
    assert_eq!(scalar(&s, "SHOW wasm.stack").await, "2MB");
    ok(&s, "CREATE FUNCTION r(bigint) RETURNS bigint LANGUAGE wasm SET wasm.stack FROM CURRENT AS 'recursion.wasm', 'recurse_to'").await;
    ok(&s, "RESET wasm.stack").await;
    assert_eq!(
        scalar(&s, "SELECT stack FROM wasm.functions WHERE name = 'r'").await,
        "2MB"
    );
    assert_eq!(scalar(&s, "SELECT r(1000)").await, "-499");
    // FROM CURRENT takes the value in effect, the server default if never set.
    ok(&s, "CREATE FUNCTION r2(bigint) RETURNS bigint LANGUAGE wasm SET wasm.fuel FROM CURRENT SET wasm.stack FROM CURRENT AS 'recursion.wasm', 'recurse_to'").await;
    let listed = ok(
        &s,
        "SELECT fuel, stack FROM wasm.functions WHERE name = 'r2'",
    )
    .await;
    assert!(squash(&listed).contains("| 2000000000 | 1MB |"), "{listed}");
    // Sizes are rounded up to a power of two.
    ok(&s, "SET wasm.stack = '3MB'").await;
    assert_eq!(scalar(&s, "SHOW wasm.stack").await, "4MB");
    ok(&s, "RESET wasm.stack").await;
    fails_with(&s, "CREATE FUNCTION m(bigint) RETURNS bigint LANGUAGE wasm SET wasm.memory = '64GB' AS 'math.wasm', 'add_one'", "22023", "ceiling").await;
    // Session memory limit stops a memory bomb; the next statement works.
    ok(
        &s,
        "CREATE FUNCTION membomb(bigint) RETURNS bigint LANGUAGE wasm AS 'membomb.wasm'",
    )
    .await;
    ok(&s, "SET wasm.memory = '16MB'").await;
    fails_with(&s, "SELECT membomb(1)", "53200", "16777216 bytes").await;
    fails_with(&s, "SELECT spin(1)", "54000", "").await;
    ok(
        &s,
        "CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'",
    )
    .await;
    assert_eq!(scalar(&s, "SELECT add_one(1)").await, "2");
}

#[tokio::test]
async fn information_schema_lists_wasm_functions() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    ok(&s, GCD).await;
    ok(
        &s,
        "CREATE FUNCTION f(text) RETURNS text LANGUAGE wasm AS 'strings.wasm', 'reverse_text'",
    )
    .await;
    let routines = ok(&s, "SELECT routine_name, data_type, function_type, is_deterministic FROM information_schema.routines WHERE routine_name IN ('f', 'gcd') ORDER BY 1").await;
    assert!(
        squash(&routines).contains("| f | text | SCALAR | true |"),
        "{routines}"
    );
    assert!(
        squash(&routines).contains("| gcd | bigint | SCALAR | true |"),
        "{routines}"
    );
    let params = ok(&s, "SELECT specific_name, ordinal_position, data_type FROM information_schema.parameters WHERE specific_name LIKE 'gcd(%' ORDER BY 1, 2").await;
    assert!(
        squash(&params).contains("| gcd(bigint, bigint) | 2 | bigint |"),
        "{params}"
    );
    // Built-ins are still there, and SHOW TABLES still works.
    assert_eq!(
        scalar(&s, "SELECT count(*) > 100 FROM information_schema.routines").await,
        "true"
    );
    ok(&s, "SHOW TABLES").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn or_replace_leaves_running_queries_on_the_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(dir.path()).await;
    let s = db.session("alice");
    ok(
        &s,
        "CREATE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm', 'add_one'",
    )
    .await;
    // A query planned (and streaming) before the replacement...
    let mut outs = s
        .execute("SELECT sum(f(value)) FROM generate_series(1, 2000000)")
        .await
        .unwrap();
    let Some(wasmudf_engine::Output::Rows(running)) = outs.pop() else {
        panic!("no rows")
    };
    let other = db.session("bob");
    ok(&other, "CREATE OR REPLACE FUNCTION f(bigint) RETURNS bigint LANGUAGE wasm AS 'types.wasm', 'echo_i64'").await;
    // ... finishes with the old function, new queries get the new one.
    let batches = wasmudf_engine::collect(running).await.unwrap();
    let old =
        datafusion::arrow::util::display::array_value_to_string(batches[0].column(0), 0).unwrap();
    assert_eq!(old, (2_000_000u64 * 2_000_001 / 2 + 2_000_000).to_string());
    assert_eq!(scalar(&s, "SELECT f(41)").await, "41");
}

#[tokio::test]
async fn only_administrators_define_functions_and_read_server_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = wasmudf_engine::DatabaseConfig::new(dir.path());
    config.modules_dir = Some(wasmudf_udfs::DIR.into());
    config.admin_roles = Some(vec!["admin".into()]);
    let db = wasmudf_engine::Database::open(config).await.unwrap();
    let admin = db.session("admin");
    let alice = db.session("alice");
    ok(
        &admin,
        "CREATE FUNCTION add_one(bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'",
    )
    .await;
    let csv = dir.path().join("x.csv");
    std::fs::write(&csv, "a\n1\n").unwrap();
    for sql in [
        "CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm AS 'math.wasm'"
            .to_string(),
        "DROP FUNCTION add_one".to_string(),
        "SELECT * FROM wasm_load('math.wasm')".to_string(),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '{}'",
            csv.display()
        ),
    ] {
        fails_with(&alice, &sql, "42501", "role \"alice\" may not").await;
    }
    // Everyone may call functions and keep their own tables.
    ok(&alice, "CREATE TABLE mine AS SELECT add_one(1) AS v").await;
    assert_eq!(scalar(&alice, "SELECT v FROM mine").await, "2");
    ok(&admin, "DROP FUNCTION add_one").await;
}
