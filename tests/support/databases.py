"""The databases the SQL tests run on: the machine's PostgreSQL and MariaDB, shared, so each
run works in a schema (PostgreSQL) or a database (MariaDB) of its own and drops only that;
and SQLite files in the test's temporary folder.

``Databases.engine(name)`` makes an ``AsyncEngine`` on this run's space of ``name``;
``django_settings(name)`` the same place as Django's ``DATABASES`` entry.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pymysql
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

POSTGRES = os.environ.get("SESH_POSTGRES", "postgres@127.0.0.1:5432/test")
MARIADB = os.environ.get("SESH_MARIADB", "root@127.0.0.1:3306/test")
SERVERS = ("postgresql", "mariadb")


def _parts(address: str) -> tuple[str, str, int, str]:
    user, rest = address.split("@", 1)
    host_port, database = rest.split("/", 1)
    host, port = host_port.split(":")
    return user, host, int(port), database


class Databases:
    """This run's own schema on PostgreSQL and database on MariaDB, made on first use."""

    def __init__(self) -> None:
        self.name = f"sesh_test_{os.getpid()}_{secrets.token_hex(4)}"
        self.made: set[str] = set()

    def reachable(self, server: str) -> bool:
        try:
            self._admin(server, lambda run: run("SELECT 1"))
        except (psycopg.Error, pymysql.Error, OSError):
            return False
        return True

    def _admin(self, server: str, work: Any) -> None:
        if server == "postgresql":
            user, host, port, database = _parts(POSTGRES)
            with psycopg.connect(
                host=host, port=port, user=user, dbname=database, autocommit=True, connect_timeout=3
            ) as conn:
                work(conn.execute)
        else:
            user, host, port, database = _parts(MARIADB)
            conn = pymysql.connect(
                host=host, port=port, user=user, database=database, connect_timeout=3
            )
            try:
                with conn.cursor() as cursor:
                    work(cursor.execute)
                conn.commit()
            finally:
                conn.close()

    def make(self, server: str) -> None:
        if server in self.made:
            return
        kind = "SCHEMA" if server == "postgresql" else "DATABASE"
        self._admin(server, lambda run: run(f"CREATE {kind} {self.name}"))
        self.made.add(server)

    def drop(self) -> None:
        for server in self.made:
            kind = "SCHEMA" if server == "postgresql" else "DATABASE"
            extra = " CASCADE" if server == "postgresql" else ""
            self._admin(server, lambda run, k=kind, e=extra: run(f"DROP {k} {self.name}{e}"))
        self.made.clear()

    def url(self, server: str, folder: Path | None = None) -> str:
        """The SQLAlchemy URL of this run's space on ``server`` (a file in ``folder`` for
        SQLite). PostgreSQL's schema is not in a URL: :meth:`engine` sets it."""
        if server == "sqlite":
            assert folder is not None
            return f"sqlite+aiosqlite:///{folder / 'sessions.db'}"
        if server == "postgresql":
            user, host, port, database = _parts(POSTGRES)
            return f"postgresql+asyncpg://{user}@{host}:{port}/{database}"
        user, host, port, _ = _parts(MARIADB)
        return f"mysql+asyncmy://{user}@{host}:{port}/{self.name}"

    def engine(self, server: str, folder: Path | None = None, **options: Any) -> AsyncEngine:
        if server == "postgresql":
            options.setdefault("connect_args", {"server_settings": {"search_path": self.name}})
        if server == "sqlite":  # a lock is waited for long, so that only a deadline ends it
            options.setdefault("connect_args", {"timeout": 60})
        return create_async_engine(self.url(server, folder), **options)

    def django_settings(self, server: str, folder: Path | None = None) -> dict[str, Any]:
        if server == "sqlite":
            assert folder is not None
            return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(folder / "sessions.db")}
        if server == "postgresql":
            user, host, port, database = _parts(POSTGRES)
            return {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": database,
                "USER": user,
                "HOST": host,
                "PORT": port,
                "OPTIONS": {"options": f"-c search_path={self.name}"},
            }
        user, host, port, _ = _parts(MARIADB)
        return {
            "ENGINE": "django.db.backends.mysql",
            "NAME": self.name,
            "USER": user,
            "HOST": host,
            "PORT": port,
        }


class CountingDriver:
    """A SQL store's driver (``store.database.driver``), counting the statements sent
    through it in ``sent``; :func:`counting_statements` puts it in the driver's place."""

    def __init__(self, driver: Any) -> None:
        self.driver = driver
        self.sent = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.driver, name)

    async def fetch_one(self, *args: Any) -> Any:
        self.sent += 1
        return await self.driver.fetch_one(*args)

    async def execute(self, *args: Any) -> int:
        self.sent += 1
        return int(await self.driver.execute(*args))

    async def fetch_all(self, *args: Any) -> list[Any]:
        self.sent += 1
        return list(await self.driver.fetch_all(*args))


@contextmanager
def counting_statements(database: Any) -> Iterator[CountingDriver]:
    """Count the statements a SQL store's ``database`` sends inside the block (set
    ``sent`` back to 0 to count afresh); its own driver is back in place afterwards."""
    counting = CountingDriver(database.driver)
    database.driver = counting
    try:
        yield counting
    finally:
        database.driver = counting.driver
