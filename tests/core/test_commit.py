"""The commit rules (DESIGN.md, steps 6-8), through the pure-ASGI middleware."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sesh.core import CookieAlreadySent, Session, SessionDataError, SessionEngine, SessionMiddleware
from sesh.core.testing import Client, FakeClock, cookie_attributes
from sesh.core.tokens import store_key
from sesh.core.types import Message, Receive, Scope, Send
from sesh.stores.memory import MemoryStore

from conftest import SECRET, MakeClient
from support.spy import SpyStore

pytestmark = pytest.mark.anyio


async def respond(engine: SessionEngine, session: Session) -> list[tuple[bytes, bytes]]:
    """What an integration does at an http response start with status 200."""
    return list(await engine.response_starts(session, 200, []))


def write(key: str, value: Any) -> Any:
    def action(session: Session) -> None:
        session[key] = value

    return action


def read(key: str) -> Any:
    return lambda session: session.get(key)


async def test_no_cookie_and_untouched_writes_nothing(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client()
    for _ in range(10_000):
        response = await client.request()
        assert response.status == 200
        assert response.set_cookies == []
        assert response.values("vary") == []
    assert sum(spy.calls.values()) == 0
    assert len(spy.inner) == 0  # type: ignore[arg-type]


async def test_first_write_creates_the_session_and_sets_the_cookie(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("user", "ada"))
    response = await client.request()
    [set_cookie] = response.set_cookies
    attributes = cookie_attributes(set_cookie)
    assert attributes["max-age"] == str(14 * 24 * 3600)
    assert attributes["path"] == "/"
    assert attributes["samesite"] == "lax"
    assert "httponly" in attributes
    assert "secure" not in attributes
    assert "domain" not in attributes
    assert response.values("vary") == ["Cookie"]
    assert spy.calls == {"create": 1}


async def test_reading_costs_one_load_and_sends_no_cookie(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("user", "ada"))
    await client.request()
    client.app = make_client(read("user")).app
    spy.calls.clear()
    response = await client.request()
    assert response.text == "'ada'"
    assert response.set_cookies == []
    assert response.values("vary") == ["Cookie"]
    assert spy.calls == {"load": 1}


async def test_a_change_updates_only_that_key_and_keeps_the_cookie(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("a", 1))
    await client.request()
    client.app = make_client(write("b", 2)).app
    spy.calls.clear()
    response = await client.request()
    assert response.set_cookies == []
    assert spy.calls == {"load": 1, "update": 1}
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == "{'a': 1, 'b': 2}"


async def test_in_place_changes_to_values_read_are_saved(make_client: MakeClient) -> None:
    client = make_client(write("cart", ["apple"]))
    await client.request()
    client.app = make_client(lambda s: s["cart"].append("pear")).app
    await client.request()
    client.app = make_client(lambda s: s["nested"] if "nested" in s else s.setdefault("n", {})).app
    await client.request()
    client.app = make_client(lambda s: s["n"].update(deep=[1])).app
    await client.request()
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == "{'cart': ['apple', 'pear'], 'n': {'deep': [1]}}"


async def test_reading_a_mutable_value_without_changing_it_writes_nothing(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("cart", {"items": [1, 2]}))
    await client.request()
    client.app = make_client(lambda s: list(s.values())).app
    spy.calls.clear()
    await client.request()
    assert spy.calls == {"load": 1}


async def test_setting_and_deleting_in_one_request_writes_nothing(
    make_client: MakeClient, spy: SpyStore
) -> None:
    def action(session: Session) -> None:
        session["a"] = 1
        del session["a"]

    response = await make_client(action).request()
    assert response.set_cookies == []
    assert spy.writes == 0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_no_save_on_a_server_error(
    make_client: MakeClient, spy: SpyStore, status: int
) -> None:
    response = await make_client(write("a", 1), status=status).request()
    assert response.status == status
    assert response.set_cookies == []
    assert spy.writes == 0


@pytest.mark.parametrize("status", [500, 503])
async def test_no_late_save_after_a_server_error(
    make_client: MakeClient, spy: SpyStore, clock: FakeClock, status: int
) -> None:
    client = make_client(write("a", 1))
    await client.request()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": status})
        scope["session"]["a"] = 2  # untouched until the error response had started
        await send({"type": "http.response.body", "body": b""})

    client.app = SessionMiddleware(app, store=spy, clock=clock)
    spy.calls.clear()
    assert (await client.request()).status == status
    assert spy.writes == 0


async def test_no_save_when_the_app_raises(spy: SpyStore, clock: FakeClock) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["a"] = 1
        raise RuntimeError("boom")

    client = Client(SessionMiddleware(app, store=spy, clock=clock))
    with pytest.raises(RuntimeError, match="boom"):
        await client.request()
    assert spy.writes == 0


async def test_changes_are_persisted_before_the_response_start_is_sent(
    spy: SpyStore, clock: FakeClock
) -> None:
    seen: list[int] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["a"] = 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def send(message: Message) -> None:
        if message["type"] == "http.response.start":
            seen.append(spy.calls["create"])

    middleware = SessionMiddleware(app, store=spy, clock=clock)
    await middleware(Client(app).scope("http", "/", [], "GET"), _no_body, send)
    assert seen == [1]


async def _no_body() -> Message:
    return {"type": "http.request", "body": b""}


def streaming_app(before: Any, after: Any) -> Any:
    """Changes the session before and after the response starts (a streaming body)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        before(session)
        await send({"type": "http.response.start", "status": 200, "headers": ((b"x", b"1"),)})
        after(session)
        await send({"type": "http.response.body", "body": b"done"})

    return app


