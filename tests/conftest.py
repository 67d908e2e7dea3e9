from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator, Callable, Iterator
from itertools import count
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy.ext.asyncio import AsyncEngine

from sesh.core import SessionMiddleware
from sesh.core.testing import Action, Client, FakeClock, responder
from sesh.stores.memory import MemoryStore
from sesh.stores.redis import RedisStore
from sesh.stores.sql import SQLStore

from support import ANSWER_TIMEOUT
from support.databases import Databases
from support.redis_servers import RedisClusterNodes, RedisServer, binaries_present
from support.spy import SpyStore

SECRET = "a-test-secret-that-is-long-enough-0123456789"

# The privacy guard: no log record of the whole run may carry an id, cookie or secret.
pytest_plugins = ["support.privacy"]


def pytest_configure(config: pytest.Config) -> None:
    from support import privacy

    privacy.install()
    config.addinivalue_line(
        "markers", "slow: starts processes (servers, a browser, Redis of its own, pip)"
    )


# What `make quick` leaves out: modules that start servers, a browser or pip, and any test
# that starts a Redis of its own. The rest checks a change to the core in seconds.
_SLOW_MODULES = {
    "test_browser.py",
    "test_demo.py",
    "test_packaging.py",
    "test_two_servers.py",
    "test_workers.py",
    "test_django_example.py",
    "test_websocket_servers.py",
    "test_services.py",
    "test_faults.py",
    "test_redis_outage.py",
    "test_identity_races.py",
    "test_celery.py",
}
_SLOW_FIXTURES = {"private_redis", "redis_cluster", "busy_server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        # The SQL stores run on every database in `make test`; the inner loop keeps SQLite.
        server = getattr(getattr(item, "callspec", None), "params", {}).get("sql_server")
        if (
            item.path.name in _SLOW_MODULES
            or fixtures & _SLOW_FIXTURES
            or server in ("postgresql", "mariadb")
        ):
            item.add_marker(pytest.mark.slow)


def need_service(available: bool, what: str) -> None:
    """Skip a test whose service is missing, except under CI, where that is a failure."""
    if available:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} is not available")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def spy(store: MemoryStore) -> SpyStore:
    return SpyStore(store)


MakeClient = Callable[..., Client]


@pytest.fixture
def make_client(spy: SpyStore, clock: FakeClock) -> MakeClient:
    """A client for an app that runs ``action(session)``, behind sesh on the spied store."""

    def make(
        action: Action | None = None, *, status: int = 200, scheme: str = "http", **options: Any
    ) -> Client:
        options.setdefault("clock", clock)
        app = SessionMiddleware(responder(action, status=status), store=spy, **options)
        return Client(app, scheme=scheme)

    return make


# -- Redis --------------------------------------------------------------------------------
# The Redis on 127.0.0.1:6379 is shared: every run writes under its own prefix, and removes
# only its own keys. Tests that kill or cluster servers start private ones.

RUN_PREFIX = f"sesh-test:{os.getpid()}-{secrets.token_hex(4)}:"
_tests = count()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("SESH_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
        available = True
    except redis.exceptions.RedisError:
        available = False
    need_service(available, f"Redis at {url}")
    yield url
    for key in client.scan_iter(match=RUN_PREFIX + "*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A prefix of this test's own; afterwards every key under it must have a TTL and be
    named by a hash, never by a raw session id or user id."""
    prefix = f"{RUN_PREFIX}{next(_tests)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url, socket_timeout=5)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    for key in keys:
        name = key.decode()
        assert re.fullmatch(re.escape(prefix) + "([0-9a-f]{48}|user:[0-9a-f]{32})", name), name
        assert client.pttl(key) > 0, f"{name} has no TTL"
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def redis_store(redis_url: str, redis_prefix: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_url, prefix=redis_prefix, timeout=ANSWER_TIMEOUT)
    yield store
    await store.aclose()


@pytest.fixture(params=["memory", "redis"])
def any_store(request: pytest.FixtureRequest, clock: FakeClock) -> Iterator[Any]:
    """A server-side store: the memory store, then real Redis (a prefix of the test's own)."""
    if request.param == "memory":
        yield MemoryStore(clock=clock)
    else:
        yield request.getfixturevalue("redis_store")


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    need_service(binaries_present(), "redis-server and redis-cli")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterNodes]:
    need_service(binaries_present(), "redis-server and redis-cli")
    cluster = RedisClusterNodes(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


# -- SQL ----------------------------------------------------------------------------------
# PostgreSQL and MariaDB are shared too: this run's schema and database, dropped at the end.

SQL_SERVERS = ["postgresql", "mariadb", "sqlite"]


@pytest.fixture(scope="session")
def databases() -> Iterator[Databases]:
    spaces = Databases()
    yield spaces
    spaces.drop()


@pytest.fixture
def sql_server(request: pytest.FixtureRequest, databases: Databases) -> str:
    """Which database a test runs on (parametrize ``sql_server`` with SQL_SERVERS)."""
    server: str = request.param
    if server != "sqlite":
        need_service(databases.reachable(server), server)
        databases.make(server)
    return server


@pytest.fixture
async def sql_engine(
    sql_server: str, databases: Databases, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    engine = databases.engine(sql_server, tmp_path)
    yield engine
    await engine.dispose()


@pytest.fixture
async def sql_store(sql_engine: AsyncEngine, clock: FakeClock) -> AsyncIterator[SQLStore]:
    """A SQLStore on a table of this test's own, on the fake clock."""
    store = SQLStore(
        sql_engine, table=f"sessions_{next(_tests)}", clock=clock, timeout=ANSWER_TIMEOUT
    )
    await store.create_table()
    yield store
    await store.aclose()
    async with sql_engine.begin() as conn:
        await conn.run_sync(store.table.drop)
        await conn.run_sync(store.users.table.drop)
