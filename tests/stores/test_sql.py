"""SQLStore on real PostgreSQL, MariaDB and SQLite."""

from __future__ import annotations

import asyncio
import re
import sys
import time
from pathlib import Path

import anyio
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from sesh.core import SessionMiddleware
from sesh.core.errors import ConfigurationError, StoreUnavailable
from sesh.core.store import Record, Store, UserIndexStore
from sesh.core.testing import (
    Client,
    FakeClock,
    SessionContract,
    StoreContract,
    UserIndexContract,
    responder,
)
from sesh.stores.django import DjangoStore
from sesh.stores.sql import SQLStore

from conftest import SECRET, SQL_SERVERS
from support.databases import Databases, counting_statements
from support.redis_servers import free_port

pytestmark = pytest.mark.anyio
on_every_server = pytest.mark.parametrize("sql_server", SQL_SERVERS, indirect=True)


async def remaining_ttl(store: Store, key: str) -> float | None:
    assert isinstance(store, SQLStore)
    table = store.table
    async with store.engine.connect() as conn:
        expires = (
            await conn.execute(
                table.select()
                .with_only_columns(table.c.expires_at)
                .where(table.c.session_key == key)
            )
        ).scalar()
    return None if expires is None else float(expires) - store._clock()


@on_every_server
class TestSQLStoreContract(StoreContract, UserIndexContract):
    @pytest.fixture
    def store(self, sql_store: SQLStore) -> SQLStore:
        return sql_store

    async def let_pass(self, store: UserIndexStore, seconds: float) -> None:
        assert isinstance(store, SQLStore)
        store._clock.advance(seconds)  # type: ignore[attr-defined]

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        return await remaining_ttl(store, key)


@on_every_server
class TestSQLSessions(SessionContract):
    @pytest.fixture
    def session_store(self, sql_store: SQLStore) -> SQLStore:
        return sql_store


DATA = {"user": b"\xa3ada", "cart": b"\x90"}
META = b"m" * 26


@on_every_server
async def test_concurrent_updates_of_different_keys_all_win(sql_store: SQLStore) -> None:
    await sql_store.create("k" * 48, Record({}, META), 60)
    writes = [sql_store.update("k" * 48, {f"f{n}": bytes([n])}, [], META, 60) for n in range(24)]
    assert all(await asyncio.gather(*writes))
    loaded = await sql_store.load("k" * 48)
    assert loaded is not None
    assert loaded.data == {f"f{n}": bytes([n]) for n in range(24)}


@on_every_server
async def test_a_logout_racing_updates_is_never_undone(sql_store: SQLStore) -> None:
    for round_ in range(5):
        key = f"{round_:048d}"
        await sql_store.create(key, Record(dict(DATA), META), 60)
        writes = [sql_store.update(key, {f"f{n}": b"\x01"}, [], META, 60) for n in range(8)]
        await asyncio.gather(*writes[:4], sql_store.delete(key), *writes[4:])
        assert await sql_store.load(key) is None
        assert await remaining_ttl(sql_store, key) is None


@on_every_server
async def test_expired_rows_are_no_session_and_give_way(
    sql_store: SQLStore, clock: FakeClock
) -> None:
    key = "e" * 48
    await sql_store.create(key, Record(dict(DATA), META), 10)
    clock.advance(10)
    assert await sql_store.load(key) is None
    assert not await sql_store.update(key, {"a": b"\x01"}, [], META, 60)
    assert not await sql_store.touch(key, META, 60)
    assert not await sql_store.delete(key)
    # The row lingers until the purge, but a new session may take its key.
    assert await remaining_ttl(sql_store, key) == 0
    assert await sql_store.create(key, Record({"new": b"\x02"}, META), 60)
    assert await sql_store.load(key) == Record({"new": b"\x02"}, META)


@on_every_server
async def test_purge_removes_only_expired_rows_in_batches(
    sql_store: SQLStore, clock: FakeClock
) -> None:
    for n in range(23):
        await sql_store.create(f"{n:048d}", Record({}, META), 10 if n < 20 else 100)
    clock.advance(50)
    assert await sql_store.purge_expired(batch=7) == 20
    assert await sql_store.purge_expired(batch=7) == 0
    for n in range(23):
        assert (await remaining_ttl(sql_store, f"{n:048d}") is None) == (n < 20)
    with pytest.raises(ConfigurationError, match="batch"):
        await sql_store.purge_expired(batch=0)


