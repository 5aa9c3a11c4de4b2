//! Text a guest controls reaches neither the wire nor the log as it is: it cannot forge
//! ErrorResponse fields (SQLSTATE included) or log lines, nor flood either.

use super::*;

const CREATE_FORGE: &str = "CREATE FUNCTION forge(bigint) RETURNS bigint LANGUAGE wasm \
                            AS 'hostile/forger.wasm'";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_error_text_cannot_forge_the_wire_or_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let modules = dir.path().join("modules");
    wasmudf_sql_tests::write_modules_dir(&modules).expect("modules");
    // At info level, where every failed statement is logged.
    let mut server = LoggedServer::start(
        dir.path(),
        &[
            "--modules-dir".as_ref(),
            modules.as_os_str(),
            "--log-level".as_ref(),
            "info".as_ref(),
        ],
    );
    let client = server.client().await;
    client.batch_execute(CREATE_FORGE).await.expect("create");
    let fail = |sql: &'static str| {
        let client = &client;
        async move {
            let err = client.simple_query(sql).await.expect_err(sql);
            err.as_db_error()
                .unwrap_or_else(|| panic!("{sql}: {err}"))
                .clone()
        }
    };

    // NUL bytes would end the message field: the guest's "C00000" and "H..." must stay
    // text inside the message, not become the SQLSTATE and a hint.
    let forged = fail("SELECT forge(1)").await;
    assert_eq!(forged.code().code(), "38000", "{}", forged.message());
    assert!(
        forged.message().starts_with("function forge: boom"),
        "{}",
        forged.message()
    );
    assert!(forged.message().contains("everything is fine"));
    assert_eq!(forged.hint(), None);

    // A newline reaches the client (PostgreSQL messages may have several lines) ...
    let multiline = fail("SELECT forge(2)").await;
    assert_eq!(multiline.code().code(), "38000");
    assert!(multiline.message().contains("boom\n2026"));

    // ... a 4 MB message does not: it is cut, with its length noted.
    let flood = fail("SELECT forge(3)").await;
    assert_eq!(flood.code().code(), "38000");
    assert!(
        flood.message().len() < wasmudf_engine::GUEST_TEXT_LIMIT + 200,
        "{} bytes",
        flood.message().len()
    );
    assert!(
        flood.message().contains("... (cut: 4200000 bytes in all)"),
        "{}",
        &flood.message()[flood.message().len() - 80..]
    );

    // The connection goes on.
    assert_eq!(query(&client, "SELECT forge(7)").await, vec![row(&["7"])]);

    // The log has each failure on one line of its own: no line the guest wrote, and
    // not the 4 MB.
    let log = server.stop();
    assert!(
        !log.lines()
            .any(|l| l.starts_with("2026-12-01T00:00:00.000000Z")),
        "a forged line in the log:\n{log}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("statement failed"))
            .count(),
        3,
        "{log}"
    );
    assert!(log.len() < 64 << 10, "the log grew to {} bytes", log.len());
}
