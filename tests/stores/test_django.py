"""DjangoStore against the real Django, on real SQLite, PostgreSQL and MariaDB: Django's
rows read by sesh and sesh's read by Django, logins both ways, rotation, expiry, and the
store and session contracts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from sesh.core.store import Store
from sesh.core.testing import FakeClock, SessionContract, StoreContract
from sesh.stores.django import DjangoStore

from conftest import SQL_SERVERS, need_service
from support import django_project
from support.databases import Databases

pytestmark = pytest.mark.anyio
on_every_server = pytest.mark.parametrize("sql_server", SQL_SERVERS, indirect=True)


@pytest.fixture(scope="session")
def django_settings(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Django, configured once for the run: one database alias per server."""
    folder = tmp_path_factory.mktemp("django")
    django_project.configure(
        {name: databases.django_settings(name, folder) for name in SQL_SERVERS},
        [django_project.OLD_SECRET_KEY],
    )
    yield folder
    django_project.close()


@pytest.fixture
async def django_engine(
    sql_server: str, databases: Databases, django_settings: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on the database Django uses now, its tables made and emptied after."""
    await django_project.use(sql_server)
    engine = databases.engine(sql_server, django_settings)
    yield engine
    await engine.dispose()
    await django_project.call(_empty_tables)


def _empty_tables() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()
    get_user_model().objects.all().delete()


@pytest.fixture
def sesh_clock() -> FakeClock:
    return FakeClock()


def django_store(engine: AsyncEngine, **options: Any) -> DjangoStore:
    options.setdefault("secret_key", django_project.SECRET_KEY)
    options.setdefault("secret_key_fallbacks", [django_project.OLD_SECRET_KEY])
    return DjangoStore(engine, **options)


async def remaining_ttl(store: Store, key: str) -> float | None:
    assert isinstance(store, DjangoStore)
    async with store.database.engine.connect() as conn:
        row = (
            await conn.exec_driver_sql(
                store.database.statement("SELECT expire_date FROM django_session WHERE session_key = %s"),
                (key,),
            )
        ).first()
    if row is None:
        return None
    return store._times.from_db(row[0]) - store._clock()


@on_every_server
class TestDjangoStoreContract(StoreContract):
    @pytest.fixture
    def store(self, django_engine: AsyncEngine, clock: FakeClock) -> DjangoStore:
        return django_store(django_engine, clock=clock)

    @pytest.fixture
    def key(self) -> str:
        return "a3f1" * 8  # Django's keys: 32 characters, and its column holds 40

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        return await remaining_ttl(store, key)


@on_every_server
class TestDjangoSessions(SessionContract):
    @pytest.fixture
    def session_store(self, django_engine: AsyncEngine, clock: FakeClock) -> DjangoStore:
        return django_store(django_engine, clock=clock)
