"""pgcli against wasmudf: startup, a statement from the command line, and every
catalog query its completion refresher runs (pgcli's own PGExecute, as the refresher
calls it), with its defaults.

Run by the smoke suite (server/tests/smoke/clients.rs) with the server's URL.
"""

import os
import subprocess
import sys
import tempfile
import urllib.parse

from pgcli.pgexecute import PGExecute

URL = sys.argv[1]
url = urllib.parse.urlparse(URL)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# The pgcli program itself: connect (SHOW TIME ZONE, its startup queries), run one
# statement, print it as a table. HOME is a scratch directory for its config and
# history files.
with tempfile.TemporaryDirectory() as home:
    pgcli = os.path.join(os.path.dirname(sys.executable), "pgcli")
    out = subprocess.run(
        [pgcli, "-h", url.hostname, "-p", str(url.port), "-U", url.username, "-w", url.path.lstrip("/"),
         "--less-chatty", "-c", "SELECT add_one(41) AS answer"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "HOME": home},
    )
    check(out.returncode == 0 and "answer" in out.stdout and "42" in out.stdout,
          f"pgcli -c: {out.returncode}\n{out.stdout}\n{out.stderr}")

# The completion refresher's queries.
executor = PGExecute(url.path.lstrip("/"), url.username, None, url.hostname, url.port, None)
list(executor.run("CREATE TABLE pgcli_items (id BIGINT, label TEXT)"))
list(executor.run("CREATE VIEW pgcli_labels AS SELECT label FROM pgcli_items"))
schemas = list(executor.schemata())
check("public" in schemas, f"schemata {schemas}")
tables = list(executor.tables())
check(("public", "pgcli_items") in tables, f"tables {tables}")
check(not any(name == "functions" for _, name in tables), f"wasm views among tables {tables}")
views = list(executor.views())
check(("public", "pgcli_labels") in views and ("wasm", "functions") in views, f"views {views}")
columns = list(executor.table_columns())
mine = [(c[2], c[3]) for c in columns if c[1] == "pgcli_items"]
check(mine == [("id", "bigint"), ("label", "text")], f"table_columns {mine}")
view_columns = [c[2] for c in executor.view_columns() if c[1] == "pgcli_labels"]
check(view_columns == ["label"], f"view_columns {view_columns}")
functions = {f.func_name: f for f in executor.functions()}
check("add_one" in functions and "gcd" in functions, f"functions {sorted(functions)[:20]}")
check(functions["add_one"].return_type == "bigint", f"add_one returns {functions['add_one'].return_type}")
check(list(executor.datatypes()) == [], "datatypes")
check("wasmudf" in list(executor.databases()), "databases")
check(list(executor.foreignkeys()) == [], "foreignkeys")
list(executor.casing())
check(executor.search_path()[0] == "public", "search_path")
list(executor.run("DROP VIEW pgcli_labels"))
list(executor.run("DROP TABLE pgcli_items"))
print("pgcli: ok")
