"""The bareASGI drop-in, driving a real bareASGI application (http and websocket routes)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from importlib.metadata import version
from typing import Any

import bareasgi
import pytest
from bareasgi import HttpRequest, HttpResponse, WebSocketRequest

from sesh.adapters.bareasgi import (
    SESSION_CONTEXT_KEY,
    MemorySessionStorage,
    add_session_middleware,
    session_data,
)
from sesh.core import ConfigurationError, NoSessionMiddleware, OutageAnswer
from sesh.core import session_data as core_session_data
from sesh.core.errors import StoreUnavailable
from sesh.core.identity import Users, list_sessions, login, logout_everywhere
from sesh.core.testing import Client, FakeClock, cookie_attributes
from sesh.stores.cookie import CookieStore

from support.spy import SpyStore

pytestmark = pytest.mark.anyio
BAREASGI_5 = int(version("bareasgi").split(".")[0]) >= 5  # on Python 3.12 and newer


async def count(request: HttpRequest) -> HttpResponse:
    session = session_data(request)
    session["visits"] = session.get("visits", 0) + 1
    return HttpResponse.from_text(str(session["visits"]))


async def hello(request: HttpRequest) -> HttpResponse:
    return HttpResponse.from_text("hello")  # never touches the session


async def whoami(request: HttpRequest) -> HttpResponse:
    return HttpResponse.from_text(repr(dict(session_data(request))))


async def typed(request: HttpRequest) -> HttpResponse:
    session = session_data(request, dict)  # bareASGI-session 5's form
    session["typed"] = True
    return HttpResponse.from_text(repr(dict(session)))


async def stream(request: HttpRequest) -> HttpResponse:
    session = session_data(request)
    session["streamed"] = "started"

    async def body() -> Any:
        yield b"one "
        session["streamed"] = "finished"  # after the response started: a late save
        yield b"two"

    return HttpResponse(200, [(b"content-type", b"text/plain")], body())


async def chat(request: WebSocketRequest) -> None:
    session = session_data(request)
    session["joined"] = True
    await request.web_socket.accept()
    while isinstance(text := await request.web_socket.receive(), str) and text:
        session.setdefault("said", []).append(text)
        await request.web_socket.send(f"got {text}")
    await request.web_socket.close()


def make_app(storage: Any = None, **options: Any) -> bareasgi.Application:
    app = bareasgi.Application()
    routes = {"/": count, "/hello": hello, "/me": whoami, "/stream": stream, "/typed": typed}
    for path, handler in routes.items():
        app.http_router.add({"GET"}, path, handler)
    app.ws_router.add("/ws", chat)
    if storage is None:
        return add_session_middleware(app, **options)
    return add_session_middleware(app, storage, **options)


async def test_the_drop_in_counts_visits() -> None:
    client = Client(make_app(MemorySessionStorage()))
    assert [(await client.request("/")).text for _ in range(3)] == ["1", "2", "3"]


async def test_secure_defaults_unlike_bareasgi_session() -> None:
    client = Client(make_app())
    response = await client.request("/", headers=[(b"host", b"evil.example.com")])
    [set_cookie] = response.set_cookies
    attributes = cookie_attributes(set_cookie)
    assert attributes[""].startswith("bareASGI-session=")
    assert "httponly" in attributes
    assert attributes["samesite"] == "lax"
    assert "domain" not in attributes  # never taken from the Host header
    assert "max-age" not in attributes  # a browser session, as bareASGI-session's default
    assert attributes["path"] == "/"
    https = await Client(make_app(), scheme="https").request("/")
    assert "secure" in cookie_attributes(https.set_cookies[0])


async def test_its_keyword_arguments_keep_their_meaning_in_bytes_or_str() -> None:
    app = make_app(
        cookie_name=b"sid",
        max_age=timedelta(minutes=1),
        path=b"/",
        domain="example.com",
        secure=True,
        http_only=False,
        same_site=b"Strict",
        context_key="my-session",
    )
    with pytest.raises(NoSessionMiddleware):  # the handlers look under the default key
        await Client(app).request("/")
    app = bareasgi.Application()

    async def custom(request: HttpRequest) -> HttpResponse:
        session_data(request, context_key="my-session")["a"] = 1
        return HttpResponse.from_text("ok")

    app.http_router.add({"GET"}, "/", custom)
    add_session_middleware(
        app, cookie_name=b"sid", max_age=60, domain=b"example.com", secure=True,
        http_only=False, same_site=b"Strict", context_key="my-session",
    )  # fmt: skip
    attributes = cookie_attributes((await Client(app).request("/")).set_cookies[0])
    assert attributes[""].startswith("sid=")
    assert attributes["max-age"] == "60"
    assert attributes["domain"] == "example.com"
    assert attributes["samesite"] == "strict"
    assert "secure" in attributes
    assert "httponly" not in attributes


async def test_expires_becomes_a_lifetime() -> None:
    expires = datetime.now(timezone.utc) + timedelta(hours=1)
    response = await Client(make_app(expires=expires)).request("/")
    assert 3590 <= int(cookie_attributes(response.set_cookies[0])["max-age"]) <= 3600


async def test_a_client_id_is_never_adopted(clock: FakeClock) -> None:
    spy = SpyStore(MemorySessionStorage(clock=clock))
    client = Client(make_app(spy, clock=clock))
    planted = "P" * 43
    response = await client.request(
        "/", headers=[(b"cookie", f"bareASGI-session={planted}".encode())]
    )
    assert planted not in response.set_cookies[0]
    assert spy.calls == {"load": 1, "create": 1}


async def test_requests_that_never_use_the_session_create_none(clock: FakeClock) -> None:
    spy = SpyStore(MemorySessionStorage(clock=clock))
    client = Client(make_app(spy, clock=clock))
    for _ in range(100):
        response = await client.request("/hello")
        assert response.text == "hello"
        assert response.set_cookies == []
    assert sum(spy.calls.values()) == 0


async def test_sessions_expire_in_the_memory_store(clock: FakeClock) -> None:
    client = Client(make_app(MemorySessionStorage(clock=clock), max_age=60, clock=clock))
    assert (await client.request("/")).text == "1"
    clock.advance(61)
    assert (await client.request("/")).text == "1"


async def test_any_sesh_store_can_be_the_storage() -> None:
    client = Client(make_app(CookieStore("a-cookie-store-secret-0123456789-abcdef")))
    assert [(await client.request("/")).text for _ in range(2)] == ["1", "2"]


async def test_the_core_accessor_sees_the_same_session() -> None:
    app = bareasgi.Application()

    async def both(request: HttpRequest) -> HttpResponse:
        same = core_session_data(request) is session_data(request)
        return HttpResponse.from_text(str(same))

    app.http_router.add({"GET"}, "/", both)
    add_session_middleware(app)
    assert (await Client(app).request("/")).text == "True"


async def test_session_data_takes_a_type_as_bareasgi_session_5_does() -> None:
    client = Client(make_app())
    assert (await client.request("/typed")).text == "{'typed': True}"
    assert (await client.request("/me")).text == "{'typed': True}"


async def test_late_changes_while_streaming_are_saved() -> None:
    client = Client(make_app())
    assert (await client.request("/stream")).text == "one two"
    assert (await client.request("/me")).text == "{'streamed': 'finished'}"


async def test_websocket_routes_get_the_session_and_save_it_on_close() -> None:
    client = Client(make_app())
    await client.request("/")
    sent = await client.websocket("/ws", ["hi", "there"])
    assert sent[0]["type"] == "websocket.accept"
    assert [m["text"] for m in sent if m["type"] == "websocket.send"] == ["got hi", "got there"]
    assert (await client.request("/me")).text == (
        "{'visits': 1, 'joined': True, 'said': ['hi', 'there']}"
    )


async def test_a_new_session_opened_on_a_websocket_sets_its_cookie_at_accept() -> None:
    client = Client(make_app())
    sent = await client.websocket("/ws", ["hi"])
    [(name, value)] = sent[0]["headers"]
    assert name == b"set-cookie"
    assert value.startswith(b"bareASGI-session=")
    assert (await client.request("/me")).text == "{'joined': True, 'said': ['hi']}"


@pytest.mark.skipif(not BAREASGI_5, reason="bareASGI 4 has no close reason or state")
async def test_the_websocket_keeps_what_bareasgi_5_added() -> None:
    seen: list[Any] = []

    async def leave(request: WebSocketRequest) -> None:
        socket: Any = request.web_socket  # bareASGI 4's type stubs lack what 5 added
        session_data(request)["left"] = True
        seen.append(socket.state)
        await socket.accept()
        seen.append(socket.state)
        await socket.close(4000, "bye")
        await socket.wait_closed()
        seen.extend((socket.state, socket.code, socket.reason))

    app = add_session_middleware(bareasgi.Application())
    app.ws_router.add("/ws", leave)
    app.http_router.add({"GET"}, "/me", whoami)
    client = Client(app)
    sent = await client.websocket("/ws")
    assert sent[-1] == {"type": "websocket.close", "code": 4000, "reason": "bye"}
    assert seen == ["connected", "open", "closed", 4000, "bye"]
    assert (await client.request("/me")).text == "{'left': True}"


class Down(MemorySessionStorage):
    async def load(self, key: str) -> Any:
        raise StoreUnavailable("down")

    async def create(self, key: str, record: Any, ttl: float) -> bool:
        raise StoreUnavailable("down")


async def test_an_outage_answers_503() -> None:
    client = Client(make_app(Down()))
    response = await client.request("/")
    assert response.status == 503
    assert response.set_cookies == []


async def test_the_outage_answer_is_the_apps_to_shape() -> None:
    answer = OutageAnswer(status=503, body=b'{"error": 1}', content_type="application/json")
    response = await Client(make_app(Down(), outage_answer=answer)).request("/")
    assert (response.status, response.body) == (503, b'{"error": 1}')
    assert response.values("content-type") == ["application/json"]


def test_an_asgi_app_as_outage_answer_is_refused_in_bareasgi() -> None:
    async def other(scope: Any, receive: Any, send: Any) -> None: ...

    with pytest.raises(ConfigurationError, match="OutageAnswer"):
        make_app(Down(), outage_answer=other)


async def test_without_the_middleware_the_error_names_the_fix() -> None:
    app = bareasgi.Application()
    app.http_router.add({"GET"}, "/", count)
    with pytest.raises(NoSessionMiddleware, match="add_session_middleware"):
        await Client(app).request("/")


async def test_a_skipped_path_has_no_session_and_the_error_says_why() -> None:
    spy = SpyStore(MemorySessionStorage())
    client = Client(make_app(spy, skip_paths=["/hello", "/ws"]))
    assert (await client.request("/")).text == "1"
    calls = sum(spy.calls.values())
    response = await client.request("/hello")
    assert response.text == "hello"
    assert response.set_cookies == []
    with pytest.raises(NoSessionMiddleware, match=r"'/ws'.*skip_paths"):
        await client.websocket("/ws", ["hi"])  # the handler runs, with no session to use
    assert sum(spy.calls.values()) == calls  # neither loaded a session
    app = make_app(skip_paths="/me")
    with pytest.raises(NoSessionMiddleware, match=r"'/me'.*skip_paths"):
        await Client(app).request("/me")


def test_it_returns_the_app_as_bareasgi_session_does() -> None:
    assert SESSION_CONTEXT_KEY == "__bareasgi_session__"
    app = bareasgi.Application()
    assert add_session_middleware(app, MemorySessionStorage()) is app
    assert len(app.middlewares) == 1
    assert len(app.ws_middlewares) == 1


# -- identity: the core helpers, from session_data(request) --------------------------------


async def test_logins_devices_and_the_current_user_in_bare_asgi() -> None:
    async def load(user_id: str) -> str | None:
        return {"1": "ada"}.get(user_id)

    users = Users(load)

    async def log_in(request: HttpRequest) -> HttpResponse:
        login(session_data(request), 1, user_agent="bareASGI test")
        return HttpResponse.from_text("ok")

    async def me(request: HttpRequest) -> HttpResponse:
        user = await users.current(request)
        found = await list_sessions(session_data(request), 1, current=session_data(request))
        return HttpResponse.from_text(f"{user} {[info.user_agent for info in found]}")

    async def everywhere(request: HttpRequest) -> HttpResponse:
        ended = await logout_everywhere(session_data(request), 1)
        return HttpResponse.from_text(str(ended))

    app = bareasgi.Application()
    for path, handler in {"/login": log_in, "/me": me, "/everywhere": everywhere}.items():
        app.http_router.add({"GET"}, path, handler)
    app = add_session_middleware(app, MemorySessionStorage())
    phone, laptop = Client(app), Client(app)
    assert (await phone.request("/me")).text == "None []"
    await phone.request("/login")
    await laptop.request("/login")
    assert (await phone.request("/me")).text == "ada ['bareASGI test', 'bareASGI test']"
    assert (await laptop.request("/everywhere")).text == "2"
    assert (await phone.request("/me")).text == "None []"