async def test_late_changes_to_a_stored_session_are_saved(
    make_client: MakeClient, spy: SpyStore, clock: FakeClock
) -> None:
    client = make_client(write("a", 1))
    await client.request()
    client.app = SessionMiddleware(
        streaming_app(lambda s: s["a"], write("late", True)), store=spy, clock=clock
    )
    response = await client.request()
    assert response.headers[0] == (b"x", b"1")  # the app's own headers are kept, in order
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == "{'a': 1, 'late': True}"


async def test_a_new_session_started_late_is_dropped_with_a_warning(
    spy: SpyStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = SessionMiddleware(streaming_app(lambda s: None, write("late", 1)), store=spy, clock=clock)
    with caplog.at_level(logging.WARNING, "sesh"):
        response = await Client(app).request()
    assert response.set_cookies == []
    assert spy.writes == 0
    assert "could not reach the client" in caplog.text


async def test_a_late_regenerate_raises_and_keeps_the_session(
    make_client: MakeClient, spy: SpyStore, clock: FakeClock
) -> None:
    client = make_client(write("a", 1))
    await client.request()
    before = client.jar["session"]
    client.app = SessionMiddleware(
        streaming_app(lambda s: s["a"], lambda s: s.regenerate()), store=spy, clock=clock
    )
    with pytest.raises(CookieAlreadySent, match="regenerate"):
        await client.request()
    client.app = make_client(read("a")).app
    assert (await client.request()).text == "1"
    assert client.jar["session"] == before


async def test_a_late_invalidate_deletes_the_record(
    make_client: MakeClient, spy: SpyStore, clock: FakeClock
) -> None:
    client = make_client(write("a", 1))
    await client.request()
    client.app = SessionMiddleware(
        streaming_app(lambda s: s["a"], lambda s: s.invalidate()), store=spy, clock=clock
    )
    await client.request()
    client.app = make_client(lambda s: s.is_new).app
    assert (await client.request()).text == "True"


async def test_websocket_cookie_goes_into_accept_and_changes_save_on_close(
    spy: SpyStore, clock: FakeClock
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        await receive()  # websocket.connect
        session["joined"] = True
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            session.setdefault("said", []).append(message["text"])
        await send({"type": "websocket.close", "code": 1000})

    client = Client(SessionMiddleware(app, store=spy, clock=clock))
    sent = await client.websocket(incoming=["hi", "there"])
    accept = sent[0]
    assert accept["type"] == "websocket.accept"
    [(name, value)] = accept["headers"]
    assert name == b"set-cookie"
    assert value.startswith(b"session=")
    assert b"vary" not in [k for k, _ in accept["headers"]]

    async def show(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": repr(dict(scope["session"])).encode()})

    client.app = SessionMiddleware(show, store=spy, clock=clock)
    assert (await client.request()).text == "{'joined': True, 'said': ['hi', 'there']}"


async def test_websocket_rejected_before_accept_saves_nothing(
    spy: SpyStore, clock: FakeClock
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"]["a"] = 1
        await send({"type": "websocket.close", "code": 1008})

    sent = await Client(SessionMiddleware(app, store=spy, clock=clock)).websocket()
    assert sent == [{"type": "websocket.close", "code": 1008}]
    assert spy.writes == 0


async def test_other_scope_types_pass_through_untouched(spy: SpyStore) -> None:
    seen: list[Scope] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope)

    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await SessionMiddleware(app, store=spy)(scope, _no_body, _no_send)
    assert seen == [{"type": "lifespan", "asgi": {"version": "3.0"}}]
    assert sum(spy.calls.values()) == 0


async def _no_send(message: Message) -> None:
    raise AssertionError("nothing should be sent")


async def test_stacked_twice_acts_once(spy: SpyStore, clock: FakeClock) -> None:
    sessions: list[Session] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        sessions.append(scope["session"])
        scope["session"]["a"] = 1
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b""})

    inner = SessionMiddleware(app, store=spy, clock=clock)
    response = await Client(SessionMiddleware(inner, store=spy, clock=clock)).request()
    assert len(response.set_cookies) == 1
    assert response.values("vary") == ["Cookie"]
    assert spy.calls == {"create": 1}


async def test_a_foreign_session_in_the_scope_is_a_clear_error(spy: SpyStore) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError("not reached")

    async def other_middleware(scope: Scope, receive: Receive, send: Send) -> None:
        scope["session"] = {}
        await SessionMiddleware(app, store=spy)(scope, receive, send)

    with pytest.raises(RuntimeError, match="already set by another session middleware"):
        await Client(other_middleware).request()


async def test_regenerate_moves_the_data_to_a_new_id(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("cart", [1]))
    await client.request()
    old_cookie = client.jar["session"]
    old_key = spy.keys[-1]

    def login(session: Session) -> None:
        session.regenerate()
        session["user"] = "ada"

    client.app = make_client(login).app
    response = await client.request()
    assert len(response.set_cookies) == 1
    assert client.jar["session"] != old_cookie
    assert await spy.inner.load(old_key) is None
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == "{'cart': [1], 'user': 'ada'}"
    replay = await client.request(headers=[(b"cookie", f"session={old_cookie}".encode())])
    assert replay.text == "{}"


async def test_invalidate_deletes_the_record_and_the_cookie(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("user", "ada"), domain="example.com", path="/app")
    created = (await client.request()).set_cookies[0]
    old_cookie = client.jar["session"]
    client.app = make_client(lambda s: s.invalidate(), domain="example.com", path="/app").app
    response = await client.request()
    [deleted] = response.set_cookies
    assert cookie_attributes(deleted)["max-age"] == "0"
    assert created.split("; ")[2:] == deleted.split("; ")[3:]
    assert "session" not in client.jar
    assert len(spy.inner) == 0  # type: ignore[arg-type]
    client.app = make_client(lambda s: dict(s)).app
    replay = await client.request(headers=[(b"cookie", f"session={old_cookie}".encode())])
    assert replay.text == "{}"


async def test_writing_after_invalidate_starts_a_fresh_session(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("user", "ada"))
    await client.request()
    old_cookie = client.jar["session"]

    def logout(session: Session) -> None:
        session.invalidate()
        session["flash"] = "bye"

    client.app = make_client(logout).app
    response = await client.request()
    assert cookie_attributes(response.set_cookies[0])["max-age"] != "0"
    assert client.jar["session"] != old_cookie
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == "{'flash': 'bye'}"
    assert len(spy.inner) == 1  # type: ignore[arg-type]


async def test_explicit_save_persists_before_the_response(spy: SpyStore, clock: FakeClock) -> None:
    async def action(session: Session) -> int:
        session["a"] = 1
        await session.save()
        return spy.calls["create"]

    client = Client(SessionMiddleware(_responder(action), store=spy, clock=clock))
    response = await client.request()
    assert response.text == "1"
    assert len(response.set_cookies) == 1  # the cookie still goes out with the response
    assert spy.writes == 1


def _responder(action: Any) -> Any:
    from sesh.core.testing import responder

    return responder(action)


async def test_an_unstorable_value_names_the_key_and_keeps_the_old_session(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("a", 1))
    await client.request()

    def action(session: Session) -> None:
        session["a"] = 2
        session["file"] = open  # a function: not data

    client.app = make_client(action).app
    with pytest.raises(SessionDataError, match=r"session\['file'\] holds a builtin_function"):
        await client.request()
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == "{'a': 1}"


async def test_two_requests_changing_different_keys_both_win(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("base", 0))
    await client.request()
    engine = make_client().app.engine  # type: ignore[attr-defined]
    scope = client.scope("http", "/", None, "GET")
    first, second = engine.start(scope), engine.start(scope)
    await engine.load(first)
    await engine.load(second)
    first["a"] = 1
    second["b"] = 2
    await respond(engine, first)
    await respond(engine, second)
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == "{'base': 0, 'a': 1, 'b': 2}"


async def test_a_logout_racing_a_slow_request_is_never_undone(
    make_client: MakeClient, spy: SpyStore, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client(write("user", "ada"))
    await client.request()
    engine = make_client().app.engine  # type: ignore[attr-defined]
    scope = client.scope("http", "/", None, "GET")
    slow, logout = engine.start(scope), engine.start(scope)
    await engine.load(slow)
    await engine.load(logout)
    logout.invalidate()
    await respond(engine, logout)
    slow["cart"] = [1]
    with caplog.at_level(logging.WARNING, "sesh"):
        headers = await respond(engine, slow)
    assert [name for name, _ in headers] == [b"vary"]
    assert len(spy.inner) == 0  # type: ignore[arg-type]
    assert "refused to recreate" in caplog.text


async def test_concurrent_regenerates_leave_one_live_record(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(write("user", "ada"))
    await client.request()
    engine = make_client().app.engine  # type: ignore[attr-defined]
    scope = client.scope("http", "/", None, "GET")
    one, two = engine.start(scope), engine.start(scope)
    await engine.load(one)
    await engine.load(two)
    one.regenerate()
    two.regenerate()
    first = await respond(engine, one)
    second = await respond(engine, two)
    assert b"set-cookie" in [name for name, _ in first]
    assert b"set-cookie" not in [name for name, _ in second]
    assert len(spy.inner) == 1  # type: ignore[arg-type]


async def test_rotated_secret_re_signs_the_cookie(make_client: MakeClient) -> None:
    old_secret = "o" * 40
    client = make_client(write("a", 1), secret_key=old_secret)
    await client.request()
    old_cookie = client.jar["session"]
    client.app = make_client(read("a"), secret_key=[SECRET, old_secret]).app
    response = await client.request()
    assert response.text == "1"
    assert len(response.set_cookies) == 1
    assert client.jar["session"] != old_cookie
    client.app = make_client(read("a"), secret_key=SECRET).app
    response = await client.request()
    assert response.text == "1"
    assert response.set_cookies == []


async def test_secure_is_automatic_on_https(make_client: MakeClient) -> None:
    response = await make_client(write("a", 1), scheme="https").request()
    assert "secure" in cookie_attributes(response.set_cookies[0])


async def test_the_store_holds_bytes_never_live_objects(
    make_client: MakeClient, store: MemoryStore
) -> None:
    cart: list[int] = []
    client = make_client(write("cart", cart))
    await client.request()
    cart.append(1)  # after the commit: must not reach the store
    client.app = make_client(read("cart")).app
    assert (await client.request()).text == "[]"


async def test_the_unknown_id_of_a_client_is_never_adopted(
    make_client: MakeClient, spy: SpyStore
) -> None:
    planted = "A" * 43
    client = make_client(write("a", 1))
    await client.request(headers=[(b"cookie", f"session={planted}".encode())])
    assert spy.calls == {"load": 1, "create": 1}
    assert spy.keys[0] == store_key(planted)  # looked up by hash only
    assert spy.keys[1] != store_key(planted)
    assert client.jar["session"] != planted
    assert await spy.inner.load(store_key(planted)) is None
