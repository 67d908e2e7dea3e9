"""What one session load costs the client, in CPU: SQLAlchemy Core against the raw driver
under it, on PostgreSQL (asyncpg), MariaDB (asyncmy) and SQLite (aiosqlite).

    .venv/bin/python benchmarks/sql_clients.py

This decided how SQLStore talks to its database (see sesh/stores/sql.py). Each figure is
the CPU time of this process (``time.process_time``: the database server's own work is not
in it, except SQLite's, which runs in-process) per primary-key SELECT of one row, the
median of rounds of 500, and its ratio to the raw driver on a connection of its own.

* ``core``: ``await conn.execute(select(...))`` on a connection checked out of the engine's
  pool for each load, as an app using SQLAlchemy would write it;
* ``pooled driver``: the engine's pool checks out a connection, and the SELECT runs on the
  driver connection inside it, which is what SQLStore does;
* ``raw driver``: the driver alone, one connection, no pool (the floor).

Uses a table of its own, dropped at the end (a schema on PostgreSQL, a database on MariaDB,
a temporary file for SQLite).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sesh.core.store import Record
from sesh.stores.sql import SQLStore

PG = os.environ.get("SESH_BENCH_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test")
MARIADB = os.environ.get("SESH_BENCH_MARIADB", "mysql+asyncmy://root@127.0.0.1:3306/test")


async def cpu_per_call(call: Callable[[], Awaitable[Any]], rounds: int = 9) -> float:
    for _ in range(50):
        await call()
    samples = []
    for _ in range(rounds):
        begin = time.process_time()
        for _ in range(500):
            await call()
        samples.append((time.process_time() - begin) / 500)
    return statistics.median(samples)


async def raw_connection(engine: AsyncEngine) -> tuple[Any, Callable[[], Awaitable[Any]]]:
    """A driver connection of its own to the engine's database, and how to close it."""
    url = engine.url
    if url.get_backend_name() == "postgresql":
        import asyncpg

        conn = await asyncpg.connect(
            host=url.host,
            port=url.port,
            user=url.username,
            database=url.database,
            server_settings=engine.dialect.create_connect_args(url)[1].get("server_settings"),
        )
        return conn, conn.close
    if url.get_backend_name() == "sqlite":
        import aiosqlite

        conn = await aiosqlite.connect(url.database or ":memory:")
        return conn, conn.close
    import asyncmy

    conn = await asyncmy.connect(
        host=url.host, port=url.port, user=url.username, database=url.database
    )

    async def close() -> None:
        conn.close()

    return conn, close


async def measure(name: str, engine: AsyncEngine, server_settings: Any = None) -> None:
    store = SQLStore(engine, table="bench_sessions")
    await store.create_table()
    key = secrets.token_hex(24)
    await store.create(key, Record({"user": b"\xa3ada", "visits": b"\x03"}, b"m" * 26), 600)
    table = store.table
    statement = sa.select(table.c.data, table.c.meta).where(
        table.c.session_key == key, table.c.expires_at > sa.bindparam("now")
    )

    async def core() -> Any:
        async with engine.connect() as conn:
            return (await conn.execute(statement, {"now": time.time()})).first()

    driver = store.database.driver
    load = store._sql.load
    raw, close = await raw_connection(engine)
    if server_settings:
        await raw.execute(f"SET search_path TO {server_settings}")

    async def raw_driver() -> Any:
        return await driver.fetch_one(raw, load, (key, time.time()))

    assert await core() is not None
    assert await raw_driver() is not None
    results = {
        "core": await cpu_per_call(core),
        "pooled driver": await cpu_per_call(lambda: store.load(key)),
        "raw driver": await cpu_per_call(raw_driver),
    }
    await close()
    floor = results["raw driver"]
    for label, seconds in results.items():
        print(f"{name:10} {label:14} {seconds * 1e6:7.1f} µs  {seconds / floor:4.2f}x", flush=True)
    async with engine.begin() as conn:
        await conn.run_sync(table.drop)


async def main() -> None:
    schema = f"sesh_bench_{secrets.token_hex(4)}"
    admin = create_async_engine(PG)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    try:
        engine = create_async_engine(PG, connect_args={"server_settings": {"search_path": schema}})
        await measure("postgresql", engine, schema)
        await engine.dispose()
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        await admin.dispose()

    admin = create_async_engine(MARIADB)
    async with admin.begin() as conn:
        await conn.execute(sa.text(f"CREATE DATABASE {schema}"))
    try:
        engine = create_async_engine(MARIADB.rsplit("/", 1)[0] + "/" + schema)
        await measure("mariadb", engine)
        await engine.dispose()
    finally:
        async with admin.begin() as conn:
            await conn.execute(sa.text(f"DROP DATABASE {schema}"))
        await admin.dispose()

    with tempfile.TemporaryDirectory() as folder:
        engine = create_async_engine(f"sqlite+aiosqlite:///{folder}/bench.db")
        await measure("sqlite", engine)
        await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(__doc__)
    asyncio.run(main())
