"""Fixation, rotation and logout; floods; concurrency. Against memory and real Redis."""

from __future__ import annotations

import asyncio
import secrets
import tracemalloc
from typing import Any

import pytest

from sesh.core import Session, SessionMiddleware
from sesh.core.store import Store
from sesh.core.testing import Client, FakeClock, cookie_attributes, responder
from sesh.core.tokens import store_key
from sesh.stores.memory import MemoryStore
from sesh.stores.redis import RedisStore

pytestmark = pytest.mark.anyio


async def size(store: Store) -> int:
    if isinstance(store, RedisStore):
        return len(await store.client.keys(store.prefix + "*"))
    assert isinstance(store, MemoryStore)
    return len(store)


def app(store: Store, clock: FakeClock, action: Any, **options: Any) -> SessionMiddleware:
    return SessionMiddleware(responder(action), store=store, clock=clock, **options)


def login(session: Session) -> None:
    session.regenerate()
    session["user"] = "victim"


async def test_login_after_a_planted_cookie_ends_with_a_server_chosen_id(
    any_store: Store, clock: FakeClock
) -> None:
    planted = secrets.token_urlsafe(32)  # well formed: without secrets it gets looked up
    victim = Client(app(any_store, clock, lambda s: s.update(cart=["book"])))
    await victim.request(headers=[(b"cookie", f"session={planted}".encode())])
    victim.app = app(any_store, clock, login)
    await victim.request()
    assert victim.jar["session"] != planted
    assert await any_store.load(store_key(planted)) is None  # nothing under what was planted
    attacker = Client(app(any_store, clock, dict))
    response = await attacker.request(headers=[(b"cookie", f"session={planted}".encode())])
    assert response.text == "{}"


async def test_the_pre_login_id_is_dead_after_regenerate(
    any_store: Store, clock: FakeClock
) -> None:
    browser = Client(app(any_store, clock, lambda s: s.update(cart=["book"])))
    await browser.request()
    before = browser.jar["session"]
    browser.app = app(any_store, clock, login)
    await browser.request()
    browser.app = app(any_store, clock, dict)
    assert (await browser.request()).text == "{'cart': ['book'], 'user': 'victim'}"
    replay = await browser.request(headers=[(b"cookie", f"session={before}".encode())])
    assert replay.text == "{}"
    assert await size(any_store) == 1  # no orphan under the old id


async def test_logout_kills_the_cookie_with_the_attributes_that_made_it(
    any_store: Store, clock: FakeClock
) -> None:
    options = {"path": "/app", "domain": "example.com", "samesite": "strict", "secure": True}
    browser = Client(app(any_store, clock, login, **options), scheme="https")
    created = (await browser.request()).set_cookies[0]
    old = browser.jar["session"]
    browser.app = app(any_store, clock, lambda s: s.invalidate(), **options)
    deleted = (await browser.request()).set_cookies[0]
    made, gone = cookie_attributes(created), cookie_attributes(deleted)
    assert gone.pop("max-age") == "0"
    assert gone.pop("expires") == "Thu, 01 Jan 1970 00:00:00 GMT"
    made.pop("max-age"), made.pop(""), gone.pop("")
    assert gone == made
    browser.app = app(any_store, clock, dict, **options)
    replay = await browser.request(headers=[(b"cookie", f"session={old}".encode())])
    assert replay.text == "{}"
    assert await size(any_store) == 0


async def test_concurrent_regenerates_leave_one_live_id_and_no_orphans(
    any_store: Store, clock: FakeClock
) -> None:
    browser = Client(app(any_store, clock, lambda s: s.update(user="ada")))
    await browser.request()
    loaded = 0
    all_loaded = asyncio.Event()

    async def regenerate(session: Session) -> None:
        nonlocal loaded
        session["user"]
        loaded += 1
        if loaded == 8:
            all_loaded.set()
        await all_loaded.wait()  # all eight hold the old id before any commits
        session.regenerate()

    cookie = [(b"cookie", f"session={browser.jar['session']}".encode())]
    responses = await asyncio.gather(
        *(Client(app(any_store, clock, regenerate)).request(headers=cookie) for _ in range(8))
    )
    winners = [r for r in responses if r.set_cookies]
    assert len(winners) == 1
    assert await size(any_store) == 1
    [new_cookie] = winners[0].set_cookies
    browser.jar["session"] = cookie_attributes(new_cookie)[""].split("=", 1)[1]
    browser.app = app(any_store, clock, dict)
    assert (await browser.request()).text == "{'user': 'ada'}"


async def test_an_anonymous_flood_leaves_the_store_and_memory_flat(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    flood = Client(app(store, clock, lambda s: "page"))
    for _ in range(2_000):  # warm: allocator caches, interned strings
        await flood.request()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for _ in range(10_000):
        await flood.request()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(store) == 0
    assert after - before < 64 * 1024  # flat: no per-request residue (10,000 requests)


async def test_a_flood_of_random_well_formed_ids_leaves_the_store_flat(
    any_store: Store, clock: FakeClock
) -> None:
    existing = Client(app(any_store, clock, lambda s: s.update(user="ada")))
    await existing.request()
    flood = Client(app(any_store, clock, lambda s: str(s.get("user"))))
    for _ in range(1_000):
        forged = secrets.token_urlsafe(32)
        response = await flood.request(headers=[(b"cookie", f"session={forged}".encode())])
        assert response.text == "'None'"
        assert response.set_cookies == []
    assert await size(any_store) == 1


async def test_many_concurrent_requests_changing_different_keys_lose_nothing(
    any_store: Store, clock: FakeClock
) -> None:
    browser = Client(app(any_store, clock, lambda s: s.update(base=True)))
    await browser.request()
    cookie = [(b"cookie", f"session={browser.jar['session']}".encode())]

    def setter(index: int) -> Any:
        async def set_one(session: Session) -> None:
            await asyncio.sleep(0)  # let the others load too
            session[f"k{index}"] = index

        return set_one

    await asyncio.gather(
        *(Client(app(any_store, clock, setter(i))).request(headers=cookie) for i in range(50))
    )
    browser.app = app(any_store, clock, lambda s: len(s))
    assert (await browser.request()).text == "51"


async def test_a_counter_bumped_concurrently_keeps_the_last_write(
    any_store: Store, clock: FakeClock
) -> None:
    """The documented behaviour: each request writes the value it computed, so concurrent
    read-modify-write requests of one user can lose increments (last write wins, per key)."""
    browser = Client(app(any_store, clock, lambda s: s.update(n=0)))
    await browser.request()
    cookie = [(b"cookie", f"session={browser.jar['session']}".encode())]
    started = 0
    all_read = asyncio.Event()

    async def bump(session: Session) -> None:
        nonlocal started
        value = session["n"]
        started += 1
        if started == 10:
            all_read.set()
        await all_read.wait()
        session["n"] = value + 1

    await asyncio.gather(
        *(Client(app(any_store, clock, bump)).request(headers=cookie) for _ in range(10))
    )
    browser.app = app(any_store, clock, lambda s: s["n"])
    assert (await browser.request()).text == "1"  # ten increments, one survives: documented
