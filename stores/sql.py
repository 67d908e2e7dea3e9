"""SQLStore: sessions in a table of PostgreSQL, MySQL/MariaDB or SQLite.

The store runs on the app's SQLAlchemy ``AsyncEngine`` (its pool, its dialect) or on one it
builds from a URL. Its few statements run on the driver connection the engine's pool hands
out (asyncpg, asyncmy, aiosqlite), not through SQLAlchemy Core:
``benchmarks/sql_clients.py`` measured Core at several times the driver's CPU per load on
this machine, and these statements are fixed, so Core's compilation buys nothing here.

One row per session, its primary key the hash of the id (never the id):

* ``data``: the session's fields, MessagePack of ``{name: encoded value}``;
* ``meta``: the engine's bookkeeping, rewritten alone by a touch;
* ``expires_at``: absolute expiry, epoch seconds by the store's clock. Loads and writes
  ignore rows past it; :meth:`SQLStore.purge_expired` removes them in small batches;
* ``version``: bumped by every change of ``data``, for compare-and-set.

Each operation is one statement. An update of data writes only if the row's version is
still the one its request loaded (the store remembers recent loads); when another writer
came first, or the load is not remembered, it reads the row and its version, merges the
change and tries again, up to :data:`MERGE_ATTEMPTS` times. Two requests changing
different keys therefore both win, and an update that finds no row (a logout happened)
creates nothing.

The per-user index (which sessions each user has, for "log out everywhere") is a second
table, ``<table>_users``: one row per session of a user, expiring with it (:class:`UserIndex`,
shared with DjangoStore).

Every call runs under the store's deadline; a database that cannot be reached, or that
refuses writes (a read-only replica, a full disk, a locked SQLite file), raises
:class:`~sesh.core.errors.StoreUnavailable`, and the engine applies the outage policy.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sqlite3
import sys
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import greenlet_spawn

from sesh.core.errors import ConfigurationError, StoreUnavailable
from sesh.core.store import Record
from sesh.core.tokens import short_hash
from sesh.core.types import Clock

from ._deadline import deadline

logger = logging.getLogger("sesh.sql")

__all__ = [
    "MERGE_ATTEMPTS",
    "PURGE_BATCH",
    "SEEN_ROWS",
    "SQLStore",
    "UserIndex",
    "session_table",
    "user_table",
]

MERGE_ATTEMPTS = 32
"""How often an update tries when other writers keep changing the same session's data.
Every round lets at least one writer through, so this many concurrent writers of one
session all succeed; past it the update is an outage
(:class:`~sesh.core.errors.StoreUnavailable`), as it is past the deadline."""
SQLITE_LOCK_WAIT = 5.0
"""Seconds a store built from a SQLite URL waits for another process's lock (sqlite3's
own default), or its ``timeout`` if longer."""
SEEN_ROWS = 1024
"""Loaded rows a store remembers (their version and data), so that the update of a
request that changed its session writes at once, without reading the row again."""
PURGE_BATCH = 1000
CREATE_ATTEMPTS = 5
"""How often a SQLite store tries to create its tables while another process does."""
"""Rows one purge statement removes at most: each batch is its own short transaction."""

T = TypeVar("T")
R = TypeVar("R")
_encode_data = msgspec.msgpack.Encoder().encode
_decode_data = msgspec.msgpack.Decoder(dict[str, bytes]).decode


def session_table(name: str = "sesh_sessions", metadata: sa.MetaData | None = None) -> sa.Table:
    """The table SQLStore keeps sessions in, with its expiry index, as an SQLAlchemy
    ``Table``: add it to your own ``MetaData`` and Alembic's autogenerate creates it."""
    key_type = _key_type()
    # MySQL's BLOB stops at 64 KiB; sessions may be larger.
    blob = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
    return sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("session_key", key_type, primary_key=True),
        sa.Column("data", blob, nullable=False),
        sa.Column("meta", blob, nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Index(f"{name}_expires_at", "expires_at"),
    )


