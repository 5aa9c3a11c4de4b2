//! Queries over both protocols: the example functions, errors with their SQLSTATE, result column names, parameters and row limits.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_functions_answer_the_first_query() {
    let server = Server::start("first");
    let client = server.client().await;
    assert_eq!(
        query(
            &client,
            "SELECT gcd(1071, 462) AS g, add_one(41) AS a, initials('Ada Lovelace') AS i"
        )
        .await,
        vec![row(&["21", "42", "AL"])]
    );
    assert_eq!(
        query(&client, "SELECT name, round(haversine(lat, lon, 48.8566, 2.3522)) FROM cities WHERE name = 'London'").await,
        vec![row(&["London", "344"])]
    );
    // The example aggregates are registered too, and answer over the wire.
    assert_eq!(
        query(
            &client,
            "SELECT round(geo_mean(CAST(population AS DOUBLE))), median_wasm(lat) > 40, \
             arg_max(name, CAST(population AS DOUBLE)) FROM cities"
        )
        .await,
        vec![row(&["6491185", "t", "Tokyo"])]
    );
    // PostgreSQL's text for booleans, bytea and floats.
    let mut expected = row(&["t", "\\x6162", "0.5"]);
    expected.push(None);
    assert_eq!(
        query(&client, "SELECT echo_bool(true), echo_bytes(CAST('ab' AS BYTEA)), CAST(0.5 AS REAL), echo_f64(NULL)").await,
        vec![expected]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_sqlstates_and_the_connection_survives() {
    let server = Server::start("errors");
    let client = server.client().await;
    let cases = [
        (
            "SELECT safe_div(1, 0)",
            "38000",
            "function safe_div: division by zero (at row 0 of the batch)",
        ),
        ("SELECT no_such_function(1)", "42883", "no_such_function"),
        ("SELEC 1", "42601", "SELEC"),
        ("SELECT * FROM no_such_table", "42P01", "no_such_table"),
    ];
    for (sql, code, text) in cases {
        let err = client.simple_query(sql).await.expect_err(sql);
        let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"));
        assert_eq!(db.code().code(), code, "{sql}: {}", db.message());
        assert!(db.message().contains(text), "{sql}: {}", db.message());
        // The same connection keeps working.
        assert_eq!(query(&client, "SELECT add_one(1)").await, vec![row(&["2"])]);
    }
}

/// Result columns are named as PostgreSQL names them, in RowDescription for both
/// protocols: a function call by the function, an expression `?column?`, a cast of a
/// literal by its type, aliases as written (repeats allowed, as in PostgreSQL).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn result_columns_are_named_as_postgresql_names_them() {
    let server = Server::start("names");
    let client = server.client().await;
    let sql = "SELECT gcd(12, 18), 1 + 1, CAST('7' AS INT), CAST(population AS TEXT), \
               name AS \"City\", count(*) OVER () FROM cities LIMIT 1";
    let expected = ["gcd", "?column?", "int4", "population", "City", "count"];
    let prepared = client.prepare(sql).await.expect("prepare");
    let described: Vec<&str> = prepared.columns().iter().map(|c| c.name()).collect();
    assert_eq!(described, expected);
    let rows = client.query(&prepared, &[]).await.expect("query");
    assert_eq!(rows[0].get::<_, i64>("gcd"), 6);
    let messages = client.simple_query(sql).await.expect("simple query");
    let simple: Vec<String> = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some(r.columns().iter().map(|c| c.name().to_string()).collect())
            }
            _ => None,
        })
        .expect("a row");
    assert_eq!(simple, expected);
    // Two unaliased calls of one function: both `gcd`, as in PostgreSQL.
    let twice = client
        .prepare("SELECT gcd(4, 6), gcd(9, 6)")
        .await
        .expect("prepare");
    let names: Vec<&str> = twice.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, ["gcd", "gcd"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_binds_parameters_and_limits_rows() {
    let server = Server::start("extended");
    let client = server.client().await;
    // Typed parameters (inferred from the function's signature) and a NULL parameter.
    let stmt = client
        .prepare("SELECT gcd($1, $2) AS g, add_one($1) AS a")
        .await
        .expect("prepare");
    assert_eq!(stmt.params(), &[tokio_postgres::types::Type::INT8; 2]);
    let rows = client.query(&stmt, &[&84i64, &36i64]).await.expect("query");
    assert_eq!(rows[0].get::<_, i64>("g"), 12);
    assert_eq!(rows[0].get::<_, i64>("a"), 85);
    let rows = client
        .query(&stmt, &[&None::<i64>, &36i64])
        .await
        .expect("null parameter");
    assert_eq!(rows[0].get::<_, Option<i64>>("g"), None);
    // Text, booleans, floats, dates and numerics in binary format.
    let row = client
        .query_one(
            "SELECT initials($1) AS i, echo_bool(true) AS b, echo_f64(0.25) AS f, \
             echo_date(DATE '2024-02-29') AS d, CAST(-12.5 AS DECIMAL(10, 3)) AS n",
            &[&"ada lovelace"],
        )
        .await
        .expect("binary results");
    assert_eq!(row.get::<_, String>("i"), "AL");
    assert!(row.get::<_, bool>("b"));
    assert_eq!(row.get::<_, f64>("f"), 0.25);
    assert_eq!(
        row.get::<_, chrono::NaiveDate>("d"),
        chrono::NaiveDate::from_ymd_opt(2024, 2, 29).expect("date")
    );
    assert_eq!(
        row.columns()[4].type_(),
        &tokio_postgres::types::Type::NUMERIC
    );
    // A portal with a row limit hands the rows out in slices.
    let mut tx_client = server.client().await;
    let tx = tx_client.transaction().await.expect("begin");
    let portal = tx
        .bind("SELECT add_one(value) FROM generate_series(1, 10)", &[])
        .await
        .expect("bind");
    let first = tx.query_portal(&portal, 4).await.expect("first slice");
    let rest = tx.query_portal(&portal, 100).await.expect("rest");
    assert_eq!(first.len(), 4);
    assert_eq!(rest.len(), 6);
    assert_eq!(first[0].get::<_, i64>(0), 2);
    assert_eq!(rest[5].get::<_, i64>(0), 11);
    tx.commit().await.expect("commit");
    // Errors at Parse carry their SQLSTATE; the connection goes on.
    let err = client
        .prepare("SELECT nope($1)")
        .await
        .expect_err("unknown");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "42883");
    let err = client
        .prepare("SELECT 1; SELECT 2")
        .await
        .expect_err("two statements");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "42601");
    let err = client
        .query("SELECT safe_div($1, 0)", &[&1i64])
        .await
        .expect_err("guest error");
    assert_eq!(err.as_db_error().expect("db error").code().code(), "38000");
    assert_eq!(
        client
            .query_one("SELECT add_one(1)", &[])
            .await
            .expect("alive")
            .get::<_, i64>(0),
        2
    );
}
