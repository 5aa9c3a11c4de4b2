"""SQLAlchemy 2 (psycopg driver) against wasmudf: Core, the ORM, the inspector and
pandas on top of it, with defaults.

Run by the smoke suite (server/tests/smoke/clients.rs) with the server's URL.
"""

import sys

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

URL = sys.argv[1].replace("postgresql://", "postgresql+psycopg://", 1)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


# connect() runs the dialect's startup probes: SHOW transaction isolation level,
# SHOW standard_conforming_strings, psycopg's TypeInfo (to_regtype) in a savepoint.
engine = sa.create_engine(URL)
with engine.connect() as conn:
    check(conn.dialect.server_version_info[0] == 16, "server version")
    check(conn.get_isolation_level() == "READ COMMITTED", "isolation level")
    check(conn.execute(sa.text("SELECT add_one(:x)"), {"x": 41}).scalar() == 42, "text() with a parameter")
    conn.rollback()

# Core: a table, a bulk insert, a select through a Wasm function.
metadata = sa.MetaData()
items = sa.Table("sa_items", metadata, sa.Column("id", sa.BigInteger), sa.Column("name", sa.Text))
metadata.create_all(engine)
with engine.begin() as conn:
    conn.execute(items.insert(), [{"id": i, "name": f"item {i}"} for i in range(20)])
with engine.connect() as conn:
    rows = conn.execute(
        sa.select(items.c.name, sa.func.add_one(items.c.id).label("next")).where(items.c.id < 3).order_by(items.c.id)
    ).all()
    check([tuple(r) for r in rows] == [("item 0", 1), ("item 1", 2), ("item 2", 3)], f"select {rows}")
    total = conn.execute(sa.select(sa.func.count()).select_from(items)).scalar()
    check(total == 20, f"count {total}")
    # An error inside a transaction: the SQLSTATE reaches SQLAlchemy, the connection goes on.
    try:
        conn.execute(sa.text("SELECT safe_div(1, 0)"))
        raise AssertionError("no error")
    except sa.exc.DBAPIError as e:
        check(e.orig.sqlstate == "38000", f"guest error {e.orig.sqlstate}")
    conn.rollback()
    check(conn.execute(sa.text("SELECT 1")).scalar() == 1, "usable after rollback")
    conn.commit()
    # Nested transactions are savepoints.
    with conn.begin():
        with conn.begin_nested():
            conn.execute(sa.text("SELECT 1"))


# ORM: a mapped class, queried through the session (the table has no key: inserts go
# through Core, as ORMs need generated keys that wasmudf tables do not have yet).
class Base(DeclarativeBase):
    pass


class Item(Base):
    __table__ = items
    __mapper_args__ = {"primary_key": [items.c.id]}
    id: Mapped[int]
    name: Mapped[str]


with Session(engine) as session:
    found = session.scalars(sa.select(Item).where(Item.id == 7)).one()
    check(found.name == "item 7", f"orm {found.name}")
    names = session.scalars(sa.select(Item.name).order_by(Item.id.desc()).limit(2)).all()
    check(names == ["item 19", "item 18"], f"orm order {names}")

# ORM writes: a changed object is an UPDATE and a deleted one a DELETE, each checked by
# the rows its tag counts; a rollback undoes them, a commit keeps them.
with Session(engine) as session:
    item = session.scalars(sa.select(Item).where(Item.id == 3)).one()
    item.name = "renamed"
    session.flush()
    session.delete(session.scalars(sa.select(Item).where(Item.id == 4)).one())
    session.flush()
    check(session.scalar(sa.select(sa.func.count()).select_from(Item)) == 19, "orm delete seen in its session")
    session.rollback()
    check(session.scalars(sa.select(Item.name).where(Item.id == 3)).one() == "item 3", "orm rollback")
    check(session.scalar(sa.select(sa.func.count()).select_from(Item)) == 20, "orm rollback of a delete")
    session.scalars(sa.select(Item).where(Item.id == 3)).one().name = "renamed"
    session.commit()
with Session(engine) as session:
    check(session.scalars(sa.select(Item.name).where(Item.id == 3)).one() == "renamed", "orm commit")

