"""RedisStore against real Redis: the shared server, a private one, and a real cluster."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sesh.core import ConfigurationError, Session, SessionMiddleware
from sesh.core.store import Meta, Record, Store, UserIndexStore, encode_meta
from sesh.core.testing import (
    DATA,
    Client,
    FakeClock,
    SessionContract,
    StoreContract,
    UserIndexContract,
    responder,
)
from sesh.core.tokens import store_key
from sesh.stores.redis import META, RedisStore

from support import ANSWER_TIMEOUT
from support.redis_keys import let_index_age, remaining_ttl, remove_own_keys
from support.redis_servers import RedisClusterNodes, RedisServer

pytestmark = pytest.mark.anyio


class TestRedisStoreContract(StoreContract, UserIndexContract):
    @pytest.fixture
    def store(self, redis_store: RedisStore) -> RedisStore:
        return redis_store

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        return await remaining_ttl(store, key)

    async def let_pass(self, store: UserIndexStore, seconds: float) -> None:
        await let_index_age(store, seconds)


class TestRedisSessions(SessionContract):
    """Redis expires records by its own clock; the engine's clock runs ahead of it here,
    which the engine must (and does) enforce itself."""

    @pytest.fixture
    def session_store(self, redis_store: RedisStore) -> RedisStore:
        return redis_store


@pytest.fixture
async def cluster_store(
    redis_cluster: RedisClusterNodes, redis_prefix: str
) -> AsyncIterator[RedisStore]:
    client = RedisCluster(host="127.0.0.1", port=redis_cluster.first_port)
    store = RedisStore(client, prefix=redis_prefix, timeout=ANSWER_TIMEOUT)
    yield store
    await remove_own_keys(store)
    await client.aclose()


class TestClusterStoreContract(StoreContract, UserIndexContract):
    @pytest.fixture
    def store(self, cluster_store: RedisStore) -> RedisStore:
        return cluster_store

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        return await remaining_ttl(store, key)

    async def let_pass(self, store: UserIndexStore, seconds: float) -> None:
        await let_index_age(store, seconds)


class TestClusterSessions(SessionContract):
    @pytest.fixture
    def session_store(self, cluster_store: RedisStore) -> RedisStore:
        return cluster_store


async def test_sessions_spread_over_the_cluster_nodes(
    cluster_store: RedisStore, redis_cluster: RedisClusterNodes
) -> None:
    for index in range(30):
        await cluster_store.create(store_key(f"id-{index}"), Record(dict(DATA), b"\x90"), 60)
    per_node = [node.client().dbsize() for node in redis_cluster.nodes]
    assert sum(per_node) >= 30
    assert all(count > 0 for count in per_node), per_node


async def test_a_value_of_the_wrong_type_is_no_session(
    redis_store: RedisStore, redis_url: str, clock: FakeClock
) -> None:
    app = SessionMiddleware(responder(lambda s: s.update(a=1)), store=redis_store, clock=clock)
    client = Client(app)
    await client.request()
    [key] = await redis_store.client.keys(redis_store.prefix + "*")
    await redis_store.client.delete(key)
    await redis_store.client.set(key, b"a string, not a hash", px=60_000)
    client.app = SessionMiddleware(responder(lambda s: dict(s)), store=redis_store, clock=clock)
    response = await client.request()
    assert response.status == 200
    assert response.text == "{}"


@pytest.mark.parametrize(
    "fields",
    [
        {b"user": b"\xa3ada"},  # no metadata field: not one of ours
        {META: b"\xc1", b"user": b"\xa3ada"},  # corrupt metadata
        {META: b"META", b"user": b"\xa3ada"},
        {b"\xfe\xfd": b"\x01"},  # a field that is not UTF-8
        {META: b"ok", b"\xfe": b"\x01"},
    ],
    ids=["no meta", "corrupt meta", "text meta", "binary field", "binary field with meta"],
)
async def test_corrupt_data_under_a_session_key_is_no_session(
    redis_store: RedisStore, clock: FakeClock, fields: dict[bytes, bytes]
) -> None:
    client = Client(
        SessionMiddleware(responder(lambda s: s.update(a=1)), store=redis_store, clock=clock)
    )
    await client.request()
    [key] = await redis_store.client.keys(redis_store.prefix + "*")
    await redis_store.client.delete(key)
    await redis_store.client.hset(key, mapping=fields)  # type: ignore[arg-type]
    await redis_store.client.pexpire(key, 60_000)
    client.app = SessionMiddleware(responder(lambda s: dict(s)), store=redis_store, clock=clock)
    response = await client.request()
    assert response.status == 200
    assert response.text == "{}"


async def test_a_session_with_thousands_of_keys(redis_store: RedisStore) -> None:
    many = {f"k{i}": msgspec.msgpack.encode(i) for i in range(5000)}
    meta = encode_meta(Meta(1.0, 2.0, 1.0, False))
    assert await redis_store.create(store_key("big"), Record(many, meta), 60)
    gone = [f"k{i}" for i in range(0, 5000, 2)]
    changed = {f"n{i}": b"\x01" for i in range(3000)}
    assert await redis_store.update(store_key("big"), changed, gone, meta, 60)
    loaded = await redis_store.load(store_key("big"))
    assert loaded is not None
    assert len(loaded.data) == 2500 + 3000


def test_a_decoding_client_is_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="decode_responses=False"):
        RedisStore(Redis(decode_responses=True))
    with pytest.raises(ConfigurationError, match=r"redis:// URL or a redis\.asyncio"):
        RedisStore(redis.Redis())  # type: ignore[arg-type]  # the sync client
    with pytest.raises(ConfigurationError, match="timeout must be a positive"):
        RedisStore("redis://127.0.0.1", timeout=0)


async def test_a_lost_script_cache_is_reloaded(redis_store: RedisStore, redis_url: str) -> None:
    await redis_store.create("a" * 48, Record({}, b"\x90"), 60)
    redis.Redis.from_url(redis_url).script_flush()  # as after a server restart
    assert await redis_store.update("a" * 48, {"x": b"\x01"}, [], b"\x90", 60)
    assert await redis_store.create("b" * 48, Record({}, b"\x90"), 60)


def commands(observer: redis.Redis) -> dict[str, int]:
    """Calls per command so far, from INFO commandstats (server-wide: a private server)."""
    stats = observer.info("commandstats")
    return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}


def grew(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What was called in between, but for the observer's own INFO."""
    return {
        k: after[k] - before.get(k, 0)
        for k in after
        if after[k] != before.get(k, 0) and k != "info"
    }