def user_table(name: str = "sesh_sessions_users", metadata: sa.MetaData | None = None) -> sa.Table:
    """The per-user index of the SQL stores (which sessions each user has), as an
    SQLAlchemy ``Table``, for Alembic as :func:`session_table`."""
    return sa.Table(
        name,
        metadata if metadata is not None else sa.MetaData(),
        sa.Column("user_ref", _key_type(), primary_key=True),
        sa.Column("session_key", _key_type(), primary_key=True),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Index(f"{name}_expires_at", "expires_at"),
    )


def _key_type() -> sa.types.TypeEngine[str]:
    # Keys are ASCII hashes: a binary collation on MySQL, whose default one ignores case.
    return sa.String(128).with_variant(
        mysql.VARCHAR(128, charset="ascii", collation="ascii_bin"), "mysql", "mariadb"
    )


class Seen(Generic[R]):
    """The rows this process loaded last (at most :data:`SEEN_ROWS`), by key, each as its
    version to compare and the data it held: the update of a request that changed its
    session then writes at once, comparing that version, and reads the row only if another
    writer came first. Each is recalled once."""

    def __init__(self) -> None:
        self._rows: OrderedDict[str, R] = OrderedDict()

    def remember(self, key: str, row: R) -> None:
        self._rows[key] = row
        if len(self._rows) > SEEN_ROWS:
            self._rows.popitem(last=False)

    def recall(self, key: str) -> R | None:
        return self._rows.pop(key, None)


class Driver(Protocol):
    """What the stores need of a database driver: statements are written with ``%s``
    placeholders, and each driver runs them in its own style."""

    def placeholders(self, statement: str) -> str:
        """``statement`` with each ``%s`` in the driver's own placeholder style."""
        ...

    async def fetch_one(self, conn: Any, statement: str, args: Sequence[Any]) -> Any:
        """The first row of a query, a tuple, or ``None``."""
        ...

    async def fetch_all(self, conn: Any, statement: str, args: Sequence[Any]) -> list[Any]:
        """Every row of a query, as tuples."""
        ...

    async def execute(self, conn: Any, statement: str, args: Sequence[Any]) -> int:
        """Run a write and commit it; the number of rows it matched."""
        ...

    def is_duplicate(self, error: BaseException) -> bool:
        """Whether ``error`` is a primary key violation."""
        ...

    def outage(self, error: BaseException) -> str | None:
        """Why ``error`` means the database cannot serve now, or ``None`` if it is not that."""
        ...

    def missing_table(self, error: BaseException) -> bool:
        """Whether ``error`` says that the table does not exist."""
        ...


class _Postgres:
    """asyncpg. Outside a transaction each statement commits on its own."""

    def __init__(self) -> None:
        import asyncpg

        self._errors = asyncpg.PostgresError

    def placeholders(self, statement: str) -> str:
        parts = statement.split("%s")
        return parts[0] + "".join(f"${n}{part}" for n, part in enumerate(parts[1:], start=1))

    async def fetch_one(self, conn: Any, statement: str, args: Sequence[Any]) -> Any:
        row = await conn.fetchrow(statement, *args)
        return None if row is None else tuple(row)

    async def fetch_all(self, conn: Any, statement: str, args: Sequence[Any]) -> list[Any]:
        return [tuple(row) for row in await conn.fetch(statement, *args)]

    async def execute(self, conn: Any, statement: str, args: Sequence[Any]) -> int:
        status: str = await conn.execute(statement, *args)  # "UPDATE 1", "INSERT 0 1"
        return int(status.rsplit(" ", 1)[1])

    def is_duplicate(self, error: BaseException) -> bool:
        return getattr(error, "sqlstate", None) == "23505"

    def missing_table(self, error: BaseException) -> bool:
        return getattr(error, "sqlstate", None) == "42P01"

    def outage(self, error: BaseException) -> str | None:
        if not isinstance(error, self._errors):
            return None
        code: str = getattr(error, "sqlstate", "") or ""
        # connection (08), resources such as a full disk (53), operator intervention such
        # as a shutdown (57), system errors (58), a read-only transaction (25006, a hot
        # standby), and the conflicts a retry resolves (40001, 40P01, 55P03).
        if code[:2] in {"08", "53", "57", "58"} or code in {"25006", "40001", "40P01", "55P03"}:
            return f"{type(error).__name__} ({code})"
        return None


