//! Session parameters over the wire: applied from the startup packet (or refused
//! with PostgreSQL's FATAL), printing values as the session's TimeZone,
//! extra_float_digits and bytea_output say, and the types PostgreSQL gives constants
//! and cast parameters.

use tokio_postgres::types::Type;
use tokio_postgres::NoTls;

use crate::{query, row, Server};

async fn connect(
    server: &Server,
    options: &str,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let mut config: tokio_postgres::Config = server.process.url().parse().expect("url");
    config.options(options);
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

#[tokio::test]
async fn startup_parameters_are_applied_or_refused() {
    let server = Server::start("startup-params");
    let client = connect(
        &server,
        "-c statement_timeout=1500 -c TimeZone=Europe/Paris --extra-float-digits=0",
    )
    .await
    .expect("connect");
    assert_eq!(
        query(&client, "SHOW statement_timeout").await,
        vec![row(&["1500ms"])]
    );
    assert_eq!(
        query(&client, "SHOW TimeZone").await,
        vec![row(&["Europe/Paris"])]
    );
    // RESET goes back to the value given at connect.
    query(&client, "SET extra_float_digits = 3").await;
    query(&client, "RESET extra_float_digits").await;
    assert_eq!(
        query(&client, "SHOW extra_float_digits").await,
        vec![row(&["0"])]
    );

    // PostgreSQL ends the connection on a parameter it cannot take.
    for (options, code) in [
        ("-c no_such_parameter=1", "42704"),
        ("-c server_version=9", "55P02"),
        ("-c extra_float_digits=99", "22023"),
        ("-c DateStyle=German", "0A000"),
        ("-x", "42601"),
    ] {
        let err = connect(&server, options)
            .await
            .err()
            .unwrap_or_else(|| panic!("{options} accepted"));
        let db = err
            .as_db_error()
            .unwrap_or_else(|| panic!("{options}: {err}"));
        assert_eq!(db.code().code(), code, "{options}: {}", db.message());
        assert_eq!(db.severity(), "FATAL", "{options}");
    }
    // The server goes on.
    assert_eq!(query(&client, "SELECT 1").await, vec![row(&["1"])]);
}

#[tokio::test]
async fn values_print_as_the_session_says() {
    let server = Server::start("text-format");
    let client = server.client().await;
    let ts = "SELECT CAST('2024-01-01 12:00:00.123456789+00' AS TIMESTAMPTZ), TIMESTAMP '2024-01-01 12:00:00.5'";
    assert_eq!(
        query(&client, ts).await,
        vec![row(&[
            "2024-01-01 12:00:00.123457+00",
            "2024-01-01 12:00:00.5"
        ])]
    );
    query(&client, "SET TIME ZONE 'Asia/Kolkata'").await;
    assert_eq!(
        query(&client, ts).await,
        vec![row(&[
            "2024-01-01 17:30:00.123457+05:30",
            "2024-01-01 12:00:00.5"
        ])]
    );
    let float = "SELECT CAST(0.1 AS DOUBLE PRECISION) + CAST(0.2 AS DOUBLE PRECISION), CAST(1 AS REAL) / CAST(3 AS REAL)";
    assert_eq!(
        query(&client, float).await,
        vec![row(&["0.30000000000000004", "0.33333334"])]
    );
    query(&client, "SET extra_float_digits = 0").await;
    assert_eq!(query(&client, float).await, vec![row(&["0.3", "0.333333"])]);
    let bytes = "SELECT CAST('a\\\\b' AS BYTEA), CAST('\\x00ff10' AS BYTEA)";
    assert_eq!(
        query(&client, bytes).await,
        vec![row(&["\\x615c62", "\\x00ff10"])]
    );
    query(&client, "SET bytea_output = 'escape'").await;
    assert_eq!(
        query(&client, bytes).await,
        vec![row(&["a\\\\b", "\\000\\377\\020"])]
    );
    let err = client
        .simple_query("SELECT CAST('\\x0' AS BYTEA)")
        .await
        .expect_err("odd hex");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("22P02"));
    // SHOW ALL: PostgreSQL's three columns, the engine's limits among them.
    let all = query(&client, "SHOW ALL").await;
    assert!(all.len() > 30, "{all:?}");
    assert!(all
        .iter()
        .any(|r| r[0].as_deref() == Some("TimeZone") && r[1].as_deref() == Some("Asia/Kolkata")));
    assert!(all.iter().any(|r| r[0].as_deref() == Some("wasm.fuel")));
}

