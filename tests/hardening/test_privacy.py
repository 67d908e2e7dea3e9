"""Logs carry no session id, cookie value, secret or session data; security events are
logged once each, with a short hash to trace them."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest

from sesh.core import Session, SessionMiddleware
from sesh.core.testing import Client, FakeClock, responder
from sesh.core.types import Receive, Scope, Send
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

from support import privacy

pytestmark = pytest.mark.anyio
SECRET = "a-privacy-test-secret-0123456789-abcdef"
CANARY = "canary-session-data-5f1c9a"  # session data that must never reach a log
HASH = re.compile(r"\(([0-9a-f]{8})(?:, ([0-9a-f]{8}))?\)$")


def test_the_guard_catches_a_leak() -> None:
    privacy.SENSITIVE.add("a-planted-secret-value-0123456789")
    logging.getLogger("sesh.test").warning("oops: a-planted-secret-value-0123456789 leaked")
    try:
        assert any("a-planted-secret-value" in text for text in privacy.leaks())
    finally:
        privacy.RECORDS.pop()
        privacy.SENSITIVE.discard("a-planted-secret-value-0123456789")
    assert not any("a-planted-secret-value" in text for text in privacy.leaks())


async def test_the_guard_records_what_sesh_issues(clock: FakeClock) -> None:
    ids: list[str] = []

    def write(session: Session) -> None:
        session["a"] = 1
        ids.append(session.id)

    client = Client(
        SessionMiddleware(
            responder(write),
            store=MemoryStore(clock=clock),
            clock=clock,
            secret_key=SECRET,
        )
    )
    await client.request()
    assert ids[0] in privacy.SENSITIVE
    assert client.jar["session"] in privacy.SENSITIVE
    assert SECRET in privacy.SENSITIVE


def sesh_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("sesh")]


async def test_no_event_logs_session_data(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Every path that logs, with the canary in the session."""
    caplog.set_level(logging.DEBUG, "sesh")
    store = MemoryStore(clock=clock)

    def app(action: Any, **options: Any) -> SessionMiddleware:
        return SessionMiddleware(responder(action), store=store, clock=clock, **options)

    client = Client(app(lambda s: s.update(data=CANARY)))
    await client.request()
    cookie = client.jar["session"]

    async def late(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        scope["session"]["late"] = CANARY  # a new session after the start: dropped, logged
        await send({"type": "http.response.body", "body": b""})

    await Client(SessionMiddleware(late, store=store, clock=clock)).request()
    await client.request(headers=[(b"cookie", b"session=" + CANARY.encode())])
    await client.request(headers=[(b"cookie", f"session={cookie}; session={'Z' * 43}".encode())])
    await client.request(headers=[(b"cookie", b"session=" + b"x" * 70_000)])
    cookie_client = Client(SessionMiddleware(late, store=CookieStore(SECRET), clock=clock))
    await cookie_client.request()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert logged  # the paths above did log
    assert CANARY not in logged
    assert cookie not in logged


async def test_security_events_are_logged_once_with_a_short_hash(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore(clock=clock)

    def app(action: Any) -> SessionMiddleware:
        return SessionMiddleware(responder(action), store=store, clock=clock, secret_key=SECRET)

    client = Client(app(lambda s: s.update(a=1)))
    await client.request()
    good = client.jar["session"]
    other = Client(app(lambda s: s.update(b=1)))
    await other.request()
    client.app = app(dict)

    cases = {
        "session cookie rejected": [(b"cookie", f"session={good[:-2]}xx".encode())],
        "two different valid values": [
            (b"cookie", f"session={good}; session={other.jar['session']}".encode())
        ],
    }
    for event, headers in cases.items():
        caplog.clear()
        with caplog.at_level(logging.DEBUG, "sesh"):
            await client.request(headers=headers)
        [record] = sesh_records(caplog)
        assert event in record.getMessage()
        assert HASH.search(record.getMessage()), record.getMessage()

    # An id that verifies but names no session (it was logged out).
    client.app = app(lambda s: s.invalidate())
    await client.request(headers=[(b"cookie", f"session={good}".encode())])
    client.app = app(dict)
    caplog.clear()
    with caplog.at_level(logging.DEBUG, "sesh"):
        await client.request(headers=[(b"cookie", f"session={good}".encode())])
    [record] = sesh_records(caplog)
    assert "names no live session" in record.getMessage()
    assert HASH.search(record.getMessage())


async def test_a_refused_resurrection_is_logged_once_with_a_hash(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore(clock=clock)
    client = Client(SessionMiddleware(responder(lambda s: s.update(a=1)), store=store, clock=clock))
    await client.request()
    engine = client.app.engine  # type: ignore[attr-defined]
    scope = client.scope("http", "/", None, "GET")
    slow, logout = engine.start(scope), engine.start(scope)
    await engine.load(slow)
    await engine.load(logout)
    logout.invalidate()
    await engine.response_starts(logout, 200, [])
    slow["a"] = 2
    caplog.clear()
    with caplog.at_level(logging.DEBUG, "sesh"):
        await engine.response_starts(slow, 200, [])
    [record] = sesh_records(caplog)
    assert "refused to recreate" in record.getMessage()
    assert HASH.search(record.getMessage())


def test_a_session_repr_reveals_nothing() -> None:
    from sesh.core import SessionEngine

    session: Session = SessionEngine(MemoryStore()).start({"type": "http", "headers": []})
    session["data"] = CANARY
    assert CANARY not in repr(session)
    assert session.id not in repr(session)