# Server errors by which MySQL or MariaDB refuses to serve now (beyond what the driver
# classes as OperationalError): read-only modes, full disk or table, lock conflicts.
_MYSQL_REFUSALS = {1021, 1037, 1038, 1040, 1053, 1114, 1205, 1213, 1290, 1792, 1836}


class _MySQL:
    """asyncmy: DB-API cursors, a transaction per connection until commit (aiomysql 0.3 is
    left out: it fails on PyMySQL 1.2). SQLAlchemy connects with FOUND_ROWS, so a row
    count is the rows matched, changed or not."""

    def __init__(self, module: Any) -> None:
        self._operational = module.OperationalError
        self._integrity = module.IntegrityError
        self._database_error = module.DatabaseError

    def placeholders(self, statement: str) -> str:
        return statement

    async def fetch_one(self, conn: Any, statement: str, args: Sequence[Any]) -> Any:
        # The read opens a transaction (REPEATABLE READ) and leaves it open: the write that
        # follows in a merge commits it, and the pool rolls back whatever a connection
        # brings back. So no later read on this connection sees an old snapshot, and a
        # load costs no COMMIT round trip.
        async with conn.cursor() as cursor:
            await cursor.execute(statement, tuple(args))
            row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def fetch_all(self, conn: Any, statement: str, args: Sequence[Any]) -> list[Any]:
        async with conn.cursor() as cursor:  # the transaction: as for fetch_one
            await cursor.execute(statement, tuple(args))
            return [tuple(row) for row in await cursor.fetchall()]

    async def execute(self, conn: Any, statement: str, args: Sequence[Any]) -> int:
        async with conn.cursor() as cursor:
            await cursor.execute(statement, tuple(args))
            count: int = cursor.rowcount
        await conn.commit()
        return count

    def is_duplicate(self, error: BaseException) -> bool:
        return isinstance(error, self._integrity) and error.args[:1] == (1062,)

    def missing_table(self, error: BaseException) -> bool:
        return isinstance(error, self._database_error) and error.args[:1] == (1146,)

    def outage(self, error: BaseException) -> str | None:
        if isinstance(error, self._operational) or (
            isinstance(error, self._database_error)
            and error.args[:1] in {(n,) for n in _MYSQL_REFUSALS}
        ):
            return f"{type(error).__name__} ({error.args[0] if error.args else '?'})"
        return None


# What SQLite says when it cannot serve now; anything else (no such table, say) is a bug.
_SQLITE_REFUSALS = (
    "database is locked",
    "database table is locked",
    "disk i/o error",
    "database or disk is full",
    "attempt to write a readonly database",
    "unable to open database file",
)


class _SQLite:
    """aiosqlite, whose connection runs in a thread of its own."""

    def placeholders(self, statement: str) -> str:
        return statement.replace("%s", "?")

    async def fetch_one(self, conn: Any, statement: str, args: Sequence[Any]) -> Any:
        async with conn.execute(statement, tuple(args)) as cursor:
            row = await cursor.fetchone()
        return None if row is None else tuple(row)

    async def fetch_all(self, conn: Any, statement: str, args: Sequence[Any]) -> list[Any]:
        async with conn.execute(statement, tuple(args)) as cursor:
            return [tuple(row) for row in await cursor.fetchall()]

    async def execute(self, conn: Any, statement: str, args: Sequence[Any]) -> int:
        async with conn.execute(statement, tuple(args)) as cursor:
            count: int = cursor.rowcount
        await conn.commit()
        return count

    def is_duplicate(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.IntegrityError)

    def missing_table(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.OperationalError) and "no such table" in str(error)

    def outage(self, error: BaseException) -> str | None:
        if isinstance(error, sqlite3.OperationalError) and str(error).lower().startswith(
            _SQLITE_REFUSALS
        ):
            return f"sqlite: {error}"
        return None


