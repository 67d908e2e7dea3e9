"""Ordering that never loses a session: regenerate() creates the new record first, and a
store failure at any step leaves the previous session exactly as it was."""

from __future__ import annotations

import pytest

from sesh.core import Session, SessionEngine
from sesh.core.testing import Client, FakeClock, make_session
from sesh.stores.memory import MemoryStore

from conftest import MakeClient
from support.spy import SpyStore

pytestmark = pytest.mark.anyio


def log_in(session: Session) -> None:
    session.regenerate()
    session["user"] = "ada"


async def with_cart(make_client: MakeClient, **options: object) -> tuple[Client, str]:
    """A client holding an anonymous session with a cart; the cookie's value."""
    client = make_client(lambda s: s.update(cart=[1, 2]), **options)
    await client.request()
    return client, client.jar["session"]


async def show(client: Client, make_client: MakeClient, **options: object) -> str:
    client.app = make_client(lambda s: dict(s), **options).app
    return (await client.request()).text


async def test_regenerate_creates_the_new_record_before_deleting_the_old(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client, before = await with_cart(make_client)
    spy.order.clear()
    client.app = make_client(log_in).app
    response = await client.request()
    assert response.status == 200
    assert spy.order == ["load", "create", "delete"]
    assert client.jar["session"] != before
    assert await show(client, make_client) == "{'cart': [1, 2], 'user': 'ada'}"


@pytest.mark.parametrize("failing", ["create", "delete"])
@pytest.mark.parametrize("policy", ["fail", "continue"])
async def test_a_store_failure_at_login_keeps_the_anonymous_session(
    make_client: MakeClient, spy: SpyStore, store: MemoryStore, failing: str, policy: str
) -> None:
    client, before = await with_cart(make_client, on_store_error=policy)
    spy.failing = {failing}
    client.app = make_client(log_in, on_store_error=policy).app
    response = await client.request()
    assert response.status == (503 if policy == "fail" else 200)
    assert response.set_cookies == []  # the client keeps the cookie it had
    spy.failing = set()
    assert client.jar["session"] == before
    assert await show(client, make_client) == "{'cart': [1, 2]}"  # not half-written
    if failing == "create":
        assert len(store) == 1


async def test_regenerate_after_a_logout_elsewhere_brings_nothing_back(
    spy: SpyStore, store: MemoryStore, clock: FakeClock
) -> None:
    engine = SessionEngine(spy, clock=clock)
    name, value = await make_session(spy, {"user": "ada"}, config=engine.config)
    scope = {"type": "http", "headers": [(b"cookie", f"{name}={value}".encode())]}
    slow = await engine.open(dict(scope))  # a login in flight ...
    logout = await engine.open(dict(scope))  # ... while another tab logs out
    logout.invalidate()
    await engine.response_starts(logout, 200, [])
    log_in(slow)
    headers = list(await engine.response_starts(slow, 200, []))
    assert [v for k, v in headers if k == b"set-cookie"] == []
    assert len(store) == 0  # the new record was removed: no session outlives the logout
