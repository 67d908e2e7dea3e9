"""Redis as it is deployed: a pool under load, servers that are up but refuse to serve,
replicas a logout must reach. Each against real redis-server processes."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis
from redis import exceptions as redis_errors

from sesh.core import ConfigurationError, SessionMiddleware, StoreUnavailable
from sesh.core.testing import Client, responder
from sesh.stores.redis import RedisStore, refusal

from conftest import need_service
from support.redis_servers import RedisServer, binaries_present, caught_up

pytestmark = pytest.mark.anyio
DEADLINE = 0.3
HANG_GUARD = 10.0  # not a speed check: only "it did not hang"


def counter(session: Any) -> int:
    session["n"] = session.get("n", 0) + 1
    return int(session["n"])


def show(session: Any) -> str:
    return f"unavailable={session.unavailable} n={session.get('n')}"


def logout(session: Any) -> None:
    session.invalidate()


async def request(client: Client, action: Any, store: RedisStore, **options: Any) -> Any:
    client.app = SessionMiddleware(responder(action), store=store, **options)
    with anyio.fail_after(HANG_GUARD):
        return await client.request()


# -- the pool: waits for a connection, within the deadline -----------------------------------


async def test_more_concurrent_requests_than_connections_all_succeed(
    redis_url: str, redis_prefix: str
) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix, max_connections=4, timeout=5)
    app = SessionMiddleware(responder(counter), store=store)
    first = Client(app)
    await first.request()
    browsers = [Client(app) for _ in range(200)]
    for browser in browsers:
        browser.jar = dict(first.jar)
    with anyio.fail_after(HANG_GUARD * 3):
        answers = await asyncio.gather(*(browser.request() for browser in browsers))
    assert {answer.status for answer in answers} == {200}
    await store.aclose()


async def test_the_default_pool_serves_200_concurrent_requests(
    redis_url: str, redis_prefix: str
) -> None:
    """redis-py's own pool (100 connections) raised at the 101st: 100 of 200 answered 503."""
    store = RedisStore(redis_url, prefix=redis_prefix, timeout=5)
    app = SessionMiddleware(responder(counter), store=store)
    with anyio.fail_after(HANG_GUARD * 3):
        answers = await asyncio.gather(*(Client(app).request() for _ in range(200)))
    assert [answer.status for answer in answers] == [200] * 200
    await store.aclose()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_connections": 0}, "at least 1"),
        ({"max_connections": "10"}, "whole number"),
        ({"wait_replicas": -1}, "whole number"),
    ],
)
def test_bad_pool_options_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RedisStore("redis://127.0.0.1:6379/0", **options)


def test_max_connections_for_a_client_built_elsewhere_is_refused_not_ignored() -> None:
    from redis.asyncio import Redis

    with pytest.raises(ConfigurationError, match="size that one"):
        RedisStore(Redis(), max_connections=10)


# -- a server that is up but refuses: an outage, never a 500, never "no session" ---------------


@pytest.fixture
def refusing(private_redis: RedisServer) -> Iterator[redis.Redis]:
    """The private server's admin connection; whatever the test made it refuse is undone."""
    admin = private_redis.client()
    yield admin
    admin.config_set("maxmemory", 0)
    admin.config_set("min-replicas-to-write", 0)
    admin.close()


async def stored_session(store: RedisStore) -> Client:
    browser = Client(None)
    assert (await request(browser, counter, store)).text == "1"
    return browser


async def test_out_of_memory_is_an_outage(
    private_redis: RedisServer, refusing: redis.Redis
) -> None:
    store = RedisStore(private_redis.url, timeout=DEADLINE)
    browser = await stored_session(store)
    refusing.config_set("maxmemory", 1)  # every write now: "OOM command not allowed"
    assert (await request(browser, counter, store)).status == 503
    assert (await request(Client(None), counter, store)).status == 503  # a new session too
    degraded = await request(browser, show, store, on_store_error="continue")
    assert degraded.text == "'unavailable=False n=1'"  # reads still work: the session is there
    refusing.config_set("maxmemory", 0)
    assert (await request(browser, counter, store)).text == "2"
    await store.aclose()


async def test_too_few_replicas_is_an_outage(
    private_redis: RedisServer, refusing: redis.Redis
) -> None:
    store = RedisStore(private_redis.url, timeout=DEADLINE)
    browser = await stored_session(store)
    refusing.config_set("min-replicas-to-write", 1)  # none here: "NOREPLICAS"
    assert (await request(browser, counter, store)).status == 503
    assert (await request(browser, logout, store)).status == 503  # DEL is refused too
    refusing.config_set("min-replicas-to-write", 0)
    assert (await request(browser, counter, store)).text == "2"  # the logout did not happen
    await store.aclose()