@on_every_server
async def test_a_row_sesh_did_not_write_is_no_session(
    sql_store: SQLStore, caplog: pytest.LogCaptureFixture
) -> None:
    key = "b" * 48
    async with sql_store.engine.begin() as conn:
        await conn.execute(
            sql_store.table.insert().values(
                session_key=key, data=b"\xc1 not msgpack", meta=META, expires_at=4e9, version=1
            )
        )
    assert await sql_store.load(key) is None
    assert "data sesh did not write" in caplog.text
    assert key not in caplog.text


@on_every_server
async def test_the_printed_ddl_makes_a_working_table(
    sql_store: SQLStore, sql_engine: AsyncEngine
) -> None:
    store = SQLStore(sql_engine, table="from_printed_ddl", clock=sql_store._clock)
    command = [sys.executable, "-m", "sesh.stores.sql", "--table", "from_printed_ddl", "ddl"]
    result = await anyio.run_process([*command, sql_engine.url.render_as_string()])
    printed = result.stdout.decode()
    assert printed == store.ddl()
    assert "CREATE INDEX from_printed_ddl_expires_at" in printed
    async with sql_engine.begin() as conn:
        for statement in printed.split(";"):
            if statement.strip():
                await conn.exec_driver_sql(statement)
    try:
        assert await store.create("d" * 48, Record(dict(DATA), META), 60)
        assert await store.load("d" * 48) == Record(DATA, META)
    finally:
        async with sql_engine.begin() as conn:
            await conn.run_sync(store.table.drop)


@on_every_server
async def test_a_database_that_refuses_writes_is_an_outage(
    sql_server: str, databases: Databases, tmp_path: Path, sql_store: SQLStore
) -> None:
    await sql_store.create("r" * 48, Record(dict(DATA), META), 60)
    if sql_server == "sqlite":
        url = f"sqlite+aiosqlite:///file:{tmp_path / 'sessions.db'}?mode=ro&uri=true"
        engine = create_async_engine(url)
    elif sql_server == "postgresql":  # what a hot standby answers
        settings = {"search_path": databases.name, "default_transaction_read_only": "on"}
        engine = databases.engine(sql_server, connect_args={"server_settings": settings})
    else:
        engine = databases.engine(
            sql_server, connect_args={"init_command": "SET SESSION TRANSACTION READ ONLY"}
        )
    store = SQLStore(engine, table=sql_store.table.name, clock=sql_store._clock)
    try:
        assert await store.load("r" * 48) == Record(DATA, META)
        for write in (
            store.create("n" * 48, Record({}, META), 60),
            store.update("r" * 48, {"a": b"\x01"}, [], META, 60),
            store.touch("r" * 48, META, 60),
            store.delete("r" * 48),
        ):
            with pytest.raises(StoreUnavailable, match=store.endpoint):
                await write
    finally:
        await store.aclose()  # waits for the connections it discarded
        await engine.dispose()
    assert await sql_store.load("r" * 48) == Record(DATA, META)


@on_every_server
async def test_an_unreachable_database_is_an_outage(sql_server: str) -> None:
    if sql_server == "sqlite":
        url = "sqlite+aiosqlite:////nonexistent-folder/sessions.db"
    else:
        scheme = "postgresql+asyncpg" if sql_server == "postgresql" else "mysql+asyncmy"
        url = f"{scheme}://nobody@127.0.0.1:{free_port()}/test"
    store = SQLStore(url, timeout=2)
    try:
        with pytest.raises(StoreUnavailable, match=re.escape(store.endpoint)):
            await store.load("u" * 48)
        with pytest.raises(StoreUnavailable):
            await store.ping()
    finally:
        await store.aclose()


