// pgjdbc (Debian's libpostgresql-jdbc-java) against wasmudf, with the driver's defaults.
// Run by the smoke suite as `java -cp postgresql.jar JdbcClient.java URL`.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.util.Arrays;

public class JdbcClient {
    static void check(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError(what);
        }
    }

    static String sqlstate(Connection c, String sql) throws Exception {
        try (Statement s = c.createStatement()) {
            s.execute(sql);
        } catch (SQLException e) {
            return e.getSQLState();
        }
        throw new AssertionError("no error: " + sql);
    }

    public static void main(String[] args) throws Exception {
        String url = args[0];
        // The URL docs/server.md gives; pgjdbc sends SET extra_float_digits = 3 at connect.
        try (Connection c = DriverManager.getConnection(url)) {
            check(c.getMetaData().getDatabaseMajorVersion() == 16, "server version");
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT 1, CAST(2 AS BIGINT), 'x'")) {
                check(r.next(), "a row");
                check(r.getInt(1) == 1 && r.getLong(2) == 2 && r.getString(3).equals("x"), "simple query");
                check(r.getMetaData().getColumnType(1) == java.sql.Types.INTEGER, "SELECT 1 is int4");
            }
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SHOW extra_float_digits")) {
                check(r.next() && r.getString(1).equals("3"), "extra_float_digits set by the driver");
            }
            // A prepared statement run 10 times: pgjdbc switches to a named server-side
            // statement from the 5th execution on.
            try (PreparedStatement p = c.prepareStatement("SELECT add_one(?), initials(?)")) {
                for (int i = 0; i < 10; i++) {
                    p.setLong(1, i);
                    p.setString(2, "Ada Lovelace");
                    try (ResultSet r = p.executeQuery()) {
                        check(r.next() && r.getLong(1) == i + 1 && r.getString(2).equals("AL"), "prepared " + i);
                    }
                }
            }
            // Types, decoded as PostgreSQL's.
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery(
                    "SELECT CAST(1.5 AS DOUBLE PRECISION), CAST(12.34 AS NUMERIC(10,2)), true, CAST('ab' AS BYTEA), "
                    + "DATE '2024-02-29', TIMESTAMP '2024-02-29 10:11:12.123456', now(), NULL")) {
                check(r.next(), "a row");
                check(r.getDouble(1) == 1.5, "float8");
                check(r.getBigDecimal(2).equals(new BigDecimal("12.34")), "numeric");
                check(r.getBoolean(3), "bool");
                check(Arrays.equals(r.getBytes(4), "ab".getBytes()), "bytea");
                check(r.getDate(5).toString().equals("2024-02-29"), "date " + r.getDate(5));
                check(r.getTimestamp(6).toString().equals("2024-02-29 10:11:12.123456"), "timestamp " + r.getTimestamp(6));
                check(r.getTimestamp(7) != null, "now()");
                check(r.getString(8) == null && r.wasNull(), "NULL");
            }
            // setDate / setTimestamp send PostgreSQL's input forms (`2024-02-29 +00`,
            // `2024-02-29 10:11:12.123456+00`) untyped; into a column and back.
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE jdbc_days (d DATE, t TIMESTAMP)");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO jdbc_days VALUES (?, ?)")) {
                p.setDate(1, java.sql.Date.valueOf("2024-02-29"));
                p.setTimestamp(2, java.sql.Timestamp.valueOf("2024-02-29 10:11:12.123456"));
                check(p.executeUpdate() == 1, "insert setDate/setTimestamp");
            }
            try (PreparedStatement p = c.prepareStatement("SELECT d, t FROM jdbc_days WHERE d = ?")) {
                p.setDate(1, java.sql.Date.valueOf("2024-02-29"));
                try (ResultSet r = p.executeQuery()) {
                    check(r.next() && r.getDate(1).toString().equals("2024-02-29"), "setDate round trip");
                    check(r.getTimestamp(2).toString().equals("2024-02-29 10:11:12.123456"), "setTimestamp round trip " + r.getTimestamp(2));
                }
            }
            // Errors carry their SQLSTATE; the connection stays usable.
            check(sqlstate(c, "SELECT safe_div(1, 0)").equals("38000"), "guest error");
            check(sqlstate(c, "SELECT * FROM nope").equals("42P01"), "undefined table");
            // Transactions with savepoints (autocommit off): executeUpdate counts what
            // UPDATE and DELETE changed, rollback(savepoint) undoes only what came
            // after it, rollback() everything, commit() keeps it.
            c.setAutoCommit(false);
            try (Statement s = c.createStatement()) {
                check(s.executeUpdate("UPDATE jdbc_days SET d = DATE '2024-03-01'") == 1, "update count");
                Savepoint sp = c.setSavepoint("sp1");
                check(s.executeUpdate("DELETE FROM jdbc_days") == 1, "delete count");
                c.rollback(sp);
                c.releaseSavepoint(c.setSavepoint("sp2"));
                try (ResultSet r = s.executeQuery("SELECT count(*), max(d) FROM jdbc_days")) {
                    check(r.next() && r.getLong(1) == 1 && r.getDate(2).toString().equals("2024-03-01"), "rollback to savepoint");
                }
            }
            c.rollback();
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT d FROM jdbc_days")) {
                check(r.next() && r.getDate(1).toString().equals("2024-02-29"), "rollback");
            }
            try (Statement s = c.createStatement()) {
                check(s.executeUpdate("INSERT INTO jdbc_days VALUES (DATE '2025-01-01', NULL)") == 1, "insert in a transaction");
            }
            c.commit();
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT count(*) FROM jdbc_days")) {
                check(r.next() && r.getLong(1) == 2, "commit");
            }
            c.commit();
            c.setAutoCommit(true);
            // Generated keys: pgjdbc adds RETURNING to the INSERT and reads the keys
            // back; a duplicate key is 23505.
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE jdbc_keys (id BIGSERIAL PRIMARY KEY, name TEXT)");
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO jdbc_keys (name) VALUES (?)", new String[] {"id"})) {
                for (String name : new String[] {"a", "b", "c"}) {
                    p.setString(1, name);
                    check(p.executeUpdate() == 1, "insert with generated keys");
                }
                try (ResultSet keys = p.getGeneratedKeys()) {
                    check(keys.next() && keys.getLong(1) == 3, "generated key");
                }
            }
            try (PreparedStatement p = c.prepareStatement("INSERT INTO jdbc_keys (name) VALUES (?)", Statement.RETURN_GENERATED_KEYS)) {
                p.setString(1, "d");
                check(p.executeUpdate() == 1, "insert returning all");
                try (ResultSet keys = p.getGeneratedKeys()) {
                    check(keys.next() && keys.getLong("id") == 4 && keys.getString("name").equals("d"), "generated row");
                }
            }
            check(sqlstate(c, "INSERT INTO jdbc_keys VALUES (1, 'dup')").equals("23505"), "duplicate key");
            // Cancel from another thread: 57014, the connection goes on.
            try (Statement s = c.createStatement()) {
                Thread t = new Thread(() -> {
                    try {
                        Thread.sleep(500);
                        s.cancel();
                    } catch (Exception e) {
                        throw new RuntimeException(e);
                    }
                });
                t.start();
                String state = null;
                try {
                    s.executeQuery("SELECT count(add_one(a.value + b.value)) FROM generate_series(1, 20000) a, generate_series(1, 20000) b");
                } catch (SQLException e) {
                    state = e.getSQLState();
                }
                t.join();
                check("57014".equals(state), "cancel: " + state);
            }
            try (Statement s = c.createStatement(); ResultSet r = s.executeQuery("SELECT add_one(1)")) {
                check(r.next() && r.getLong(1) == 2, "usable after cancel");
            }
            // DatabaseMetaData: the catalog queries tools (DBeaver, IDEs) run.
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE jdbc_meta (id BIGINT, label TEXT)");
            }
            DatabaseMetaData meta = c.getMetaData();
            try (ResultSet r = meta.getTables(null, "public", "jdbc_meta", new String[] {"TABLE"})) {
                check(r.next() && r.getString("TABLE_NAME").equals("jdbc_meta") && !r.next(), "getTables");
            }
            try (ResultSet r = meta.getColumns(null, "public", "jdbc_meta", "%")) {
                check(r.next() && r.getString("COLUMN_NAME").equals("id") && r.getInt("DATA_TYPE") == java.sql.Types.BIGINT, "getColumns id");
                check(r.next() && r.getString("COLUMN_NAME").equals("label") && r.getString("TYPE_NAME").equals("text") && !r.next(), "getColumns label");
            }
            try (ResultSet r = meta.getPrimaryKeys(null, "public", "jdbc_meta")) {
                check(!r.next(), "getPrimaryKeys: no key");
            }
            try (ResultSet r = meta.getIndexInfo(null, "public", "jdbc_meta", false, true)) {
                check(!r.next(), "getIndexInfo: no index");
            }
            // Keys (pgjdbc reads max_index_keys from pg_settings first): none here.
            try (ResultSet r = meta.getImportedKeys(null, "public", "jdbc_meta")) {
                check(!r.next(), "getImportedKeys: no key");
            }
            try (ResultSet r = meta.getExportedKeys(null, "public", "jdbc_meta")) {
                check(!r.next(), "getExportedKeys: no key");
            }
            // The type list (its query compares `typinput = 'array_in'::regproc`).
            try (ResultSet r = meta.getTypeInfo()) {
                boolean int8 = false;
                while (r.next()) {
                    int8 |= r.getString("TYPE_NAME").equals("int8") && r.getInt("DATA_TYPE") == java.sql.Types.BIGINT;
                }
                check(int8, "getTypeInfo lists int8");
            }
            // A function's parameters (read from proargtypes, an oidvector `20 20`).
            try (ResultSet r = meta.getFunctionColumns(null, "public", "add_one", "%")) {
                int ins = 0;
                while (r.next()) {
                    if (r.getInt("COLUMN_TYPE") == DatabaseMetaData.functionColumnIn) {
                        ins++;
                        check(r.getString("TYPE_NAME").equals("int8"), "getFunctionColumns type " + r.getString("TYPE_NAME"));
                    }
                }
                check(ins == 1, "getFunctionColumns: one argument, got " + ins);
            }
            // A result column names its table, and whether it may be NULL (from the
            // table OID and column number RowDescription carries).
            try (Statement s = c.createStatement()) {
                s.execute("CREATE TABLE jdbc_origin (id BIGINT NOT NULL, label TEXT)");
                try (ResultSet r = s.executeQuery("SELECT label, id, id + 1 FROM jdbc_origin")) {
                    java.sql.ResultSetMetaData md = r.getMetaData();
                    check(md.getTableName(1).equals("jdbc_origin") && md.getTableName(2).equals("jdbc_origin"), "getTableName");
                    check(md.getTableName(3).isEmpty(), "an expression has no table");
                    check(md.isNullable(1) == java.sql.ResultSetMetaData.columnNullable, "label nullable");
                    check(md.isNullable(2) == java.sql.ResultSetMetaData.columnNoNulls, "id NOT NULL");
                }
                s.execute("DROP TABLE jdbc_origin");
            }
            // Procedures are prokind 'p' (PostgreSQL 11+): Wasm functions are functions.
            try (ResultSet r = meta.getProcedures(null, "public", "%")) {
                check(!r.next(), "getProcedures");
            }
            try (ResultSet r = meta.getFunctions(null, "public", "gcd")) {
                check(r.next() && r.getString("FUNCTION_NAME").equals("gcd"), "getFunctions");
            }
            try (ResultSet r = meta.getSchemas()) {
                boolean publicSchema = false;
                while (r.next()) {
                    publicSchema |= r.getString("TABLE_SCHEM").equals("public");
                }
                check(publicSchema, "getSchemas");
            }
            try (Statement s = c.createStatement()) {
                s.execute("DROP TABLE jdbc_meta");
            }
        }
        System.out.println("pgjdbc: ok");
    }
}