def _driver(engine: AsyncEngine) -> Driver:
    dialect = engine.dialect
    if dialect.name == "postgresql" and dialect.driver == "asyncpg":
        return _Postgres()
    if dialect.name in {"mysql", "mariadb"} and dialect.driver == "asyncmy":
        import asyncmy.errors

        return _MySQL(asyncmy.errors)
    if dialect.name == "sqlite" and dialect.driver == "aiosqlite":
        return _SQLite()
    raise ConfigurationError(
        f"no SQL session store for {dialect.name}+{dialect.driver}: use postgresql+asyncpg, "
        "mysql+asyncmy (or mariadb+asyncmy) or sqlite+aiosqlite"
    )


def _engine(engine: AsyncEngine | str, timeout: float) -> tuple[AsyncEngine, bool]:
    """The engine to run on, and whether the store made it (and so disposes of it)."""
    if isinstance(engine, AsyncEngine):
        return engine, False
    if not isinstance(engine, str):
        raise ConfigurationError(
            f"engine must be an SQLAlchemy AsyncEngine or a URL, not {type(engine).__name__}"
        )
    try:
        url = sa.make_url(engine)
    except sa.exc.ArgumentError as error:
        raise ConfigurationError(f"not a database URL: {error}") from None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        # SQLite waits this long for a lock. A request's call ends sooner, at its deadline
        # (an outage); set-up (create_table, switching a new file to WAL while another
        # worker starts) has no deadline and waits for the other process.
        made = create_async_engine(url, connect_args={"timeout": max(timeout, SQLITE_LOCK_WAIT)})
        # Several processes share the file: WAL lets readers go on beside the one writer.
        sa.event.listen(made.sync_engine, "connect", _sqlite_wal)
        return made, True
    return create_async_engine(url), True


