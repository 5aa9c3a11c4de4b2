// node-postgres (and pg-cursor) against wasmudf, with the driver's defaults.
// Run by the smoke suite with the server's URL as the only argument.
const assert = require('node:assert/strict');
const { Client, Pool } = require('pg');
const Cursor = require('pg-cursor');

const url = process.argv[2];

async function sqlstate(promise) {
  try {
    await promise;
  } catch (e) {
    return e.code;
  }
  throw new Error('no error');
}

async function main() {
  // statement_timeout as a connection option is sent at startup.
  const client = new Client({ connectionString: url, statement_timeout: 3000, application_name: 'nodepg' });
  await client.connect();
  assert.equal((await client.query('SHOW statement_timeout')).rows[0].statement_timeout, '3s');
  assert.equal((await client.query('SHOW server_version')).rows[0].server_version.split('.')[0], '16');
  // int4 arrives as a number, int8 as a string.
  assert.deepEqual((await client.query('SELECT 1 AS one')).rows[0], { one: 1 });
  assert.deepEqual((await client.query('SELECT CAST(1 AS BIGINT) AS big')).rows[0], { big: '1' });
  // ... also from CASE, VALUES and UNION, as an application's queries write them.
  assert.deepEqual(
    (await client.query("SELECT x, CASE WHEN x > 1 THEN 1 ELSE 0 END AS flag FROM (VALUES (1), (2)) v(x) ORDER BY x")).rows,
    [{ x: 1, flag: 0 }, { x: 2, flag: 1 }],
  );
  assert.deepEqual((await client.query('SELECT 1 AS n UNION ALL SELECT 2 ORDER BY n')).rows, [{ n: 1 }, { n: 2 }]);
  assert.equal((await client.query('SELECT add_one($1::int8) AS a', [41])).rows[0].a, '42');
  assert.equal((await client.query('SELECT initials($1) AS i', ['Ada Lovelace'])).rows[0].i, 'AL');
  const types = (await client.query(
    "SELECT CAST(1.5 AS DOUBLE PRECISION) f, true b, CAST('ab' AS BYTEA) y, DATE '2024-02-29' d, NULL n",
  )).rows[0];
  assert.equal(types.f, 1.5);
  assert.equal(types.b, true);
  assert.deepEqual(types.y, Buffer.from('ab'));
  assert.equal(types.n, null);
  assert.ok((await client.query('SELECT now() AS t')).rows[0].t instanceof Date);
  // Errors with their SQLSTATE; the connection stays usable.
  assert.equal(await sqlstate(client.query('SELECT safe_div(1, 0)')), '38000');
  assert.equal(await sqlstate(client.query('SELECT * FROM nope')), '42P01');
  assert.equal((await client.query('SELECT add_one(1) AS a')).rows[0].a, '2');
  // Transactions with savepoints.
  await client.query('BEGIN');
  await client.query('SAVEPOINT s1');
  assert.equal(await sqlstate(client.query('SELECT * FROM nope')), '42P01');
  await client.query('ROLLBACK');
  // pg-cursor reads a portal in pieces.
  await client.query('BEGIN');
  const cursor = client.query(new Cursor('SELECT add_one(value) AS a FROM generate_series(1, 25)'));
  let seen = [];
  for (;;) {
    const rows = await cursor.read(10);
    if (rows.length === 0) break;
    seen = seen.concat(rows.map((r) => Number(r.a)));
  }
  await cursor.close();
  await client.query('COMMIT');
  assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i + 2));
  await client.end();

  // A pool acquiring and releasing 50 times.
  const pool = new Pool({ connectionString: url, max: 4 });
  for (let i = 0; i < 50; i++) {
    const c = await pool.connect();
    assert.equal((await c.query('SELECT add_one($1::int8) AS a', [i])).rows[0].a, String(i + 1));
    c.release();
  }
  await pool.end();
  console.log('node-postgres: ok');
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
