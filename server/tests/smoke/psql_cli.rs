//! psql as a user runs it: a Wasm call, the meta-commands over a live catalog, Ctrl-C.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_calls_a_wasm_function() {
    let server = Server::start("psql");
    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::process::Command::from(psql(server.port))
            .args(["-A", "-t", "-c"])
            .arg("SELECT reverse_text('wasm') || '|' || gcd(12, 18)")
            .output(),
    )
    .await
    .expect("psql finished")
    .expect("psql is installed (Debian: postgresql-client)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "psql failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.trim(), "msaw|6");
}

/// psql's meta-commands read a live `pg_catalog`: Wasm functions (scalar and aggregate)
/// in `\df`, tables in `\dt` / `\d`, changes visible at once; `\x`, `\timing` and
/// `\set` + `:'var'` work as in PostgreSQL. Any error stops psql (ON_ERROR_STOP).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_meta_commands_read_a_live_catalog() {
    let server = Server::start("meta");
    let script = r#"
CREATE TABLE notes (id INT, body TEXT, score DOUBLE PRECISION);
CREATE FUNCTION my_gcd(bigint, bigint) RETURNS bigint LANGUAGE wasm AS 'examples/math.wasm', 'gcd';
\l
\l+
\dn
\dn+
\dt
\dt+
\d notes
\d+ cities
\df my_gcd
\df+ my_gcd
\df geo_mean
\du
\sf my_gcd
\sf my_gcd(int8,int8)
SET extra_float_digits = 2;
\dconfig
\dconfig max_index*
\dp notes
\dT
DROP FUNCTION my_gcd(bigint, bigint);
\df my_gcd
\x on
SELECT gcd(12, 18) AS g, reverse_text('ab') AS r;
\x off
\timing on
SELECT 1 AS one;
\timing off
\set word wasm
SELECT reverse_text(:'word') AS reversed;
"#;
    let mut child = tokio::process::Command::from(psql(server.port))
        .args(["-v", "ON_ERROR_STOP=1"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql is installed");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin.write_all(script.as_bytes()).await.expect("script");
    }
    let output = tokio::time::timeout(Duration::from_secs(120), child.wait_with_output())
        .await
        .expect("psql finished")
        .expect("psql output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "psql failed: {stderr}\n{stdout}");
    let lines: Vec<String> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let has = |line: &str| {
        assert!(
            lines.iter().any(|l| l == line),
            "psql printed no line {line:?}:\n{stdout}"
        )
    };
    // \l, \dn, \dt
    has("wasmudf | wasmudf | UTF-8 | en_US.UTF-8 | en_US.UTF-8 | | |");
    has("public | wasmudf");
    has("wasm | wasmudf");
    has("public | cities | table | wasmudf");
    has("public | notes | table | wasmudf");
    // \dt+, \dn+, \l+ (the database's size is its data directory's)
    has("public | notes | table | wasmudf | permanent | | |");
    has("public | wasmudf | |");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("wasmudf | wasmudf | UTF-8")
                && (l.contains(" kB | pg_default") || l.contains(" MB | pg_default"))),
        "no database size in \\l+:\n{stdout}"
    );
    // \d notes, \d+ cities
    has(r#"Table "public.notes""#);
    has("id | integer | | |");
    has("body | text | | |");
    has("score | double precision | | |");
    has("population | bigint | | | | plain | | |");
    // \df, \df+ (kind, types, language, source), an aggregate, \du
    has("public | my_gcd | bigint | bigint, bigint | func");
    has("public | my_gcd | bigint | bigint, bigint | func | immutable | safe | wasmudf | invoker | | wasm | gcd |");
    has("public | geo_mean | double precision | double precision | agg");
    has("wasmudf | Superuser |");
    // \sf (by name, and by name and argument types): a definition that runs again.
    assert_eq!(
        lines
            .iter()
            .filter(|l| l.as_str() == "CREATE OR REPLACE FUNCTION public.my_gcd(bigint, bigint)")
            .count(),
        2,
        "\\sf printed no definition:\n{stdout}"
    );
    has("RETURNS bigint");
    has("LANGUAGE wasm");
    has("IMMUTABLE STRICT");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("AS 'sha256:") && l.ends_with("', 'gcd'")),
        "\\sf printed no module:\n{stdout}"
    );
    // \dconfig: what differs from the defaults; by pattern, any parameter.
    has("extra_float_digits | 2");
    has("max_index_keys | 32");
    // \dp: the table, no privileges granted; \dT: no user-defined types.
    has("public | notes | table | | |");
    // DROP shows at once.
    assert_eq!(
        lines.iter().filter(|l| l.contains("| my_gcd |")).count(),
        2,
        "my_gcd still listed after DROP:\n{stdout}"
    );
    has("(0 rows)");
    // \x, \timing, \set
    has("-[ RECORD 1 ]");
    has("g | 6");
    has("r | ba");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Time: ") && l.ends_with(" ms")),
        "no timing line:\n{stdout}"
    );
    has("msaw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_ctrl_c_cancels_the_running_statement() {
    let dir = tempfile::tempdir().expect("tempdir");
    let process = start_with_hostile(&dir);
    let port = process.port();
    let psql = |sql: &str| {
        let mut cmd = tokio::process::Command::from(psql(port));
        cmd.args(["-c", sql])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let created = psql(CREATE_SPIN).output().await.expect("psql is installed");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let child = psql("SELECT spin(1)").spawn().expect("psql");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let pid = child.id().expect("psql pid").to_string();
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill");
    assert!(status.success());
    let output = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("psql exits after Ctrl-C")
        .expect("psql output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("canceling statement due to user request"),
        "psql said: {stderr}"
    );
}