@pytest.fixture
def busy_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server that answers BUSY 10 ms into a script that never ends, until killed."""
    need_service(binaries_present(), "redis-server and redis-cli")
    server = RedisServer(tmp_path, "--busy-reply-threshold", "10", durable=False)
    server.start()
    yield server
    server.stop()


async def test_a_busy_server_is_an_outage_not_a_logged_out_user(
    busy_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(busy_server.url, timeout=DEADLINE)
    browser = await stored_session(store)
    killed: list[str] = []

    def spin() -> None:
        try:
            busy_server.client().eval("while true do end", 0)
        except redis_errors.ResponseError as error:  # SCRIPT KILL ends it
            killed.append(str(error))

    spinning = threading.Thread(target=spin, daemon=True)
    spinning.start()
    probe = busy_server.client()
    reply = ""
    for _ in range(100_000):  # each try is a round trip: until the server says BUSY
        try:
            probe.ping()
        except redis_errors.ResponseError as error:
            reply = str(error)
            break
    assert reply.startswith("BUSY")
    caplog.set_level(logging.WARNING)
    down = await request(browser, show, store)
    assert down.status == 503
    assert down.set_cookies == []  # the cookie is kept: the user is not logged out
    degraded = await request(browser, show, store, on_store_error="continue")
    assert degraded.text == "'unavailable=True n=None'"
    assert any("refused with BUSY" in r.getMessage() for r in caplog.records)
    probe.script_kill()
    spinning.join(timeout=HANG_GUARD)
    assert killed
    assert (await request(browser, counter, store)).text == "2"
    await store.aclose()


async def test_a_replica_refuses_writes_and_a_cut_off_one_reads_as_an_outage(
    private_redis: RedisServer, refusing: redis.Redis
) -> None:
    store = RedisStore(private_redis.url, timeout=DEADLINE)
    browser = await stored_session(store)
    gone = RedisServer(private_redis.directory, durable=False)  # a port nobody listens on
    refusing.replicaof("127.0.0.1", gone.port)  # now a replica: READONLY
    try:
        assert (await request(browser, counter, store)).status == 503
        refusing.config_set("replica-serve-stale-data", "no")  # reads: MASTERDOWN
        assert (await request(browser, show, store)).status == 503
    finally:
        refusing.replicaof("no", "one")
        refusing.config_set("replica-serve-stale-data", "yes")
    assert (await request(browser, counter, store)).text == "2"
    await store.aclose()


@pytest.mark.parametrize(
    ("reply", "code"),
    [
        ("OOM command not allowed when used memory > 'maxmemory'.", "OOM"),
        ("NOREPLICAS Not enough good replicas to write.", "NOREPLICAS"),
        ("BUSY Redis is busy running a script.", "BUSY"),
        ("LOADING Redis is loading the dataset in memory", "LOADING"),
        ("MASTERDOWN Link with MASTER is down", "MASTERDOWN"),
        ("READONLY You can't write against a read only replica.", "READONLY"),
        ("TRYAGAIN Multiple keys request during rehashing of slot", "TRYAGAIN"),
        ("CLUSTERDOWN The cluster is down", "CLUSTERDOWN"),
        # Redis 6 wraps a refusal met inside a script:
        ("ERR Error running script (call to f_0): @user_script:3: -OOM command not allowed", "OOM"),
        # redis-py names a pipeline's failed command (never logged: it holds the key):
        ("Command # 1 (DEL k) of pipeline caused error: NOREPLICAS Not enough", "NOREPLICAS"),
        ("Command # 1 (DEL k) of pipeline caused error: ('NOREPLICAS Not',)", "NOREPLICAS"),
        ("WRONGTYPE Operation against a key holding the wrong kind of value", None),
        ("ERR unknown command 'HGETALL'", None),
    ],
)
def test_refusals_are_told_apart_from_errors(reply: str, code: str | None) -> None:
    assert refusal(redis_errors.ResponseError(reply)) == code


# -- diagnosis: where and why, never what -------------------------------------------------------


async def test_the_outage_log_names_the_store_its_endpoint_and_the_cause(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    store = RedisStore(private_redis.url, timeout=DEADLINE)
    browser = await stored_session(store)
    private_redis.kill()
    caplog.set_level(logging.WARNING)
    assert (await request(browser, show, store)).status == 503
    [record] = [r for r in caplog.records if "unreachable" in r.getMessage()]
    message = record.getMessage()
    assert "RedisStore" in message
    assert f"127.0.0.1:{private_redis.port}" in message
    assert "ConnectionError" in message
    await store.aclose()


async def test_ping_checks_the_store_at_start_up(private_redis: RedisServer) -> None:
    store = RedisStore(private_redis.url, timeout=DEADLINE)
    await store.ping()
    private_redis.kill()
    with pytest.raises(StoreUnavailable, match=f"127.0.0.1:{private_redis.port}"):
        await store.ping()
    await store.aclose()


# -- WAIT: a logout acknowledged only once a replica has it ------------------------------------


@pytest.fixture
def replicated(private_redis: RedisServer) -> Iterator[RedisServer]:
    """A replica of the private server, its link up."""
    replica = RedisServer(
        private_redis.directory.parent, "--replicaof", "127.0.0.1", str(private_redis.port),
        durable=False,
    )  # fmt: skip
    replica.start()
    caught_up(private_redis)
    yield replica
    replica.stop()


async def test_a_logout_waits_for_a_replica(
    private_redis: RedisServer, replicated: RedisServer
) -> None:
    # A deadline with room: a replica acknowledges at once, but not on a loaded machine.
    store = RedisStore(private_redis.url, timeout=2.0, wait_replicas=1)
    browser = await stored_session(store)
    other = await stored_session(store)
    assert (await request(browser, logout, store)).status == 200
    replica_keys = replicated.client().keys("sesh:*")
    assert len(replica_keys) == 1  # the replica already has the logout: only `other` is left

    replicated.pause()  # the replica stops acknowledging
    try:
        assert (await request(other, logout, store)).status == 503  # not acknowledged
    finally:
        replicated.resume()
    assert (await request(other, logout, store)).status == 200


def test_wait_replicas_on_a_cluster_is_refused_with_the_fix() -> None:
    from redis.asyncio.cluster import RedisCluster

    client = RedisCluster(host="127.0.0.1", port=7000)  # not connected until used
    with pytest.raises(ConfigurationError, match="min-replicas-to-write"):
        RedisStore(client, wait_replicas=1)