def _sqlite_wal(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class Database:
    """An engine, its driver, a deadline: how the SQL stores run a statement. Each call
    checks a driver connection out of the engine's pool and returns it; one that failed
    midway (cancelled by the deadline, say) is discarded, never reused."""

    def __init__(
        self, engine: AsyncEngine | str, timeout: float, owner: str, create_hint: str
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds: {timeout!r}")
        self.engine, self.owned = _engine(engine, timeout)
        self.driver = _driver(self.engine)
        self.timeout = float(timeout)
        self.owner = owner
        self.create_hint = create_hint
        self._discarding: set[asyncio.Task[Any]] = set()
        url = self.engine.url
        self.endpoint = (
            f"sqlite {url.database}"
            if url.get_backend_name() == "sqlite"
            else f"{url.get_backend_name()} at {url.host}:{url.port or 'default port'}"
        )
        """Where the database is, for logs: never credentials."""

    def statement(self, text: str) -> str:
        return self.driver.placeholders(text)

    async def run(self, work: Callable[[Any], Awaitable[T]], hint: str | None = None) -> T:
        """``work(driver_connection)`` under the deadline; an outage as StoreUnavailable.
        A missing table is a ConfigurationError that says how to create it (``hint``, for
        a table other than the store's own)."""
        try:
            async with deadline(self.timeout):
                pooled = await self.engine.raw_connection()
                try:
                    result = await work(pooled.driver_connection)
                except BaseException as error:
                    if self._reusable(error):
                        await greenlet_spawn(pooled.close)
                    else:
                        self._discard(pooled)
                    raise
                await greenlet_spawn(pooled.close)
                return result
        except StoreUnavailable:
            raise
        except (OSError, TimeoutError, sa.exc.TimeoutError) as error:
            raise StoreUnavailable(f"{self.endpoint}: {type(error).__name__}") from None
        except sa.exc.DBAPIError as error:  # raised by the pool, while connecting
            raise StoreUnavailable(
                f"{self.endpoint}: cannot connect ({type(error.orig).__name__})"
            ) from None
        except Exception as error:
            if self.driver.missing_table(error):
                raise ConfigurationError(
                    f"{self.owner}: its table is not in the database at {self.endpoint}: "
                    f"{hint or self.create_hint}"
                ) from error
            cause = self.driver.outage(error)
            if cause is None:
                raise
            raise StoreUnavailable(f"{self.endpoint}: {cause}") from None

    def _reusable(self, error: BaseException) -> bool:
        """Whether a connection whose work raised ``error`` is in a known state: a statement
        that the database answered with an error (a missing table), or a merge that gave
        up. Anything else (a deadline that cut a statement off, a lost connection, an
        error of unknown kind) may have left it mid-exchange."""
        return isinstance(error, StoreUnavailable) or self.driver.missing_table(error)

    def _discard(self, pooled: Any) -> None:
        """Close a connection whose state is unknown, in the background: a driver that
        works in a thread (aiosqlite) closes only once its current call ends, and the
        caller's deadline must not wait for that."""
        task = asyncio.get_running_loop().create_task(greenlet_spawn(pooled.invalidate))
        self._discarding.add(task)
        task.add_done_callback(self._discarding.discard)

    async def fetch_one(self, statement: str, args: Sequence[Any]) -> Any:
        return await self.run(lambda conn: self.driver.fetch_one(conn, statement, args))

    async def execute(self, statement: str, args: Sequence[Any]) -> int:
        return await self.run(lambda conn: self.driver.execute(conn, statement, args))

    async def insert(self, insert: str, row: Sequence[Any], clear_expired: str, now: Any) -> bool:
        """``insert`` ``row`` (its key first) unless a live row has its key; a row of that
        key past its expiry (awaiting the purge) is removed first, by ``clear_expired``."""
        driver = self.driver

        async def work(conn: Any) -> bool:
            try:
                await driver.execute(conn, insert, row)
            except Exception as error:
                if not driver.is_duplicate(error):
                    raise
                if not await driver.execute(conn, clear_expired, (row[0], now)):
                    return False  # a live session: never overwritten
                await driver.execute(conn, insert, row)
            return True

        return await self.run(work)

    async def merge(
        self,
        loaded: R | None,
        read: Callable[[Any], Awaitable[R | None]],
        write: Callable[[Any, R], Awaitable[bool]],
    ) -> bool:
        """Write a change by compare-and-set: ``write(conn, row)`` writes only if the row
        is still ``row`` (its version) and says whether it did. ``loaded`` is the row as
        its request loaded it (see :class:`Seen`); without it, or when another writer came
        first, ``read(conn)`` gives the row as it is now, at most :data:`MERGE_ATTEMPTS`
        times. No row (``read`` gives None): nothing is written, and False."""

        async def work(conn: Any) -> bool:
            row = loaded
            for _ in range(MERGE_ATTEMPTS):
                if row is None:
                    row = await read(conn)
                    if row is None:
                        return False  # ended: a logout is never undone
                if await write(conn, row):
                    return True
                row = None
            raise StoreUnavailable(
                f"{self.endpoint}: a session's data kept changing under "
                f"{MERGE_ATTEMPTS} attempts to update it"
            )

        return await self.run(work)

    def purge_statement(self, table: str, expiry: str, key: str = "session_key") -> str:
        """A DELETE of at most a batch (``%s``) of the rows of ``table`` (quoted) whose
        ``expiry`` column is at or before a time (``%s``); ``key`` its key's columns."""
        # MySQL cannot select from the table it deletes from, but can bound a DELETE.
        if self.engine.dialect.name in {"mysql", "mariadb"}:
            return self.statement(f"DELETE FROM {table} WHERE {expiry} <= %s LIMIT %s")
        return self.statement(
            f"DELETE FROM {table} WHERE ({key}) IN "
            f"(SELECT {key} FROM {table} WHERE {expiry} <= %s LIMIT %s)"
        )

    async def purge(self, statement: str, now: Any, batch: int, hint: str | None = None) -> int:
        """Run ``statement`` (``now``, ``batch``) until it removes fewer than ``batch`` rows;
        each run is its own short transaction. How many went."""
        if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
            raise ConfigurationError(f"batch must be a positive int: {batch!r}")
        total = 0
        while True:
            gone = await self.run(
                lambda conn: self.driver.execute(conn, statement, (now, batch)), hint
            )
            total += gone
            if gone < batch:
                return total

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1", ())

    async def aclose(self) -> None:
        if self._discarding:
            await asyncio.wait(self._discarding)
        if self.owned:
            await self.engine.dispose()


class UserIndex:
    """The per-user index of a SQL store, in ``table`` (:func:`user_table`): one row per
    session of a user, expiring with it. ``hint`` says how to create the table."""

    def __init__(self, database: Database, table: sa.Table, clock: Clock, hint: str) -> None:
        self.database = database
        self.table = table
        self._clock = clock
        self._hint = hint
        name = database.engine.dialect.identifier_preparer.quote(table.name)
        s = database.statement
        self._prune = s(f"DELETE FROM {name} WHERE user_ref = %s AND expires_at <= %s")
        self._members = s(
            f"SELECT session_key FROM {name} WHERE user_ref = %s AND expires_at > %s "
            "ORDER BY expires_at"
        )
        self._insert = s(
            f"INSERT INTO {name} (user_ref, session_key, expires_at) VALUES (%s, %s, %s)"
        )
        self._remove = s(f"DELETE FROM {name} WHERE user_ref = %s AND session_key = %s")
        self.purge_statement = database.purge_statement(name, "expires_at", "user_ref, session_key")

    async def add(self, user: str, key: str, ttl: float, limit: int) -> list[str]:
        driver = self.database.driver

        async def work(conn: Any) -> list[str]:
            now = self._clock()
            await driver.execute(conn, self._prune, (user, now))
            await driver.execute(conn, self._remove, (user, key))
            others = [row[0] for row in await driver.fetch_all(conn, self._members, (user, now))]
            dropped = others[: max(0, len(others) - limit + 1)]  # those that expire first
            for old in dropped:
                await driver.execute(conn, self._remove, (user, old))
            try:
                await driver.execute(conn, self._insert, (user, key, now + ttl))
            except Exception as error:
                if not driver.is_duplicate(error):
                    raise
                # Another request noted the same session this instant: noted either way.
            return dropped

        return await self.database.run(work, self._hint)

    async def members(self, user: str) -> list[str]:
        driver = self.database.driver

        async def work(conn: Any) -> list[str]:
            rows = await driver.fetch_all(conn, self._members, (user, self._clock()))
            return [row[0] for row in rows]

        return await self.database.run(work, self._hint)

    async def remove(self, user: str, keys: Collection[str]) -> None:
        driver = self.database.driver

        async def work(conn: Any) -> None:
            for key in keys:
                await driver.execute(conn, self._remove, (user, key))

        if keys:
            await self.database.run(work, self._hint)

    async def purge(self, batch: int) -> int:
        return await self.database.purge(self.purge_statement, self._clock(), batch, self._hint)

    async def create(self) -> None:
        await create_tables(self.database.engine, [self.table])


class UserIndexed:
    """The per-user index (:class:`~sesh.core.store.UserIndexStore`) of a SQL store that
    keeps one in :attr:`users`."""

    users: UserIndex

    async def index_add(self, user: str, key: str, ttl: float, limit: int) -> list[str]:
        return await self.users.add(user, key, ttl, limit)

    async def index_members(self, user: str) -> list[str]:
        return await self.users.members(user)

    async def index_remove(self, user: str, keys: Collection[str]) -> None:
        await self.users.remove(user, keys)


class _Statements:
    """SQLStore's statements for one table, in its driver's placeholder style."""

    def __init__(self, database: Database, table: sa.Table) -> None:
        name = database.engine.dialect.identifier_preparer.quote(table.name)
        s = database.statement
        where_live = "session_key = %s AND expires_at > %s"
        self.load = s(f"SELECT data, meta, version FROM {name} WHERE {where_live}")
        self.insert = s(
            f"INSERT INTO {name} (session_key, data, meta, expires_at, version) "
            "VALUES (%s, %s, %s, %s, 1)"
        )
        self.clear_expired = s(f"DELETE FROM {name} WHERE session_key = %s AND expires_at <= %s")
        self.write = s(
            f"UPDATE {name} SET data = %s, meta = %s, expires_at = %s, version = version + 1 "
            f"WHERE session_key = %s AND version = %s AND expires_at > %s"
        )
        self.touch = s(f"UPDATE {name} SET meta = %s, expires_at = %s WHERE {where_live}")
        self.delete = s(f"DELETE FROM {name} WHERE {where_live}")
        self.purge = database.purge_statement(name, "expires_at")


class SQLStore(UserIndexed):
    """Sessions in a SQL table. ``engine`` is the app's SQLAlchemy ``AsyncEngine`` or a URL
    (``postgresql+asyncpg://...``, ``mysql+asyncmy://...``, ``sqlite+aiosqlite:///file.db``);
    a store built from a URL owns its engine and disposes of it in :meth:`aclose`.

    ``table`` names the table (create it with :meth:`create_table`, or migrate to
    :meth:`ddl`); ``timeout`` is the deadline of every call, in seconds, connecting
    included; ``clock`` gives the wall-clock time rows expire by (inject one in tests).

    On SQLite, a store built from a URL puts the file in WAL mode, so that several worker
    processes on one machine share it: readers never wait for the writer.
    """

    def __init__(
        self,
        engine: AsyncEngine | str,
        *,
        table: str = "sesh_sessions",
        timeout: float = 1.0,
        clock: Clock = time.time,
    ) -> None:
        if not isinstance(table, str) or not table:
            raise ConfigurationError(f"table must be a non-empty str: {table!r}")
        self.database = Database(
            engine,
            timeout,
            "SQLStore",
            f"create it with `await store.create_table()`, or with "
            f"`python -m sesh.stores.sql --table {table} create URL`",
        )
        self.table = session_table(table)
        """The table as an SQLAlchemy ``Table``."""
        self.endpoint = self.database.endpoint
        self._clock = clock
        self._sql = _Statements(self.database, self.table)
        self._seen: Seen[tuple[int, dict[str, bytes]]] = Seen()
        self.users = UserIndex(
            self.database, user_table(f"{table}_users"), clock, self.database.create_hint
        )
        """The per-user index, in the table ``<table>_users``."""

    @property
    def engine(self) -> AsyncEngine:
        return self.database.engine

    async def load(self, key: str) -> Record | None:
        row = await self.database.fetch_one(self._sql.load, (key, self._clock()))
        if row is None:
            return None
        data = _decode_row(row[0], key)
        if data is None:
            return None
        self._seen.remember(key, (row[2], data))  # the record's data, which nobody changes
        return Record(data, bytes(row[1]))

    async def create(self, key: str, record: Record, ttl: float) -> bool:
        now = self._clock()
        row = (key, _encode_data(record.data), record.meta, now + ttl)
        return await self.database.insert(self._sql.insert, row, self._sql.clear_expired, now)

    async def update(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        meta: bytes,
        ttl: float,
    ) -> bool:
        if not changed and not removed:
            return await self.touch(key, meta, ttl)
        driver = self.database.driver

        async def read(conn: Any) -> tuple[int, dict[str, bytes]] | None:
            row = await driver.fetch_one(conn, self._sql.load, (key, self._clock()))
            return None if row is None else (row[2], _decode_row(row[0], key) or {})

        async def write(conn: Any, row: tuple[int, dict[str, bytes]]) -> bool:
            version, stored = row
            now = self._clock()
            data = {name: value for name, value in stored.items() if name not in removed}
            data.update(changed)
            args = (_encode_data(data), meta, now + ttl, key, version, now)
            return bool(await driver.execute(conn, self._sql.write, args))

        return await self.database.merge(self._seen.recall(key), read, write)

    async def touch(self, key: str, meta: bytes, ttl: float) -> bool:
        now = self._clock()
        return bool(await self.database.execute(self._sql.touch, (meta, now + ttl, key, now)))

    async def delete(self, key: str) -> bool:
        return bool(await self.database.execute(self._sql.delete, (key, self._clock())))

    async def purge_expired(self, *, batch: int = PURGE_BATCH) -> int:
        """Remove expired rows, ``batch`` at a time, each batch its own statement (so no
        lock is held for long); how many sessions went. The per-user index's expired
        rows go too."""
        gone = await self.database.purge(self._sql.purge, self._clock(), batch)
        await self.users.purge(batch)
        return gone

    async def create_table(self) -> None:
        """Create the table, the per-user index's table and their expiry indexes unless
        they exist (and, on SQLite, put the file in WAL mode)."""
        await create_tables(self.engine, [self.table, self.users.table], wal=True)

    def ddl(self) -> str:
        """The SQL that :meth:`create_table` runs, for this store's database: for teams that
        write their migrations themselves."""
        return ddl([self.table, self.users.table], self.engine.dialect)

    async def ping(self) -> None:
        """Check that the database answers, within the deadline (at start-up)."""
        await self.database.ping()

    async def aclose(self) -> None:
        """Dispose of the engine if the store made it from a URL; yours stays yours."""
        await self.database.aclose()


async def create_tables(
    engine: AsyncEngine, tables: Sequence[sa.Table], *, wal: bool = False
) -> None:
    """Create ``tables`` and their indexes unless they exist, as each of several workers
    starting at once may; ``wal``: and put a SQLite file in WAL mode."""
    for attempt in range(1, CREATE_ATTEMPTS + 1):
        try:
            for table in tables:
                await _create_table(engine, table)
            if wal and engine.dialect.name == "sqlite":
                async with engine.connect() as conn:
                    await conn.exec_driver_sql("PRAGMA journal_mode=WAL")
            return
        except sa.exc.OperationalError as error:
            # SQLite may answer "database is locked" at once, whatever its lock wait, while
            # another worker creates the same tables in a new file (a fresh-clone run of two
            # workers starting together failed so): creating is idempotent, so again.
            if engine.dialect.name != "sqlite" or "locked" not in str(error):
                raise
            if attempt == CREATE_ATTEMPTS:
                raise
            await asyncio.sleep(0.1 * attempt)


async def _create_table(engine: AsyncEngine, table: sa.Table) -> None:
    """Create ``table`` and its indexes unless the table exists."""
    try:
        async with engine.begin() as conn:
            await conn.run_sync(table.create, checkfirst=True)
    except sa.exc.DBAPIError:
        # Several workers starting at once: another may have made it between the check and
        # the CREATE, which is as good.
        async with engine.connect() as conn:
            if not await conn.run_sync(lambda sync: sa.inspect(sync).has_table(table.name)):
                raise


def _decode_row(blob: bytes, key: str) -> dict[str, bytes] | None:
    try:
        return _decode_data(blob)
    except (msgspec.DecodeError, TypeError):
        logger.warning("a session row holds data sesh did not write (%s): ignored", short_hash(key))
        return None


def ddl(tables: Sequence[sa.Table], dialect: sa.engine.Dialect) -> str:
    """``CREATE TABLE`` and ``CREATE INDEX`` of ``tables`` in ``dialect``'s SQL."""
    statements: list[Any] = []
    for table in tables:
        statements.append(sa.schema.CreateTable(table))
        statements += [sa.schema.CreateIndex(index) for index in table.indexes]
    return "".join(f"{str(s.compile(dialect=dialect)).strip()};\n\n" for s in statements)


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sesh.stores.sql", description="Manage SQLStore's table."
    )
    parser.add_argument("--table", default="sesh_sessions")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("ddl", help="print the SQL that creates the table")
    show.add_argument("url", help="a database URL, or only its dialect: postgresql, mysql, sqlite")
    create = commands.add_parser("create", help="create the table unless it exists")
    create.add_argument("url")
    purge = commands.add_parser("purge", help="remove expired rows, in batches")
    purge.add_argument("url")
    purge.add_argument("--batch", type=int, default=PURGE_BATCH)
    options = parser.parse_args(argv)

    if options.command == "ddl":
        url = options.url if "://" in options.url else options.url + "://"
        dialect = sa.make_url(url).get_dialect()()
        tables = [session_table(options.table), user_table(f"{options.table}_users")]
        print(ddl(tables, dialect), end="")
        return 0

    async def run() -> str:
        store = SQLStore(options.url, table=options.table, timeout=60)
        try:
            if options.command == "create":
                await store.create_table()
                return f"table {options.table} ready"
            return f"{await store.purge_expired(batch=options.batch)} expired sessions removed"
        finally:
            await store.aclose()

    print(asyncio.run(run()))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
