"""Store faults through a fault-injecting proxy in front of a real Redis: the deadline and
the outage policy hold, and no user ever receives another user's data."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from sesh.core import Session, SessionMiddleware
from sesh.core.testing import Client, FakeClock, responder
from sesh.stores.redis import RedisStore

from support.proxy import FaultProxy
from support.redis_servers import RedisServer

pytestmark = pytest.mark.anyio
DEADLINE = 0.25
HANG_GUARD = DEADLINE * 20  # only "it did not hang", never a speed check
SECRET = "a-fault-injection-test-secret-0123456789"


@pytest.fixture
async def proxy(private_redis: RedisServer) -> AsyncIterator[FaultProxy]:
    faults = FaultProxy(private_redis.port)
    await faults.start()
    yield faults
    await faults.close()


@pytest.fixture
async def store(proxy: FaultProxy) -> AsyncIterator[RedisStore]:
    through = RedisStore(f"redis://127.0.0.1:{proxy.port}/0", timeout=DEADLINE)
    yield through
    await through.aclose()


def app(store: RedisStore, clock: FakeClock, action: Any, **options: Any) -> SessionMiddleware:
    return SessionMiddleware(
        responder(action), store=store, clock=clock, secret_key=SECRET, **options
    )


async def user(store: RedisStore, clock: FakeClock, name: str) -> Client:
    browser = Client(app(store, clock, lambda s: s.update(user=name)))
    await browser.request()
    browser.app = app(store, clock, lambda s: s.get("user"))
    return browser


async def visit(browser: Client) -> Any:
    with anyio.fail_after(HANG_GUARD):
        return await browser.request()


async def test_latency_under_the_deadline_is_served(
    store: RedisStore, proxy: FaultProxy, clock: FakeClock
) -> None:
    browser = await user(store, clock, "ada")
    proxy.latency = DEADLINE / 10
    for _ in range(20):
        assert (await visit(browser)).text == "'ada'"


@pytest.mark.parametrize("fault", ["latency", "stall", "drop"])
async def test_a_fault_past_the_deadline_gets_the_outage_answer(
    store: RedisStore, proxy: FaultProxy, clock: FakeClock, fault: str
) -> None:
    browser = await user(store, clock, "ada")
    if fault == "latency":
        proxy.latency = DEADLINE * 40  # most chunks arrive far too late
        proxy._random.random = lambda: 1.0  # type: ignore[method-assign]  # every one, here
    elif fault == "stall":
        proxy.stall()
    else:
        proxy.drop = True
    down = await visit(browser)
    assert down.status == 503
    assert down.set_cookies == []
    browser.app = app(
        store, clock, lambda s: (s.unavailable, s.get("user")), on_store_error="continue"
    )
    degraded = await visit(browser)
    assert degraded.status == 200
    assert degraded.text == "(True, None)"
    proxy.latency, proxy.drop = 0.0, False
    proxy.release()
    proxy.reset_all()  # connections that timed out mid-reply are not to be reused
    browser.app = app(store, clock, lambda s: s.get("user"))
    assert (await visit(browser)).text == "'ada'"  # back, with nothing lost


async def test_reset_connections_recover_without_a_restart(
    store: RedisStore, proxy: FaultProxy, clock: FakeClock
) -> None:
    browser = await user(store, clock, "ada")
    for _ in range(5):
        proxy.reset_all()
        response = await visit(browser)
        assert response.status in (200, 503)
        if response.status == 200:
            assert response.text == "'ada'"
    assert (await visit(browser)).text == "'ada'"


async def test_ten_thousand_requests_with_latency_and_cancellations_never_mix_users(
    store: RedisStore, proxy: FaultProxy, clock: FakeClock
) -> None:
    rng = random.Random(3)
    users = [await user(store, clock, f"user-{number}") for number in range(100)]
    proxy.latency = 0.002
    served = cancelled = 0
    wrong: list[tuple[str, str]] = []  # (whose, what they got): told apart when it fails

    async def one(number: int) -> None:
        nonlocal served
        response = await users[number].request()
        if response.status == 200:
            served += 1
            if response.text != repr(f"user-{number}"):
                wrong.append((f"user-{number}", response.text))

    for _ in range(100):  # 100 batches of 100 concurrent requests
        tasks = [asyncio.ensure_future(one(rng.randrange(100))) for _ in range(100)]
        for _ in range(rng.randrange(1, 6)):
            await asyncio.sleep(0)  # a yield, letting some requests reach Redis
        for task in rng.sample(tasks, rng.randrange(0, 25)):  # clients that went away
            cancelled += task.cancel()
        with anyio.fail_after(HANG_GUARD * 10):
            await asyncio.gather(*tasks, return_exceptions=True)
    assert not wrong, f"{len(wrong)} wrong answers, among them {wrong[:5]}"
    assert cancelled > 500
    assert served > 5_000
    proxy.latency = 0.0
    for number in range(100):  # and the pool serves everyone correctly afterwards
        assert (await users[number].request()).text == repr(f"user-{number}")


async def test_a_changed_session_is_not_half_written_when_the_store_stalls(
    store: RedisStore, proxy: FaultProxy, clock: FakeClock
) -> None:
    browser = await user(store, clock, "ada")

    def change(session: Session) -> None:
        session.update(user="eve", role="admin")
        proxy.stall()  # the write will not get through in time

    browser.app = app(store, clock, change)
    assert (await visit(browser)).status == 503
    proxy.release()
    proxy.reset_all()
    browser.app = app(store, clock, dict)
    assert (await visit(browser)).text in ("{'user': 'ada'}", "{'user': 'eve', 'role': 'admin'}")
