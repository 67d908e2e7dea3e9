"""The outage policy: 503 by default, or an empty read-only session when asked."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sesh.core import ConfigurationError, OutageAnswer, Session, SessionMiddleware
from sesh.core.errors import SessionUnavailable, StoreUnavailable
from sesh.core.testing import Client, FakeClock, responder
from sesh.core.types import Receive, Scope, Send
from sesh.stores.memory import MemoryStore

from support.spy import SpyStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def switch(clock: FakeClock) -> SpyStore:
    return SpyStore(MemoryStore(clock=clock))


def client(switch: SpyStore, clock: FakeClock, action: Any, **options: Any) -> Client:
    return Client(SessionMiddleware(responder(action), store=switch, clock=clock, **options))


async def logged_in(switch: SpyStore, clock: FakeClock, **options: Any) -> Client:
    browser = client(switch, clock, lambda s: s.update(user="ada"), **options)
    await browser.request()
    return browser


async def test_load_failure_answers_503_without_running_the_app(
    switch: SpyStore, clock: FakeClock
) -> None:
    browser = await logged_in(switch, clock)
    ran: list[bool] = []
    browser.app = client(switch, clock, lambda s: ran.append(True)).app
    switch.down = True
    response = await browser.request()
    assert response.status == 503
    assert response.set_cookies == []
    assert ran == []


async def test_save_failure_replaces_the_response_with_503(
    switch: SpyStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    browser = client(switch, clock, lambda s: s.update(user="ada"))
    switch.down = True
    with caplog.at_level(logging.WARNING, "sesh"):
        response = await browser.request()
    assert response.status == 503
    assert response.set_cookies == []
    assert [m["type"] for m in response.messages] == ["http.response.start", "http.response.body"]
    assert b"Service Unavailable" in response.body
    assert "session store unreachable while saving" in caplog.text
    switch.down = False
    assert len(switch.inner) == 0  # type: ignore[arg-type]  # nothing half-written


async def test_continue_mode_gives_an_empty_read_only_session(
    switch: SpyStore, clock: FakeClock
) -> None:
    browser = await logged_in(switch, clock, on_store_error="continue")
    seen: list[Any] = []

    def action(session: Session) -> str:
        seen.append((session.unavailable, dict(session)))
        with pytest.raises(SessionUnavailable, match=r"check `session\.unavailable`"):
            session["user"] = "eve"
        with pytest.raises(SessionUnavailable):
            session.invalidate()
        return "served"

    browser.app = client(switch, clock, action, on_store_error="continue").app
    switch.down = True
    response = await browser.request()
    assert response.status == 200
    assert response.text == "'served'"
    assert response.set_cookies == []
    assert seen == [(True, {})]
    switch.down = False
    browser.app = client(switch, clock, lambda s: dict(s)).app
    assert (await browser.request()).text == "{'user': 'ada'}"  # back, untouched


async def test_continue_mode_serves_the_response_when_saving_fails(
    switch: SpyStore, clock: FakeClock
) -> None:
    browser = client(switch, clock, lambda s: s.update(user="ada"), on_store_error="continue")
    switch.down = True
    response = await browser.request()
    assert response.status == 200
    assert response.set_cookies == []
    assert response.values("vary") == []


async def test_a_failed_late_save_is_logged_and_harmless(
    switch: SpyStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    browser = await logged_in(switch, clock)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["seen"] = True
        await send({"type": "http.response.start", "status": 200})
        switch.down = True
        scope["session"]["late"] = True
        await send({"type": "http.response.body", "body": b"ok"})

    browser.app = SessionMiddleware(app, store=switch, clock=clock)
    with caplog.at_level(logging.WARNING, "sesh"):
        response = await browser.request()
    assert response.status == 200
    assert response.body == b"ok"
    assert "changes made after the response started were not saved" in caplog.text


@pytest.mark.parametrize("answer", [None, "an ASGI app"])
async def test_a_websocket_is_closed_with_try_again_later(
    switch: SpyStore, clock: FakeClock, answer: str | None
) -> None:
    from starlette.responses import JSONResponse

    browser = await logged_in(switch, clock)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not reached")

    options: dict[str, Any] = {} if answer is None else {"outage_answer": JSONResponse({}, 503)}
    browser.app = SessionMiddleware(app, store=switch, clock=clock, **options)
    switch.down = True
    sent = await browser.websocket()
    assert sent == [
        {"type": "websocket.close", "code": 1013, "reason": "session store unavailable"}
    ]


async def test_an_explicit_save_raises_to_the_app(switch: SpyStore, clock: FakeClock) -> None:
    async def action(session: Session) -> str:
        session["a"] = 1
        switch.down = True
        try:
            await session.save()
        except StoreUnavailable:
            return "caught"
        return "saved?"

    response = await client(switch, clock, action, on_store_error="continue").request()
    assert response.text == "'caught'"


def test_the_policy_name_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="on_store_error must be 'fail'"):
        SessionMiddleware(responder(None), on_store_error="ignore")  # type: ignore[arg-type]


# -- the answer is the app's to shape ----------------------------------------------------------


async def test_the_outage_answer_can_be_a_status_and_body(
    switch: SpyStore, clock: FakeClock
) -> None:
    answer = OutageAnswer(
        status=500, body=b'{"error": "sessions"}', content_type="application/json", retry_after=None
    )
    browser = await logged_in(switch, clock, outage_answer=answer)
    switch.down = True
    response = await browser.request()
    assert response.status == 500
    assert response.body == b'{"error": "sessions"}'
    assert response.values("content-type") == ["application/json"]
    assert response.values("retry-after") == []


async def test_the_outage_answer_can_be_any_asgi_app(switch: SpyStore, clock: FakeClock) -> None:
    from starlette.responses import JSONResponse

    answer = JSONResponse({"error": "try again"}, status_code=503, headers={"retry-after": "5"})
    browser = client(switch, clock, lambda s: s.update(user="ada"), outage_answer=answer)
    switch.down = True
    response = await browser.request()  # the save fails: the answer replaces the app's
    assert response.status == 503
    assert response.body == b'{"error":"try again"}'
    assert response.values("retry-after") == ["5"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"status": 200}, "4xx or 5xx"),
        ({"status": "503"}, "4xx or 5xx"),
        ({"body": "text, not bytes"}, "body is bytes"),
        ({"content_type": b"text/plain"}, "content_type"),
        ({"retry_after": -1}, "retry_after"),
        ({"retry_after": 1.5}, "retry_after"),
    ],
)
def test_a_bad_outage_answer_is_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        OutageAnswer(**options)


def test_an_outage_answer_that_is_no_app_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="ASGI app"):
        SessionMiddleware(responder(None), outage_answer=b"503")  # type: ignore[arg-type]


# -- "continue": new sessions and stored ones alike --------------------------------------------


async def test_continue_mode_makes_new_sessions_read_only_once_a_save_failed(
    switch: SpyStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def write(session: Any) -> str:
        try:
            session["user"] = "ada"
        except SessionUnavailable:
            return "refused"
        return "written"

    app = client(switch, clock, write, on_store_error="continue").app
    switch.down = True
    with caplog.at_level(logging.WARNING, "sesh"):
        first = await Client(app).request()
    assert (first.status, first.text) == (200, "'written'")  # it could not know yet
    assert "this request's changes are lost" in caplog.text  # but it is not silent
    second = await Client(app).request(headers=[(b"cookie", b"session=forged")])
    assert second.text == "'refused'"  # now writes raise, as for a session that failed to load
    switch.down = False
    clock.advance(1)
    third = await Client(app).request()
    assert third.text == "'written'"
    assert third.set_cookies
