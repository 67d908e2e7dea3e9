"""Headers: Vary: Cookie on every response that carries our cookie or read the session,
merged with the app's own Vary; never two Set-Cookie for our name."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

from sesh.core import Session, SessionMiddleware
from sesh.core.testing import Client, FakeClock
from sesh.core.types import Receive, Scope, Send
from sesh.stores.memory import MemoryStore

from conftest import SECRET

pytestmark = pytest.mark.anyio
OLD_SECRET = "an-older-secret-that-is-long-enough-0123456789"


def app_with_headers(
    headers: list[tuple[bytes, bytes]], action: Callable[[Session], Any] = lambda s: None
) -> Any:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        action(scope["session"])
        await send({"type": "http.response.start", "status": 200, "headers": list(headers)})
        await send({"type": "http.response.body", "body": b""})

    return app


def client_for(app: Any, store: MemoryStore, clock: FakeClock, **options: Any) -> Client:
    options.setdefault("clock", clock)
    return Client(SessionMiddleware(app, store=store, **options))


async def logged_in(store: MemoryStore, clock: FakeClock, **options: Any) -> Client:
    client = client_for(
        app_with_headers([], lambda s: s.update(user="ada")), store, clock, **options
    )
    await client.request()
    return client


@pytest.mark.parametrize(
    ("apps_vary", "expected"),
    [
        ([], ["Cookie"]),
        ([(b"vary", b"Accept-Encoding")], ["Accept-Encoding, Cookie"]),
        ([(b"Vary", b"accept-encoding, COOKIE")], ["accept-encoding, COOKIE"]),
        ([(b"vary", b"Origin"), (b"vary", b"cookie")], ["Origin", "cookie"]),
        ([(b"vary", b"*")], ["*"]),
    ],
)
async def test_vary_holds_exactly_one_cookie_token(
    store: MemoryStore, clock: FakeClock, apps_vary: list[tuple[bytes, bytes]], expected: list[str]
) -> None:
    client = await logged_in(store, clock)
    client.app = SessionMiddleware(
        app_with_headers(apps_vary, lambda s: s.get("user")), store=store, clock=clock
    )
    response = await client.request()
    assert response.values("vary") == expected


async def test_a_refreshed_cookie_varies_even_when_the_app_never_read_the_session(
    store: MemoryStore, clock: FakeClock
) -> None:
    # Secret rotation: the cookie is re-signed though the app does not touch the session.
    client = await logged_in(store, clock, secret_key=OLD_SECRET)
    client.app = SessionMiddleware(
        app_with_headers([]), store=store, clock=clock, secret_key=[SECRET, OLD_SECRET]
    )
    response = await client.request()
    assert len(response.set_cookies) == 1
    assert response.values("vary") == ["Cookie"]


async def test_an_unread_session_adds_no_vary(store: MemoryStore, clock: FakeClock) -> None:
    client = await logged_in(store, clock)
    client.app = SessionMiddleware(
        app_with_headers([(b"vary", b"Origin")]), store=store, clock=clock
    )
    response = await client.request()
    assert response.values("vary") == ["Origin"]
    assert response.set_cookies == []


async def test_the_apps_own_cookie_under_our_name_is_replaced_with_a_warning(
    store: MemoryStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    headers = [(b"set-cookie", b"session=planted; Path=/"), (b"set-cookie", b"theme=dark")]
    app = app_with_headers(headers, lambda s: s.update(user="ada"))
    client = client_for(app, store, clock)
    with caplog.at_level(logging.WARNING, logger="sesh"):
        response = await client.request()
    ours = [c for c in response.set_cookies if c.startswith("session=")]
    assert len(ours) == 1
    assert "planted" not in ours[0]
    assert "theme=dark" in response.set_cookies  # the app's other cookies stay
    assert "set the session cookie" in caplog.text
    assert "planted" not in caplog.text


async def test_the_apps_cookie_under_our_name_stays_when_sesh_sets_none(
    store: MemoryStore, clock: FakeClock
) -> None:
    client = client_for(app_with_headers([(b"set-cookie", b"session=theirs")]), store, clock)
    response = await client.request()
    assert response.set_cookies == ["session=theirs"]