async def test_round_trips_per_request(private_redis: RedisServer, clock: FakeClock) -> None:
    store = RedisStore(private_redis.url, prefix="rt:")

    def app(action: Any) -> SessionMiddleware:
        return SessionMiddleware(responder(action), store=store, clock=clock, secret_key="k" * 32)

    observer = private_redis.client()  # one connection: no handshake between readings
    client = Client(app(lambda s: s.update(a=1, b=2)))
    before = commands(observer)
    await client.request()  # the first create: EVALSHA, NOSCRIPT, SCRIPT LOAD, EVALSHA
    client.app = app(lambda s: s.update(b=3))
    await client.request()  # the first update: the same, for the other script
    assert grew(before, commands(observer))["script|load"] == 2  # once per script, ever

    # INFO commandstats also counts what a script runs inside Redis; round trips are only
    # the commands the client sends.
    sent_by_client = {"hgetall", "evalsha", "del", "script|load", "eval"}

    async def count(action: Any, cookie: bool = True) -> tuple[dict[str, int], dict[str, int]]:
        browser = client if cookie else Client(app(None))  # a stranger has no cookie
        browser.app = app(action)
        before = commands(observer)
        response = await browser.request()
        assert response.status == 200
        calls = grew(before, commands(observer))
        sent = {k: v for k, v in calls.items() if k in sent_by_client}
        return sent, {k: v for k, v in calls.items() if k not in sent_by_client}

    assert await count(None, cookie=False) == ({}, {})  # s1: no cookie, untouched
    assert await count(None) == ({"hgetall": 1}, {})  # a cookie, untouched: the load only
    create = {"exists": 1, "hset": 1, "pexpire": 1}
    assert await count(lambda s: s.update(new=1), cookie=False) == ({"evalsha": 1}, create)
    assert await count(lambda s: s["a"]) == ({"hgetall": 1}, {})  # s3: a read
    update = {"exists": 1, "hset": 1, "pexpire": 1}  # one HSET for every changed field
    assert await count(lambda s: s.update(a=3)) == ({"hgetall": 1, "evalsha": 1}, update)
    assert await count(lambda s: s.pop("b")) == (
        {"hgetall": 1, "evalsha": 1},
        {"exists": 1, "hdel": 1, "hset": 1, "pexpire": 1},  # the HSET writes the metadata
    )
    await store.aclose()


