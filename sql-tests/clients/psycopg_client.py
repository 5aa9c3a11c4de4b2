"""psycopg 3 (and psycopg_pool) against wasmudf, with the driver's defaults.

Run by the smoke suite (server/tests/smoke/clients.rs) with the server's URL as the
only argument. Each check does what an application does; a failure raises, and the
process exits non-zero with the traceback.
"""

import datetime
import decimal
import sys
import threading
import time

import psycopg
from psycopg.types.json import Jsonb
import psycopg.errors
from psycopg_pool import ConnectionPool

URL = sys.argv[1]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def sqlstate(fn):
    try:
        fn()
    except psycopg.Error as e:
        return e.sqlstate
    raise AssertionError("no error")


# Connect with a parameter set at connect (libpq's options=-c), and read it back.
with psycopg.connect(URL, options="-c statement_timeout=1500 -c application_name=psy") as conn:
    check(conn.execute("SHOW statement_timeout").fetchone() == ("1500ms",), "statement_timeout from options")
    check(conn.info.parameter_status("application_name") == "psy", "application_name reported")
    check(conn.info.parameter_status("server_version").startswith("16"), "server_version")
    check(conn.info.server_version >= 160000, "server_version_num")
    # Default psycopg: a transaction is open after the first statement.
    one = conn.execute("SELECT 1").fetchone()[0]
    check(one == 1 and isinstance(one, int), "SELECT 1 is an int")
    conn.rollback()

