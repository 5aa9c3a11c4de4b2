"""asyncpg against wasmudf, with the driver's defaults.

Run by the smoke suite (server/tests/smoke/clients.rs) with the server's URL as the
only argument; a failure raises and the process exits non-zero.
"""

import asyncio
import datetime
import decimal
import sys

import asyncpg

URL = sys.argv[1]


def check(cond, what):
    if not cond:
        raise AssertionError(what)


async def main():
    # server_settings are startup parameters: applied, and read back.
    conn = await asyncpg.connect(URL, server_settings={"statement_timeout": "2500", "application_name": "apg"})
    check(await conn.fetchval("SHOW statement_timeout") == "2500ms", "statement_timeout at connect")
    check(await conn.fetchval("SELECT current_setting('application_name')") == "apg", "application_name")
    # Parameters are described with the type of their cast.
    check(await conn.fetchval("SELECT $1::int4", 12) == 12, "$1::int4")
    check(await conn.fetchval("SELECT $1::bigint + 1", 2**40) == 2**40 + 1, "$1::bigint")
    check(await conn.fetchval("SELECT $1::text", "x") == "x", "$1::text")
    check(await conn.fetchval("SELECT add_one($1)", 41) == 42, "wasm scalar with a parameter")
    check(await conn.fetchval("SELECT 1") == 1, "SELECT 1")
    row = await conn.fetchrow(
        "SELECT CAST(1 AS SMALLINT) a, 2 b, CAST(3 AS BIGINT) c, CAST(1.5 AS REAL) d, "
        "CAST(2.25 AS DOUBLE PRECISION) e, CAST(12.34 AS NUMERIC(10,2)) f, 'text' g, "
        "CAST('ab' AS BYTEA) h, true i, DATE '2024-02-29' j, TIMESTAMP '2024-02-29 10:11:12.123456' k, now() l"
    )
    check(tuple(row)[:11] == (1, 2, 3, 1.5, 2.25, decimal.Decimal("12.34"), "text", b"ab", True,
                              datetime.date(2024, 2, 29), datetime.datetime(2024, 2, 29, 10, 11, 12, 123456)),
          f"types {tuple(row)}")
    check(isinstance(row["l"], datetime.datetime) and row["l"].tzinfo is not None, "now() is timestamptz")
    # Errors with their SQLSTATE; the connection stays usable.
    try:
        await conn.fetchval("SELECT safe_div(1, 0)")
        raise AssertionError("no error")
    except asyncpg.PostgresError as e:
        check(e.sqlstate == "38000", f"guest error {e.sqlstate}")
    check(await conn.fetchval("SELECT add_one(1)") == 2, "usable after an error")
    # Transactions and savepoints.
    async with conn.transaction():
        async with conn.transaction():
            await conn.execute("SELECT 1")
    # Cursors (portals in a transaction).
    async with conn.transaction():
        got = [r[0] async for r in conn.cursor("SELECT add_one(value) FROM generate_series(1, 50)", prefetch=7)]
    check(got == list(range(2, 52)), "cursor rows")
    # Wasm aggregates.
    check(round(await conn.fetchval("SELECT geo_mean(CAST(value AS DOUBLE)) FROM generate_series(1, 3)"), 6) == round(6 ** (1 / 3), 6), "aggregate")
    # statement_timeout set at connect stops a long statement.
    try:
        await conn.fetchval("SELECT count(add_one(a.value + b.value)) FROM generate_series(1, 20000) a, generate_series(1, 20000) b")
        raise AssertionError("no timeout")
    except asyncpg.PostgresError as e:
        check(e.sqlstate == "57014", f"timeout {e.sqlstate}")
    await conn.close()

    # A pool: every release runs asyncpg's reset (advisory unlock, CLOSE ALL, UNLISTEN, RESET ALL).
    pool = await asyncpg.create_pool(URL, min_size=2, max_size=4)
    for i in range(50):
        async with pool.acquire() as c:
            check(await c.fetchval("SELECT add_one($1)", i) == i + 1, "pool query")
            check(await c.fetchval("SELECT pg_try_advisory_lock(7)") is True, "advisory lock")
    await pool.close()

    # Advisory locks are real: another session cannot take one that is held.
    a = await asyncpg.connect(URL)
    b = await asyncpg.connect(URL)
    await a.execute("SELECT pg_advisory_lock(99)")
    check(await b.fetchval("SELECT pg_try_advisory_lock(99)") is False, "held elsewhere")
    await a.execute("SELECT pg_advisory_unlock(99)")
    check(await b.fetchval("SELECT pg_try_advisory_lock(99)") is True, "free once unlocked")
    check(await a.fetchval("SELECT pg_backend_pid()") != await b.fetchval("SELECT pg_backend_pid()"), "pids differ")
    await a.close()
    await b.close()
    print("asyncpg: ok")


asyncio.run(main())