# ORM inserts with a generated key: SERIAL PRIMARY KEY from create_all, INSERT ...
# RETURNING id at flush, the key on the object; a duplicate key is IntegrityError with
# 23505 and the session goes on after a rollback.
class Note(Base):
    __tablename__ = "sa_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(sa.Text, unique=True)


Note.__table__.create(engine)
with Session(engine) as session:
    notes = [Note(body=f"note {i}") for i in range(3)]
    session.add_all(notes)
    session.flush()
    check([n.id for n in notes] == [1, 2, 3], f"generated keys {[n.id for n in notes]}")
    session.commit()
with Session(engine) as session:
    session.add(Note(body="note 1"))
    try:
        session.flush()
        raise AssertionError("duplicate accepted")
    except sa.exc.IntegrityError as e:
        check(e.orig.sqlstate == "23505", f"duplicate {e.orig.sqlstate}")
    session.rollback()
    session.add(Note(body="note 4"))
    session.commit()
    check(session.scalar(sa.select(sa.func.count()).select_from(Note)) == 4, "after rollback")
Note.__table__.drop(engine)

# Reflection: the inspector's catalog queries (LIKE ... ESCAPE, json_build_object,
# pg_get_serial_sequence, unnest(indkey) with generate_subscripts, pg_table_is_visible).
inspector = sa.inspect(engine)
schemas = inspector.get_schema_names()
check("public" in schemas and not any(s.startswith("pg_") for s in schemas), f"schemas {schemas}")
tables = inspector.get_table_names()
check("sa_items" in tables, f"tables {tables}")
views = inspector.get_view_names()
check("functions" not in views and "columns" not in views, f"wasm and information_schema views listed as the user's: {views}")
columns = inspector.get_columns("sa_items")
check([c["name"] for c in columns] == ["id", "name"], f"columns {columns}")
check(isinstance(columns[0]["type"], sa.BigInteger) and isinstance(columns[1]["type"], sa.Text), f"column types {columns}")
check(all(c["nullable"] and c["default"] is None for c in columns), f"column options {columns}")
check(inspector.get_pk_constraint("sa_items")["constrained_columns"] == [], "no primary key")
check(inspector.get_indexes("sa_items") == [], "no indexes")
check(inspector.get_unique_constraints("sa_items") == [], "no unique constraints")
check(inspector.get_foreign_keys("sa_items") == [], "no foreign keys")
# A jsonb column reflects as JSONB (the catalog says jsonb, not text).
with engine.begin() as conn:
    conn.execute(sa.text("CREATE TABLE IF NOT EXISTS sa_docs (id INT, doc JSONB)"))
doc_columns = inspector.get_columns("sa_docs")
check(isinstance(doc_columns[1]["type"], postgresql.JSONB), f"jsonb column reflected as {doc_columns}")
reflected = sa.Table("sa_items", sa.MetaData(), autoload_with=engine)
check(list(reflected.c.keys()) == ["id", "name"], f"autoload {reflected.c.keys()}")

# pandas on the same engine: to_sql creates and fills a table, read_sql_table reflects
# it, read_sql runs a query with a parameter through a Wasm function.
import pandas as pd

frame = pd.DataFrame({"a": [1, 2, 3], "b": ["x", "y", None], "c": [1.5, None, 2.5]})
frame.to_sql("sa_frame", engine, index=False)
back = pd.read_sql_table("sa_frame", engine)
check(list(back.columns) == ["a", "b", "c"] and len(back) == 3, f"read_sql_table {back}")
check(back.sort_values("a")["b"].tolist()[:2] == ["x", "y"], f"read_sql_table values {back}")
queried = pd.read_sql(sa.text("SELECT add_one(a) AS next FROM sa_frame WHERE a > :low ORDER BY a"), engine, params={"low": 1})
check(queried["next"].tolist() == [3, 4], f"read_sql {queried}")
with engine.begin() as conn:
    conn.execute(sa.text("DROP TABLE sa_frame"))

metadata.drop_all(engine)
print("sqlalchemy: ok")