with psycopg.connect(URL) as conn:
    cur = conn.cursor()
    # Parameters in both formats, and Wasm functions on them.
    for binary in (False, True):
        cur = conn.cursor(binary=binary)
        cur.execute("SELECT gcd(%s, %s), add_one(%s), initials(%s)", (1071, 462, 41, "Ada Lovelace"))
        check(cur.fetchone() == (21, 42, "AL"), f"wasm functions binary={binary}")
    # The same query 10 times: psycopg prepares it from the 5th on, then rollback()
    # sends DEALLOCATE ALL after DROP.
    for i in range(10):
        check(conn.execute("SELECT add_one(%s)", (i,)).fetchone() == (i + 1,), "prepared repeat")
    conn.execute("CREATE TABLE psy_t (id BIGINT, name TEXT)")
    conn.execute("DROP TABLE psy_t")
    conn.rollback()
    for i in range(3):
        check(conn.execute("SELECT add_one(%s)", (i,)).fetchone() == (i + 1,), "after rollback")
    conn.commit()

    # Timestamps decode (microseconds), in the session's time zone.
    now = conn.execute("SELECT now()").fetchone()[0]
    check(isinstance(now, datetime.datetime) and now.tzinfo is not None, "now() is timestamptz")
    conn.execute("SET TIME ZONE 'Asia/Kolkata'")
    check(conn.info.parameter_status("TimeZone") == "Asia/Kolkata", "TimeZone reported after SET")
    ts = conn.execute("SELECT CAST('2024-01-01 12:00:00+00' AS TIMESTAMPTZ)").fetchone()[0]
    check(ts == datetime.datetime(2024, 1, 1, 12, tzinfo=datetime.timezone.utc), f"timestamptz {ts}")
    check(ts.utcoffset() == datetime.timedelta(hours=5, minutes=30), "shown in the session zone")
    conn.execute("SET TIME ZONE DEFAULT")
    conn.commit()

    # A round trip of types, text and binary.
    for binary in (False, True):
        cur = conn.cursor(binary=binary)
        cur.execute(
            "SELECT CAST(1 AS SMALLINT), 2, CAST(3 AS BIGINT), CAST(1.5 AS REAL), CAST(2.25 AS DOUBLE PRECISION), "
            "CAST(12.34 AS NUMERIC(10,2)), 'text', CAST('ab' AS BYTEA), true, DATE '2024-02-29', "
            "TIMESTAMP '2024-02-29 10:11:12.123456', NULL"
        )
        row = cur.fetchone()
        expected = (1, 2, 3, 1.5, 2.25, decimal.Decimal("12.34"), "text", b"ab", True,
                    datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 10, 11, 12, 123456), None)
        check(row == expected, f"types binary={binary}: {row}")
        # Parameters under a cast come back as the cast's type; uncast, as the type
        # psycopg declares for them (int2 for 7, int8 for -2**40, float8, ...).
        for value, cast in ((7, "INT"), (-2**40, "BIGINT"), (0.1, "DOUBLE PRECISION"), ("héllo", "TEXT"),
                            (b"\x00\xff", "BYTEA"), (True, "BOOLEAN"), (datetime.date(2000, 1, 1), "DATE")):
            got = cur.execute(f"SELECT CAST(%s AS {cast})", (value,)).fetchone()[0]
            check(got == value, f"parameter round trip {value!r} -> {got!r} binary={binary}")
            got = cur.execute("SELECT %s", (value,)).fetchone()[0]
            check(got == value and type(got) is type(value), f"uncast parameter {value!r} -> {got!r} binary={binary}")
        # A numeric parameter's value is kept (at scale 10: see docs/server.md).
        got = cur.execute("SELECT %s", (decimal.Decimal("1.23"),)).fetchone()[0]
        check(got == decimal.Decimal("1.23"), f"numeric parameter -> {got!r} binary={binary}")
        # Decimal constants are numeric (Decimal, not float); an unconstrained numeric
        # keeps its operand's scale.
        lit, scaled = cur.execute("SELECT 1.5, 2.5::numeric * 2").fetchone()
        check((lit, str(scaled)) == (decimal.Decimal("1.5"), "5.0"),
              f"numeric constants binary={binary}: {lit!r} {scaled!r}")
        # json / jsonb decode as Python values, in text and binary; Json / Jsonb
        # parameters go into json columns and back; operators read into them.
        j, jb = cur.execute("""SELECT '{"a": [1, 2.5], "b": null}'::json, '{"b":1,"a":2}'::jsonb""").fetchone()
        check(j == {"a": [1, 2.5], "b": None} and jb == {"a": 2, "b": 1}, f"json binary={binary}: {j} {jb}")
        cur.execute("CREATE TABLE IF NOT EXISTS docs (id INT, doc JSONB)")
        cur.execute("INSERT INTO docs VALUES (%s, %s)", (int(binary), Jsonb({"k": [1, "x"], "n": {"m": True}})))
        doc, k1, m = cur.execute(
            "SELECT doc, doc -> 'k' ->> 1, doc #> '{n,m}' FROM docs WHERE id = %s", (int(binary),)
        ).fetchone()
        check(doc == {"k": [1, "x"], "n": {"m": True}} and k1 == "x" and m is True, f"jsonb column: {doc} {k1} {m}")
        try:
            cur.execute("INSERT INTO docs VALUES (9, %s)", ("not json",))
            check(False, "invalid json accepted")
        except psycopg.errors.InvalidTextRepresentation:
            conn.rollback()
        # Arrays: result columns decode as lists; a list parameter is an array
        # (`= ANY(%s)`, as pgcli's completion queries pass relkinds).
        ints, texts, grid = cur.execute(
            "SELECT make_array(1, NULL, 3), make_array('a b', 'c\"d', ''), make_array(make_array(1, 2), make_array(3, 4))"
        ).fetchone()
        check((ints, texts, grid) == ([1, None, 3], ["a b", 'c"d', ""], [[1, 2], [3, 4]]),
              f"arrays binary={binary}: {ints} {texts} {grid}")
        kinds = cur.execute(
            "SELECT relname FROM pg_catalog.pg_class WHERE relkind = ANY(%s) AND relname IN ('pg_class', 'pg_proc') ORDER BY 1",
            (["r", "v"],),
        ).fetchall()
        check(kinds == [("pg_class",), ("pg_proc",)], f"= ANY(list) binary={binary}: {kinds}")
        check(cur.execute("SELECT CAST(%s AS BIGINT[])", ([5, -6],)).fetchone()[0] == [5, -6], "bigint[] parameter")
        # time and interval decode as datetime.time / timedelta; timedelta and time
        # parameters (sent as interval and time) come back as they went.
        t, iv, diff = cur.execute(
            "SELECT '10:11:12.5'::time, '1 day 02:00:00'::interval, TIMESTAMP '2024-01-02' - TIMESTAMP '2023-12-31 01:00'"
        ).fetchone()
        check((t, iv, diff) == (datetime.time(10, 11, 12, 500000), datetime.timedelta(days=1, hours=2),
                                datetime.timedelta(days=1, hours=23)), f"time/interval binary={binary}: {t} {iv} {diff}")
        for value in (datetime.timedelta(days=-1, hours=2, microseconds=5), datetime.timedelta(hours=30),
                      datetime.time(23, 59, 59, 1)):
            got = cur.execute("SELECT %s", (value,)).fetchone()[0]
            check(got == value, f"parameter round trip {value!r} -> {got!r} binary={binary}")
    conn.commit()

    # A result column that reads a table's column names the table and column number
    # (RowDescription), as psycopg's pgresult.ftable / ftablecol report.
    conn.execute("CREATE TABLE origins (a INT NOT NULL, b TEXT)")
    res = conn.execute("SELECT b, a, a + 1 FROM origins o").pgresult
    oid = conn.execute("SELECT oid FROM pg_catalog.pg_class WHERE relname = 'origins'").fetchone()[0]
    check([(res.ftable(i), res.ftablecol(i)) for i in range(3)] == [(oid, 2), (oid, 1), (0, 0)],
          f"column origins {[(res.ftable(i), res.ftablecol(i)) for i in range(3)]} (table {oid})")
    conn.execute("DROP TABLE origins")
    # Window ranks and array sizes are integers, as PostgreSQL types them.
    rank, size = conn.execute("SELECT row_number() OVER (), array_length(make_array(1, 2), 1)").fetchone()
    check((rank, size) == (1, 2) and all(type(v) is int for v in (rank, size)), f"rank/size {rank!r} {size!r}")
    conn.commit()

    # Errors carry their SQLSTATE and leave the connection usable.
    check(sqlstate(lambda: conn.execute("SELECT safe_div(1, 0)")) == "38000", "guest error")
    conn.rollback()
    check(sqlstate(lambda: conn.execute("SELECT * FROM nope")) == "42P01", "undefined table")
    conn.rollback()
    check(sqlstate(lambda: conn.execute("SET no_such_setting = 1")) == "42704", "unknown setting")
    conn.rollback()
    check(conn.execute("SELECT add_one(1)").fetchone() == (2,), "usable after errors")
    conn.commit()

    # Nested transactions are savepoints.
    with conn.transaction():
        with conn.transaction():
            conn.execute("SELECT 1")
        try:
            with conn.transaction():
                conn.execute("SELECT * FROM nope")
        except psycopg.errors.UndefinedTable:
            pass
    # Transactions over data: another connection sees only what is committed, a
    # rollback undoes every change, a failed savepoint only its own part, and COPY in a
    # block is part of it.
    conn.execute("CREATE TABLE psy_tx (id BIGINT, v BIGINT)")
    conn.execute("INSERT INTO psy_tx VALUES (1, 10), (2, 20)")
    conn.commit()
    cur = conn.execute("UPDATE psy_tx SET v = v + 1 WHERE id = 1")
    check(cur.rowcount == 1, f"update rowcount {cur.rowcount}")
    cur = conn.execute("DELETE FROM psy_tx WHERE id = 2")
    check(cur.rowcount == 1, f"delete rowcount {cur.rowcount}")
    check(conn.execute("SELECT id, v FROM psy_tx ORDER BY id").fetchall() == [(1, 11)], "own changes seen")
    with psycopg.connect(URL, autocommit=True) as other:
        seen = other.execute("SELECT id, v FROM psy_tx ORDER BY id").fetchall()
        check(seen == [(1, 10), (2, 20)], f"uncommitted changes seen by another connection: {seen}")
    conn.rollback()
    rows = conn.execute("SELECT id, v FROM psy_tx ORDER BY id").fetchall()
    check(rows == [(1, 10), (2, 20)], f"rollback undoes: {rows}")
    conn.rollback()
    with conn.transaction():
        conn.execute("INSERT INTO psy_tx VALUES (3, 30)")
        try:
            with conn.transaction():
                conn.execute("INSERT INTO psy_tx VALUES (4, 40)")
                conn.execute("SELECT 1 / 0")
        except psycopg.errors.DivisionByZero:
            pass
    rows = conn.execute("SELECT id FROM psy_tx ORDER BY id").fetchall()
    check(rows == [(1,), (2,), (3,)], f"savepoint rolled back its part: {rows}")
    with conn.cursor().copy("COPY psy_tx FROM STDIN") as copy:
        copy.write_row((5, 50))
    check(conn.execute("SELECT count(*) FROM psy_tx").fetchone() == (4,), "copy seen in its block")
    conn.rollback()
    check(conn.execute("SELECT count(*) FROM psy_tx").fetchone() == (3,), "copy rolled back")
    conn.execute("DROP TABLE psy_tx")
    conn.commit()

    # Generated keys: a serial primary key comes back through RETURNING (with a
    # parameter, prepared or not), rowcount counts the rows, and a duplicate key is
    # psycopg's UniqueViolation (23505) without losing the connection.
    conn.execute("CREATE TABLE psy_keys (id SERIAL PRIMARY KEY, name TEXT UNIQUE, made TEXT DEFAULT 'now')")
    conn.commit()
    cur = conn.execute("INSERT INTO psy_keys (name) VALUES (%s), (%s) RETURNING id, made", ("a", "b"))
    check(cur.fetchall() == [(1, "now"), (2, "now")] and cur.rowcount == 2, f"returning {cur.rowcount}")
    for i in range(6):
        row = conn.execute("INSERT INTO psy_keys (name) VALUES (%s) RETURNING id", (f"p{i}",), prepare=True).fetchone()
        check(row == (3 + i,), f"prepared returning {row}")
    conn.commit()
    try:
        conn.execute("INSERT INTO psy_keys (name) VALUES (%s)", ("a",))
        raise AssertionError("duplicate accepted")
    except psycopg.errors.UniqueViolation as e:
        check("psy_keys_name_key" in str(e), f"constraint named: {e}")
    conn.rollback()
    cur = conn.execute("UPDATE psy_keys SET name = upper(name) WHERE id <= 2 RETURNING name")
    check(sorted(cur.fetchall()) == [("A",), ("B",)] and cur.rowcount == 2, "update returning")
    conn.commit()
    check(conn.execute("SELECT count(*) FROM psy_keys").fetchone() == (8,), "keys kept")
    conn.execute("DROP TABLE psy_keys")
    conn.commit()

    # Named (server-side) cursors: DECLARE, a Describe of the cursor as a portal, FETCH.
    with conn.transaction():
        with conn.cursor(name="big") as named:
            named.itersize = 7
            named.execute("SELECT add_one(value) FROM generate_series(1, 100)")
            values = [r[0] for r in named]
    check(values == list(range(2, 102)), "named cursor rows")

    # COPY in and out.
    conn.execute("CREATE TABLE psy_copy (id BIGINT, name TEXT)")
    conn.commit()
    with conn.cursor().copy("COPY psy_copy FROM STDIN") as copy:
        for i in range(100):
            copy.write_row((i, f"name {i}"))
    conn.commit()
    out = []
    with conn.cursor().copy("COPY (SELECT id, name FROM psy_copy ORDER BY id) TO STDOUT") as copy:
        for row in copy.rows():
            out.append(row)
    check(len(out) == 100 and out[5] == ("5", "name 5"), f"copy out {out[:2]}")
    conn.execute("DROP TABLE psy_copy")
    conn.commit()

    # Cancel: a long Wasm call stops with 57014, the connection stays usable.
    conn.autocommit = True
    timer = threading.Timer(0.5, conn.cancel)
    timer.start()
    started = time.monotonic()
    state = sqlstate(lambda: conn.execute("SELECT count(add_one(a.value + b.value)) FROM generate_series(1, 20000) a, generate_series(1, 20000) b"))
    timer.cancel()
    check(state == "57014" and time.monotonic() - started < 10, f"cancel: {state}")
    check(conn.execute("SELECT 1").fetchone() == (1,), "usable after cancel")

# A pool acquiring and releasing 50 times (reset on release).
with ConnectionPool(URL, min_size=2, max_size=4, open=True) as pool:
    for i in range(50):
        with pool.connection() as conn:
            check(conn.execute("SELECT add_one(%s)", (i,)).fetchone() == (i + 1,), "pool query")

print("psycopg: ok")
