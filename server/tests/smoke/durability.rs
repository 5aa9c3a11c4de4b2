//! What was created over the wire survives a SIGKILL of the server.

use super::*;

#[tokio::test]
async fn functions_and_tables_created_over_the_wire_survive_a_kill() {
    let mut server = Server::start("persist");
    let client = server.client().await;
    client
        .simple_query(
            "CREATE FUNCTION rev(text) RETURNS text LANGUAGE wasm STRICT \
             AS 'examples/strings.wasm', 'reverse_text'; \
             CREATE TABLE notes (id bigint, body text); \
             INSERT INTO notes VALUES (1, 'hello'), (2, NULL)",
        )
        .await
        .expect("DDL over the wire");
    let tags: Vec<String> = client
        .simple_query("DROP FUNCTION IF EXISTS nothing; CREATE SCHEMA s")
        .await
        .unwrap()
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::CommandComplete(n) => Some(n.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(tags.len(), 2);
    let err = client
        .simple_query("CREATE FUNCTION rev(text) RETURNS text LANGUAGE wasm AS 'examples/strings.wasm', 'reverse_text'")
        .await
        .expect_err("duplicate");
    assert_eq!(err.as_db_error().unwrap().code().code(), "42723");
    let err = client
        .simple_query(
            "CREATE FUNCTION x(bigint) RETURNS bigint LANGUAGE wasm AS '../catalog.redb', 'x'",
        )
        .await
        .expect_err("escape");
    assert_eq!(err.as_db_error().unwrap().code().code(), "42501");
    drop(client);
    server.kill_and_restart();
    let client = server.client().await;
    assert_eq!(
        query(&client, "SELECT id, rev(body) FROM notes ORDER BY id").await,
        vec![
            vec![Some("1".into()), Some("olleh".into())],
            vec![Some("2".into()), None]
        ]
    );
    // The examples were registered once, on the first start, and are still there.
    assert_eq!(
        query(&client, "SELECT add_one(41)").await,
        vec![row(&["42"])]
    );
    assert_eq!(
        query(&client, "SELECT count(*) FROM cities").await,
        vec![row(&["5"])]
    );
}
