from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable

import msgspec
import pytest

from sesh.core import open_session
from sesh.core.store import Record, Store, UserIndexStore
from sesh.core.testing import (
    DATA,
    META,
    FakeClock,
    SessionContract,
    StoreContract,
    UserIndexContract,
    make_session,
    read_session,
)
from sesh.stores.memory import MemoryStore, _expiry

pytestmark = pytest.mark.anyio


class TestMemoryStoreContract(StoreContract, UserIndexContract):
    @pytest.fixture
    def store(self, clock: FakeClock) -> MemoryStore:
        return MemoryStore(clock=clock)

    async def let_pass(self, store: UserIndexStore, seconds: float) -> None:
        assert isinstance(store, MemoryStore)
        store._clock.advance(seconds)  # type: ignore[attr-defined]

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        assert isinstance(store, MemoryStore)
        blob = store._records.get(key)
        if blob is None:
            return None
        expires: float = msgspec.msgpack.decode(blob)[0]  # decoded whole, not as the sweep reads it
        return expires - store._clock()


@pytest.mark.parametrize("expires", [0.0, 1.5, 1e9 + 0.25, 4e12, 2.0**-1074])
def test_the_sweep_reads_the_expiry_where_messagepack_puts_it(expires: float) -> None:
    store = MemoryStore()
    store._put("k", META, {"a": b"\x01"}, expires)
    blob = store._records["k"]
    assert _expiry(blob) == msgspec.msgpack.decode(blob)[0] == expires


async def test_records_expire_with_the_clock(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.create("k", Record(dict(DATA), META), 10)
    clock.advance(9.9)
    assert await store.load("k") is not None
    clock.advance(0.1)
    assert await store.load("k") is None
    assert not await store.update("k", {"a": b"\x01"}, [], META, 10)
    assert not await store.touch("k", META, 10)
    assert not await store.delete("k")
    assert await store.create("k", Record({}, META), 10)


async def test_touch_and_update_extend_the_life(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    await store.create("k", Record(dict(DATA), META), 10)
    clock.advance(8)
    await store.touch("k", META, 10)
    clock.advance(8)
    assert await store.load("k") is not None


async def test_max_entries_evicts_the_session_closest_to_expiry(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=3, clock=clock)
    await store.create("long", Record({}, META), 10_000)
    assert await store.load("long")  # each came back: all are established
    for index in range(4):
        clock.advance(1)
        await store.create(f"k{index}", Record({}, META), 60)
        assert await store.load(f"k{index}")
    assert len(store) == 3
    kept = [key for key in ("long", "k0", "k1", "k2", "k3") if await store.load(key)]
    assert kept == ["long", "k2", "k3"]


async def test_a_flood_of_one_request_sessions_never_evicts_users_who_came_back(
    clock: FakeClock,
) -> None:
    store = MemoryStore(max_entries=100, clock=clock)
    users = [f"user{index}" for index in range(60)]
    for user in users:
        await store.create(user, Record({}, META), 3600)
        assert await store.load(user)  # the browser came back with its cookie
    clock.advance(60)  # the flood's sessions expire later than the users' (volatile-ttl's pick)
    for index in range(10_000):
        await store.create(f"anonymous{index}", Record({}, META), 3600)
    assert len(store) == 100
    assert all([await store.load(user) for user in users])
    assert len(store._unreturned) == 40  # bounded by the store, whatever the flood


async def test_the_newest_one_request_sessions_survive_a_flood(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=10, clock=clock)
    for index in range(50):
        await store.create(f"anonymous{index}", Record({}, META), 3600)
    kept = [index for index in range(50) if store._records.get(f"anonymous{index}")]
    assert kept == list(range(40, 50))  # oldest first: a visitor seen once long ago goes


async def test_one_request_sessions_that_expire_leave_no_trace(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    for index in range(1000):
        await store.create(f"k{index}", Record({}, META), 10)
        clock.advance(1)
    assert len(store._unreturned) < 20  # swept with their records, never piling up


async def test_max_entries_prefers_evicting_expired_records(clock: FakeClock) -> None:
    store = MemoryStore(max_entries=2, clock=clock)
    await store.create("short", Record({}, META), 5)
    await store.create("long", Record({}, META), 10_000)
    clock.advance(10)
    await store.create("new", Record({}, META), 60)
    assert [key for key in ("short", "long", "new") if await store.load(key)] == ["long", "new"]


async def test_expired_records_are_reclaimed_incrementally(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    for index in range(100):
        await store.create(f"old{index}", Record({}, META), 10)
    clock.advance(11)
    await store.create("new0", Record({}, META), 1000)
    assert len(store) >= 99  # one write does a bounded amount of work, never a full scan
    for index in range(1, 60):
        await store.create(f"new{index}", Record({}, META), 1000)
    assert len(store) == 60  # ...yet all the expired records are gone after enough writes
    assert len(store._order) == 60


async def test_deleted_keys_do_not_pile_up_in_the_sweep_order(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    for index in range(1000):
        await store.create(f"k{index}", Record({}, META), 60)
        await store.delete(f"k{index}")
    assert len(store) == 0
    assert len(store._order) <= 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "10"])
def test_max_entries_must_be_a_positive_int(bad: object) -> None:
    with pytest.raises(ValueError, match="max_entries must be a positive int"):
        MemoryStore(max_entries=bad)  # type: ignore[arg-type]


class TestMemorySessions(SessionContract):
    @pytest.fixture
    def session_store(self, clock: FakeClock) -> MemoryStore:
        return MemoryStore(clock=clock)


# -- one store, several threads and event loops ------------------------------------------------


def in_threads(*jobs: Callable[[], Awaitable[None]]) -> None:
    """Run each job in its own thread and event loop, switching threads as often as CPython
    allows, so that an operation not atomic across threads is caught in the act."""
    errors: list[BaseException] = []

    def run(job: Callable[[], Awaitable[None]]) -> None:
        try:
            asyncio.run(job())  # type: ignore[arg-type]
        except BaseException as error:
            errors.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert errors == []


async def test_workers_in_threads_lose_no_update(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    _, value = await make_session(store, {"start": 0})

    def worker(name: str) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            for _ in range(300):
                async with open_session(store, value) as session:
                    session[name] = session.get(name, 0) + 1

        return job

    in_threads(*(worker(f"w{index}") for index in range(4)))
    assert await read_session(store, value) == {
        "start": 0,
        "w0": 300,
        "w1": 300,
        "w2": 300,
        "w3": 300,
    }