async def test_concurrent_requests_changing_different_keys_all_win(
    redis_store: RedisStore, clock: FakeClock
) -> None:
    client = Client(
        SessionMiddleware(responder(lambda s: s.update(base=0)), store=redis_store, clock=clock)
    )
    await client.request()
    cookie = [(b"cookie", f"session={client.jar['session']}".encode())]
    everyone_loaded = asyncio.Event()
    loaded = 0

    def writer(name: str) -> Any:
        async def action(session: Session) -> None:
            nonlocal loaded
            loaded += 1
            if loaded == 20:
                everyone_loaded.set()
            await everyone_loaded.wait()  # all twenty hold the same old state
            session[name] = True

        return action

    await asyncio.gather(
        *(
            Client(
                SessionMiddleware(responder(writer(f"k{i}")), store=redis_store, clock=clock)
            ).request(headers=cookie)
            for i in range(20)
        )
    )
    client.app = SessionMiddleware(responder(lambda s: sorted(s)), store=redis_store, clock=clock)
    assert (await client.request()).text == repr(sorted(["base", *(f"k{i}" for i in range(20))]))


ORDERS = ("logout first", "logout while slow", "slow first")


async def race(store: RedisStore, clock: FakeClock, order: str, yields: int) -> None:
    """A logged-in user; a slow request that writes to the session; a logout. ``order``
    says who goes first; ``yields`` varies where the slow one is when the logout lands."""

    def app(action: Any) -> SessionMiddleware:
        return SessionMiddleware(responder(action), store=store, clock=clock)

    client = Client(app(lambda s: s.update(user="ada")))
    await client.request()
    cookie = [(b"cookie", f"session={client.jar['session']}".encode())]
    slow_loaded, logout_done = asyncio.Event(), asyncio.Event()

    async def slow(session: Session) -> None:
        slow_loaded.set()
        if order == "logout while slow":
            await logout_done.wait()
        for _ in range(yields):
            await asyncio.sleep(0)  # a yield to the loop, not a wait for time
        session["cart"] = ["late"]

    async def logout(session: Session) -> None:
        if order == "logout while slow":
            await slow_loaded.wait()
        session.invalidate()

    async def run_logout() -> None:
        await Client(app(logout)).request(headers=cookie)
        logout_done.set()

    if order == "logout first":
        await run_logout()
        await Client(app(slow)).request(headers=cookie)
    elif order == "slow first":
        await Client(app(slow)).request(headers=cookie)
        await run_logout()
    else:
        await asyncio.gather(Client(app(slow)).request(headers=cookie), run_logout())
    client.app = app(lambda s: dict(s))
    assert (await client.request()).text == "{}", order
    # The logged-out record never comes back (a request that arrived after the logout may
    # start a new session, under a new id: that is not the old one returning).
    assert await store.load(store_key(client.jar["session"])) is None, order


async def test_a_logout_racing_a_slow_request_never_comes_back(
    redis_store: RedisStore, clock: FakeClock
) -> None:
    rng = random.Random(7)
    for _ in range(300):
        await race(redis_store, clock, rng.choice(ORDERS), rng.randrange(3))


async def test_cancelled_calls_never_hand_one_users_data_to_another(
    redis_store: RedisStore,
) -> None:
    meta = encode_meta(Meta(1.0, 2.0, 1.0, False))
    users = [store_key(f"user-{n}") for n in range(100)]
    for number, key in enumerate(users):
        await redis_store.create(key, Record({"user": msgspec.msgpack.encode(number)}, meta), 600)
    rng = random.Random(11)
    wrong = cancelled = 0

    async def read(number: int) -> None:
        nonlocal wrong
        record = await redis_store.load(users[number])
        assert record is not None
        if msgspec.msgpack.decode(record.data["user"]) != number:
            wrong += 1

    for _ in range(100):
        batch = [asyncio.ensure_future(read(rng.randrange(100))) for _ in range(100)]
        for _ in range(rng.randrange(1, 4)):
            await asyncio.sleep(0)
        for task in rng.sample(batch, 30):
            cancelled += task.cancel()
        await asyncio.gather(*batch, return_exceptions=True)
    assert cancelled > 100  # the cancellations really hit calls in flight
    assert wrong == 0
    for number in range(100):  # and the pool still serves everyone correctly
        await read(number)
    assert wrong == 0
