"""SQLAlchemy 2 (psycopg driver) against wasmudf: Core and the ORM, with defaults.

Run by the smoke suite (server/tests/smoke/clients.rs) with the server's URL.
"""

import sys

import sqlalchemy as sa
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

metadata.drop_all(engine)
print("sqlalchemy: ok")
