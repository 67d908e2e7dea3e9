"""A private redis-server killed and stalled mid-run: the outage policy, then recovery."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from redis.asyncio import Redis

from sesh.core import SessionMiddleware
from sesh.core.testing import Client, FakeClock, responder
from sesh.stores.redis import RedisStore

from support.redis_servers import RedisServer

pytestmark = pytest.mark.anyio
# What is tested is that the deadline holds, not how short it is: it leaves a loaded
# machine room to answer the first request after a resumed stall within it.
DEADLINE = 0.5
HANG_GUARD = DEADLINE * 20  # not a speed check: only "it did not hang"


def browser_for(store: RedisStore, clock: FakeClock, action: Any, **options: Any) -> Client:
    return Client(SessionMiddleware(responder(action), store=store, clock=clock, **options))


async def visit(browser: Client, store: RedisStore, clock: FakeClock, **options: Any) -> Any:
    browser.app = browser_for(
        store, clock, lambda s: s.__setitem__("n", s.get("n", 0) + 1) or s["n"], **options
    ).app
    with anyio.fail_after(HANG_GUARD):
        return await browser.request()


async def test_a_killed_server_gives_503_and_its_return_restores_sessions(
    private_redis: RedisServer, clock: FakeClock
) -> None:
    store = RedisStore(private_redis.url, timeout=DEADLINE)
    browser = Client(None)  # each visit() gives it its app
    assert (await visit(browser, store, clock)).text == "1"
    assert (await visit(browser, store, clock)).text == "2"

    private_redis.kill()
    down = await visit(browser, store, clock)
    assert down.status == 503
    assert down.set_cookies == []

    private_redis.start()  # the same port and data directory
    assert (await visit(browser, store, clock)).text == "3"  # same session, no restart of ours
    await store.aclose()


@pytest.mark.parametrize("made_from", ["url", "client without socket timeouts"])
async def test_a_stalled_server_is_cut_off_by_the_deadline(
    private_redis: RedisServer, clock: FakeClock, made_from: str
) -> None:
    # Neither client has a socket timeout of its own (a URL-built one leaves timing to the
    # deadline): only our deadline protects us, and the stalled connection must be dropped,
    # never reused with its late reply still to come.
    client = (
        private_redis.url
        if made_from == "url"
        else Redis(port=private_redis.port, socket_timeout=None)
    )
    store = RedisStore(client, timeout=DEADLINE)
    browser = Client(None)  # each visit() gives it its app
    assert (await visit(browser, store, clock)).text == "1"

    private_redis.pause()
    try:
        down = await visit(browser, store, clock)
        assert down.status == 503
        assert down.set_cookies == []
    finally:
        private_redis.resume()
    assert (await visit(browser, store, clock)).text == "2"  # nothing was half-written
    await store.aclose()


async def test_continue_mode_serves_pages_while_redis_is_down(
    private_redis: RedisServer, clock: FakeClock
) -> None:
    store = RedisStore(private_redis.url, timeout=DEADLINE)
    browser = Client(None)  # each visit() gives it its app
    await visit(browser, store, clock)

    def page(session: Any) -> str:
        return f"unavailable={session.unavailable} user={session.get('user')}"

    browser.app = browser_for(store, clock, page, on_store_error="continue").app
    private_redis.kill()
    with anyio.fail_after(HANG_GUARD):
        response = await browser.request()
    assert response.status == 200
    assert response.text == "'unavailable=True user=None'"
    assert response.set_cookies == []
    private_redis.start()
    assert (await visit(browser, store, clock)).text == "2"
    await store.aclose()
