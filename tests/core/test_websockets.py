"""Websocket sessions only where they can work: servers that cannot send headers with
``websocket.accept``, and handshakes opened by pages of other origins."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sesh.core import ConfigurationError, CookieAlreadySent, SessionConfig, SessionMiddleware
from sesh.core.testing import Client, FakeClock
from sesh.core.types import Receive, Scope, Send
from sesh.stores.memory import MemoryStore

from support.spy import SpyStore

pytestmark = pytest.mark.anyio


def socket_app(action: Any) -> Any:
    """A websocket route that runs ``action(session)`` before its accept, then counts."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": repr(dict(session)).encode()})
            return
        await receive()  # websocket.connect
        outcome = action(session)
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": repr(outcome)})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    return app


def bump(session: Any) -> int:
    session["n"] = session.get("n", 0) + 1
    return int(session["n"])


# -- servers without headers on websocket.accept (ASGI spec 2.0: granian, daphne) ----------


async def test_a_new_session_is_not_started_where_no_cookie_can_reach_the_client(
    spy: SpyStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = SessionMiddleware(socket_app(bump), store=spy, clock=clock)
    old_server = Client(app, spec_version="2.0")
    with caplog.at_level(logging.WARNING, "sesh"):
        sent = await old_server.websocket()
        await old_server.websocket()
    assert sent[0] == {"type": "websocket.accept"}  # no Set-Cookie it could not deliver
    assert sent[1]["text"] == "1"  # the app could use it while connected
    assert spy.writes == 0  # and no orphan record is left behind
    assert old_server.jar == {}
    limits = [r for r in caplog.records if "spec_version" in r.getMessage()]
    assert len(limits) == 1  # one warning for the server, not one per connection


async def test_an_existing_session_is_read_and_changed_there(
    spy: SpyStore, clock: FakeClock
) -> None:
    app = SessionMiddleware(socket_app(bump), store=spy, clock=clock)
    starter = Client(app)
    await starter.websocket()  # on a 2.4 server the session starts in the websocket
    socket = Client(app, spec_version="2.0")
    socket.jar = dict(starter.jar)
    sent = await socket.websocket()
    assert sent[1]["text"] == "2"
    assert (await socket.request()).text == "{'n': 2}"  # the change on the 2.0 socket was saved


async def test_what_needs_a_new_cookie_raises_there(spy: SpyStore, clock: FakeClock) -> None:
    def rotate(session: Any) -> str:
        try:
            session.regenerate()
        except CookieAlreadySent:
            return "refused"
        return "rotated"

    starter = Client(SessionMiddleware(socket_app(bump), store=spy, clock=clock))
    await starter.websocket()
    socket = Client(SessionMiddleware(socket_app(rotate), store=spy, clock=clock), "http", "2.0")
    socket.jar = dict(starter.jar)
    assert (await socket.websocket())[1]["text"] == "'refused'"


@pytest.mark.parametrize("declared", [None, "2.0", "garbage", "1.9"])
async def test_a_server_that_declares_no_accept_headers_gets_no_new_session(
    clock: FakeClock, declared: str | None
) -> None:
    store = SpyStore(MemoryStore(clock=clock))
    sent: list[Any] = []
    scope: dict[str, Any] = {"type": "websocket", "headers": [], "asgi": {"version": "3.0"}}
    if declared is not None:
        scope["asgi"]["spec_version"] = declared
    queue = [{"type": "websocket.connect"}, {"type": "websocket.disconnect", "code": 1000}]

    async def receive() -> Any:
        return queue.pop(0)

    async def send(message: Any) -> None:
        sent.append(message)

    await SessionMiddleware(socket_app(bump), store=store, clock=clock)(scope, receive, send)
    assert sent[0] == {"type": "websocket.accept"}
    assert store.writes == 0


@pytest.mark.parametrize(
    ("declared", "setting", "started"),
    [("2.4", False, False), ("2.0", True, True), ("2.4", "auto", True), ("2.0", "auto", False)],
)
async def test_websocket_cookies_overrides_what_the_server_declares(
    clock: FakeClock, declared: str, setting: Any, started: bool
) -> None:
    store = SpyStore(MemoryStore(clock=clock))
    app = SessionMiddleware(socket_app(bump), store=store, clock=clock, websocket_cookies=setting)
    sent = await Client(app, spec_version=declared).websocket()
    assert ("headers" in sent[0]) is started
    assert store.writes == int(started)


def test_websocket_cookies_takes_true_false_or_auto() -> None:
    with pytest.raises(ConfigurationError, match="websocket_cookies"):
        SessionConfig(websocket_cookies="no")  # type: ignore[arg-type]
    assert SessionConfig.from_env({"SESH_WEBSOCKET_COOKIES": "false"}).websocket_cookies is False


# -- handshakes from pages of other origins (cross-site websocket hijacking) ----------------


async def logged_in(spy: SpyStore, clock: FakeClock, **options: Any) -> Client:
    app = SessionMiddleware(socket_app(bump), store=spy, clock=clock, **options)
    browser = Client(app)
    await browser.request()
    browser.app = app
    await browser.websocket()  # n = 1, and the cookie
    return browser


SAME_HOST = [(b"host", b"app.example.com"), (b"origin", b"https://app.example.com")]
EVIL = [(b"host", b"app.example.com"), (b"origin", b"https://evil.example.net")]


async def test_a_page_of_the_same_host_gets_the_session(spy: SpyStore, clock: FakeClock) -> None:
    browser = await logged_in(spy, clock)
    assert (await browser.websocket(headers=SAME_HOST))[1]["text"] == "2"


async def test_a_page_of_another_origin_gets_no_session_and_sets_no_cookie(
    spy: SpyStore, clock: FakeClock
) -> None:
    browser = await logged_in(spy, clock)
    writes = spy.writes
    sent = await browser.websocket(headers=EVIL)
    assert sent[0] == {"type": "websocket.accept"}  # no Set-Cookie for the attacker's page
    assert sent[1]["text"] == "1"  # a fresh session: the user's count was not read
    assert spy.writes == writes  # nor stored
    assert (await browser.request()).text == "{'n': 1}"  # the user's session is untouched


async def test_allowed_origins_admits_a_named_origin(spy: SpyStore, clock: FakeClock) -> None:
    browser = await logged_in(spy, clock, allowed_origins=["https://evil.example.net"])
    assert (await browser.websocket(headers=EVIL))[1]["text"] == "2"


async def test_a_client_that_sends_no_origin_is_not_a_browser_page(
    spy: SpyStore, clock: FakeClock
) -> None:
    browser = await logged_in(spy, clock)
    assert (await browser.websocket())[1]["text"] == "2"


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/path", 3])
def test_an_origin_that_is_not_one_is_refused(origin: Any) -> None:
    with pytest.raises(ConfigurationError, match="allowed_origins"):
        SessionConfig(allowed_origins=[origin])


def test_allowed_origins_is_read_from_the_environment() -> None:
    config = SessionConfig.from_env(
        {"SESH_ALLOWED_ORIGINS": "https://a.example.com, https://B.example.com/"}
    )
    assert config.allowed_origins == ("https://a.example.com", "https://b.example.com")