#[tokio::test]
async fn constants_and_cast_parameters_have_postgres_types() {
    let server = Server::start("types");
    let client = server.client().await;
    let statement = client
        .prepare(
            "SELECT 1 AS one, 2147483648 AS big, -5 + 2 AS small, $1::int4 AS p, $2::bytea AS b",
        )
        .await
        .expect("prepare");
    let types: Vec<Type> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(
        types,
        vec![Type::INT4, Type::INT8, Type::INT4, Type::INT4, Type::BYTEA]
    );
    assert_eq!(statement.params(), &[Type::INT4, Type::BYTEA]);
    let row = client
        .query_one(&statement, &[&7i32, &vec![1u8, 2]])
        .await
        .expect("query");
    assert_eq!(row.get::<_, i32>("one"), 1);
    assert_eq!(row.get::<_, i64>("big"), 2_147_483_648);
    assert_eq!(row.get::<_, i32>("p"), 7);
    assert_eq!(row.get::<_, Vec<u8>>("b"), vec![1, 2]);
    // A sum that would overflow int4 stays int8, with the right value.
    let sum = client
        .query_one("SELECT 2147483647 + 1", &[])
        .await
        .expect("sum");
    assert_eq!(sum.get::<_, i64>(0), 2_147_483_648);
    // A table made from constants has int4 columns, as PostgreSQL makes it.
    query(
        &client,
        "CREATE TABLE consts AS SELECT 1 AS a, 10000000000 AS b",
    )
    .await;
    let row = client
        .query_one("SELECT a, b FROM consts", &[])
        .await
        .expect("consts");
    assert_eq!(
        (row.get::<_, i32>(0), row.get::<_, i64>(1)),
        (1, 10_000_000_000)
    );
}

#[tokio::test]
async fn arrays_go_out_and_come_in_as_postgres_arrays() {
    let server = Server::start("arrays");
    let client = server.client().await;
    query(&client, "CREATE TABLE kinds (name TEXT, kind TEXT)").await;
    query(
        &client,
        "INSERT INTO kinds VALUES ('t', 'r'), ('v', 'v'), ('i', 'i')",
    )
    .await;
    // Result columns announced as arrays and sent in the binary array format.
    let statement = client
        .prepare(
            "SELECT make_array(1, NULL, 3) AS ints, make_array('a b', 'c') AS texts, \
             make_array(make_array(1.5, 2.5), make_array(3.5, 4.5)) AS grid, \
             make_array(true) AS flags",
        )
        .await
        .expect("prepare");
    let types: Vec<Type> = statement
        .columns()
        .iter()
        .map(|c| c.type_().clone())
        .collect();
    assert_eq!(
        types,
        // An array of int4 constants is int4[], of decimal ones numeric[], as in
        // PostgreSQL.
        vec![
            Type::INT4_ARRAY,
            Type::TEXT_ARRAY,
            Type::NUMERIC_ARRAY,
            Type::BOOL_ARRAY
        ]
    );
    let values = client.query_one(&statement, &[]).await.expect("arrays");
    assert_eq!(
        values.get::<_, Vec<Option<i32>>>("ints"),
        vec![Some(1), None, Some(3)]
    );
    assert_eq!(values.get::<_, Vec<String>>("texts"), vec!["a b", "c"]);
    assert_eq!(values.get::<_, Vec<bool>>("flags"), vec![true]);
    // (tokio-postgres reads one-dimensional arrays only; the grid's binary form is
    // checked by the slt server target, scalar.slt.)
    // Text format: PostgreSQL's array literal.
    assert_eq!(
        query(
            &client,
            "SELECT make_array(make_array(1, 2), make_array(3, 4)), make_array('a b', NULL)"
        )
        .await,
        vec![row(&["{{1,2},{3,4}}", "{\"a b\",NULL}"])]
    );
    // An array parameter, in binary (tokio-postgres) and text (a literal) form.
    let kinds = client
        .query(
            "SELECT name FROM kinds WHERE kind = ANY($1) ORDER BY name",
            &[&vec!["r", "v"]],
        )
        .await
        .expect("= ANY($1)");
    let names: Vec<String> = kinds.iter().map(|r| r.get(0)).collect();
    assert_eq!(names, vec!["t", "v"]);
    let echoed = client
        .query_one("SELECT $1::int8[]", &[&vec![1i64, -2, 3]])
        .await
        .expect("int8[] parameter");
    assert_eq!(echoed.get::<_, Vec<i64>>(0), vec![1, -2, 3]);
    // Array literals in text form, cast or compared with ANY (psycopg's client-side
    // binding of a list); a malformed one is 22P02.
    assert_eq!(
        query(
            &client,
            "SELECT name FROM kinds WHERE kind = ANY('{r,i}') ORDER BY name"
        )
        .await,
        vec![row(&["i"]), row(&["t"])]
    );
    assert_eq!(
        query(&client, "SELECT '{1, 2,NULL}'::int[], CAST('{}' AS text[])").await,
        vec![row(&["{1,2,NULL}", "{}"])]
    );
    let err = client
        .query_one("SELECT '{a,'::text[]", &[])
        .await
        .expect_err("malformed literal accepted");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("22P02"),
        "{err:?}"
    );
}

#[tokio::test]
async fn deallocate_drops_protocol_prepared_statements() {
    let server = Server::start("deallocate");
    let client = server.client().await;
    let err = client
        .simple_query("DEALLOCATE nope")
        .await
        .expect_err("no such statement");
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("26000"));
    let statement = client.prepare("SELECT add_one($1)").await.expect("prepare");
    query(&client, "DEALLOCATE ALL").await;
    let err = client
        .query(&statement, &[&1i64])
        .await
        .expect_err("deallocated");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("26000"),
        "{err}"
    );
    // The connection goes on.
    assert_eq!(query(&client, "SELECT add_one(1)").await, vec![row(&["2"])]);
}