@on_every_server
async def test_a_call_past_its_deadline_is_an_outage_and_leaves_the_pool_sound(
    sql_server: str, sql_store: SQLStore, sql_engine: AsyncEngine
) -> None:
    """Another connection holds the table locked: the store gives up at its deadline,
    discards the connection it was using, and serves again once the lock goes."""
    await sql_store.create("l" * 48, Record(dict(DATA), META), 60)
    store = SQLStore(sql_engine, table=sql_store.table.name, clock=sql_store._clock, timeout=0.3)
    name = sql_store.table.name
    lock = {
        "postgresql": f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE",
        "mariadb": f"LOCK TABLES {name} WRITE",
        "sqlite": "BEGIN EXCLUSIVE",
    }[sql_server]
    async with sql_engine.connect() as holder:
        await holder.exec_driver_sql(lock)
        with pytest.raises(StoreUnavailable):
            await store.update("l" * 48, {"a": b"\x01"}, [], META, 60)
        await holder.rollback()
        if sql_server == "mariadb":
            await holder.exec_driver_sql("UNLOCK TABLES")
    assert await store.update("l" * 48, {"a": b"\x01"}, [], META, 60)
    assert await store.load("l" * 48) == Record({**DATA, "a": b"\x01"}, META)
    await store.aclose()  # waits for the discarded connection to close


async def test_a_database_outage_is_the_engines_outage_answer() -> None:
    store = SQLStore(f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/test", timeout=2)
    app = SessionMiddleware(responder(lambda s: s.update(a=1)), store=store, secret_key=SECRET)
    client = Client(app)
    try:
        response = await client.request()
        assert response.status == 503
        assert response.set_cookies == []
    finally:
        await store.aclose()


async def test_the_command_creates_the_table_and_purges(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'sessions.db'}"
    command = [sys.executable, "-m", "sesh.stores.sql", "--table", "web_sessions"]
    created = await anyio.run_process([*command, "create", url])
    assert created.stdout.decode() == "table web_sessions ready\n"
    clock = FakeClock(time.time() - 3600)  # rows written an hour ago
    store = SQLStore(url, table="web_sessions", clock=clock)
    try:
        for n in range(5):
            await store.create(f"{n:048d}", Record({}, META), 60 if n < 3 else 7200)
    finally:
        await store.aclose()
    purged = await anyio.run_process([*command, "purge", url, "--batch", "2"])
    assert purged.stdout.decode() == "3 expired sessions removed\n"


@on_every_server
async def test_a_missing_table_says_how_to_make_it(sql_engine: AsyncEngine) -> None:
    store = SQLStore(sql_engine, table="never_created")
    with pytest.raises(
        ConfigurationError, match=re.escape("python -m sesh.stores.sql --table never_created")
    ):
        await store.load("x" * 48)
    django = DjangoStore(sql_engine, secret_key="s", table="no_django_here")
    with pytest.raises(ConfigurationError, match=re.escape("manage.py migrate")):
        await django.load("x" * 32)


@on_every_server
async def test_an_update_after_a_load_is_one_statement(sql_store: SQLStore) -> None:
    await sql_store.create("c" * 48, Record(dict(DATA), META), 60)
    assert await sql_store.load("c" * 48) is not None
    with counting_statements(sql_store.database) as counting:
        assert await sql_store.update("c" * 48, {"a": b"\x01"}, ["cart"], META, 60)
    assert counting.sent == 1
    assert await sql_store.load("c" * 48) == Record({"user": b"\xa3ada", "a": b"\x01"}, META)


@on_every_server
async def test_a_remembered_load_that_another_writer_overtook_is_merged(
    sql_store: SQLStore, sql_engine: AsyncEngine
) -> None:
    """Two processes: this one loaded the row, the other changed it since. This update's
    first write finds the version moved, so it reads the row again and keeps both keys."""
    other = SQLStore(sql_engine, table=sql_store.table.name, clock=sql_store._clock)
    await sql_store.create("m" * 48, Record(dict(DATA), META), 60)
    assert await sql_store.load("m" * 48) is not None
    assert await other.update("m" * 48, {"theirs": b"\x02"}, [], META, 60)
    assert await sql_store.update("m" * 48, {"ours": b"\x01"}, ["cart"], META, 60)
    loaded = await other.load("m" * 48)
    assert loaded is not None
    assert loaded.data == {"user": b"\xa3ada", "theirs": b"\x02", "ours": b"\x01"}
    # And a logout in between is never undone by the remembered version.
    assert await sql_store.load("m" * 48) is not None
    assert await other.delete("m" * 48)
    assert not await sql_store.update("m" * 48, {"late": b"\x03"}, [], META, 60)
    assert await other.load("m" * 48) is None
