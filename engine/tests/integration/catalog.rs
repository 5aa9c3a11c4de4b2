//! pg_catalog queries beside the user's own: the compatibility rewriter only ever
//! touches the statements that read the catalog.

use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::common::{ok, open_db, squash};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catalog_query_in_the_same_text_leaves_the_users_query_alone() {
    let dir = tempfile::tempdir().unwrap();
    let db = open_db(&dir.path().join("data")).await;
    let s = db.session("alice");
    ok(&s, "CREATE TABLE t AS SELECT * FROM (VALUES (1), (2)) v(k)").await;
    ok(
        &s,
        "CREATE TABLE u AS SELECT * FROM (VALUES (1, 10), (1, 11), (2, 20)) v(k, v)",
    )
    .await;
    // The crate's rules would turn this correlated projection subquery into NULL and
    // give the uncorrelated one a LIMIT 1; next to a catalog query they must not.
    let outputs = s
        .execute(
            "SELECT k, (SELECT max(v) FROM u WHERE u.k = t.k) AS m, \
                    (SELECT count(*) FROM u) AS n FROM t ORDER BY k; \
             SELECT count(*) AS tables FROM pg_catalog.pg_class WHERE relname IN ('t', 'u')",
        )
        .await
        .expect("both statements run");
    let mut printed = Vec::new();
    for out in outputs {
        let wasmudf_engine::Output::Rows(stream) = out else {
            panic!("rows expected");
        };
        let batches = wasmudf_engine::collect(stream).await.expect("collect");
        printed.push(squash(
            &pretty_format_batches(&batches).expect("format").to_string(),
        ));
    }
    assert!(printed[0].contains("| 1 | 11 | 3 |"), "{}", printed[0]);
    assert!(printed[0].contains("| 2 | 20 | 3 |"), "{}", printed[0]);
    assert!(printed[1].contains("| 2 |"), "{}", printed[1]);
}
