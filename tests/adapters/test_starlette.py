"""The Starlette drop-in, against the real Starlette (and FastAPI) in both directions."""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest
import starlette
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.datastructures import Secret
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessions
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from sesh.adapters.starlette import SessionMiddleware, StarletteCookieStore
from sesh.core import ConfigurationError, SessionDataError
from sesh.core.testing import FakeClock, cookie_attributes
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

SECRET = "the-application-secret-key-0123456789-abcdef"


async def show(request: Request) -> JSONResponse:
    return JSONResponse(dict(request.session))


async def login(request: Request) -> JSONResponse:
    request.session["user"] = request.query_params.get("user", "ada")
    request.session["visits"] = request.session.get("visits", 0) + 1
    return JSONResponse(dict(request.session))


async def logout(request: Request) -> JSONResponse:
    request.session.clear()
    return JSONResponse({})


async def touch_then_fail(request: Request) -> Response:
    request.session["broken"] = True
    return Response("no", status_code=500)


async def chat(websocket: WebSocket) -> None:
    await websocket.accept()
    text = await websocket.receive_text()
    websocket.session["said"] = text
    await websocket.send_json(dict(websocket.session))
    await websocket.close()


ROUTES = [
    Route("/", show),
    Route("/login", login),
    Route("/logout", logout),
    Route("/fail", touch_then_fail),
    WebSocketRoute("/ws", chat),
]


def starlette_app(middleware: Any, **options: Any) -> Starlette:
    return Starlette(
        routes=ROUTES, middleware=[Middleware(middleware, secret_key=SECRET, **options)]
    )


def test_the_drop_in_behaves_like_starlette() -> None:
    with TestClient(starlette_app(SessionMiddleware)) as client:
        assert client.get("/").json() == {}
        assert client.get("/login").json() == {"user": "ada", "visits": 1}
        assert client.get("/login").json() == {"user": "ada", "visits": 2}
        assert client.get("/").json() == {"user": "ada", "visits": 2}
        response = client.get("/logout")
        assert cookie_attributes(response.headers["set-cookie"])["max-age"] == "0"
        assert client.get("/").json() == {}


def visit(app: Starlette, path: str, cookie: str | None) -> tuple[Any, str | None]:
    """One request with an explicit cookie; the answer and the cookie the browser now has."""
    headers = {} if cookie is None else {"cookie": f"session={cookie}"}
    with TestClient(app) as client:
        response = client.get(path, headers=headers)
    set_cookie = response.headers.get("set-cookie")
    if set_cookie is not None:
        cookie = set_cookie.split(";")[0].split("=", 1)[1]
    return response.json(), cookie


def test_starlette_cookies_are_read_by_sesh() -> None:
    theirs, ours = starlette_app(StarletteSessions), starlette_app(SessionMiddleware)
    _, cookie = visit(theirs, "/login?user=grace", None)
    assert visit(ours, "/", cookie)[0] == {"user": "grace", "visits": 1}
    body, cookie = visit(ours, "/login?user=grace", cookie)
    assert body == {"user": "grace", "visits": 2}
    assert visit(theirs, "/", cookie)[0] == {"user": "grace", "visits": 2}


def test_sesh_cookies_are_read_by_starlette() -> None:
    _, cookie = visit(starlette_app(SessionMiddleware), "/login?user=linus", None)
    assert visit(starlette_app(StarletteSessions), "/", cookie)[0] == {"user": "linus", "visits": 1}


def test_a_secret_wrapped_in_starlette_secret_works() -> None:
    app = Starlette(
        routes=ROUTES, middleware=[Middleware(SessionMiddleware, secret_key=Secret(SECRET))]
    )
    with TestClient(app) as client:
        client.get("/login")
        assert client.get("/").json() == {"user": "ada", "visits": 1}


SETTINGS: list[dict[str, Any]] = [
    {},
    {"max_age": 3600, "path": "/", "same_site": "strict"},
    {"max_age": None},
    {"https_only": True, "domain": "example.com", "same_site": "none"},
    {"https_only": True, "partitioned": True, "session_cookie": "sid"},
]

STARLETTE_OPTIONS = inspect.signature(StarletteSessions).parameters


def attributes(header: str) -> dict[str, str]:
    found = cookie_attributes(header)
    found.pop("")
    return found


@pytest.mark.parametrize("settings", SETTINGS)
def test_cookie_attributes_are_written_the_same_way(settings: dict[str, Any]) -> None:
    if "partitioned" in settings and "partitioned" not in STARLETTE_OPTIONS:
        pytest.skip("Starlette's own middleware takes `partitioned` from 1.7 on")
    name = settings.get("session_cookie", "session")
    headers = {}
    for kind in (StarletteSessions, SessionMiddleware):
        with TestClient(starlette_app(kind, **settings), base_url="http://example.com") as client:
            response = client.get("/login")
            headers[kind] = attributes(response.headers["set-cookie"])
            assert response.headers["set-cookie"].startswith(f"{name}=")
    theirs, ours = headers[StarletteSessions], headers[SessionMiddleware]
    assert {k: v.lower() for k, v in ours.items()} == {k: v.lower() for k, v in theirs.items()}


@pytest.mark.parametrize("settings", SETTINGS[:3])
def test_clearing_deletes_the_cookie_with_the_same_attributes(settings: dict[str, Any]) -> None:
    with TestClient(starlette_app(SessionMiddleware, **settings)) as client:
        created = attributes(client.get("/login").headers["set-cookie"])
        deleted = attributes(client.get("/logout").headers["set-cookie"])
        assert deleted.pop("max-age") == "0"
        assert deleted.pop("expires") == "Thu, 01 Jan 1970 00:00:00 GMT"
        created.pop("max-age", None)
        assert deleted == created


def test_unlike_starlette_nothing_is_written_when_nothing_changed() -> None:
    with TestClient(starlette_app(SessionMiddleware)) as client:
        client.get("/login")
        response = client.get("/")
        assert "set-cookie" not in response.headers
        assert response.headers["vary"] == "Cookie"


def test_no_save_on_a_server_error() -> None:
    with TestClient(starlette_app(SessionMiddleware)) as client:
        client.get("/login")
        response = client.get("/fail")
        assert response.status_code == 500
        assert "set-cookie" not in response.headers
        assert client.get("/").json() == {"user": "ada", "visits": 1}


@pytest.mark.parametrize("cookie", ["garbage", "null", "", "e30=.bad.sig", "e30="])
def test_bad_cookies_are_no_session(cookie: str) -> None:
    with TestClient(starlette_app(SessionMiddleware), cookies={"session": cookie}) as client:
        response = client.get("/")
        assert response.status_code == 200
        assert response.json() == {}


def test_expired_starlette_cookies_are_refused() -> None:
    clock = FakeClock(time.time())
    with TestClient(starlette_app(SessionMiddleware, max_age=60, clock=clock)) as client:
        client.get("/login")
        clock.advance(61)
        assert client.get("/").json() == {}


def test_json_only_values_in_starlette_format() -> None:
    async def put_bytes(request: Request) -> JSONResponse:
        request.session["raw"] = b"\x00"
        return JSONResponse({})

    app = Starlette(
        routes=[Route("/", put_bytes)],
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET)],
    )
    with (
        TestClient(app) as client,
        pytest.raises(SessionDataError, match=r"session\['raw'\] holds a bytes"),
    ):
        client.get("/")


@pytest.mark.parametrize(
    "store", [lambda: MemoryStore(), lambda: CookieStore(SECRET)], ids=["memory", "cookie"]
)
def test_store_switches_the_same_app_to_any_sesh_store(store: Callable[[], Any]) -> None:
    with TestClient(starlette_app(SessionMiddleware, store=store())) as client:
        client.get("/login")
        assert client.get("/login").json() == {"user": "ada", "visits": 2}
        with client.websocket_connect("/ws") as websocket:
            websocket.send_text("hello")
            assert websocket.receive_json() == {"user": "ada", "visits": 2, "said": "hello"}


def test_websocket_changes_are_saved_with_a_server_side_store() -> None:
    with TestClient(starlette_app(SessionMiddleware, store=MemoryStore())) as client:
        client.get("/login")
        with client.websocket_connect("/ws") as websocket:
            websocket.send_text("hello")
            websocket.receive_json()
        assert client.get("/").json() == {"user": "ada", "visits": 1, "said": "hello"}


def test_short_secrets_are_refused_with_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        SessionMiddleware(Starlette(), secret_key="too-short")


def test_fastapi_request_session_works() -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET)

    @app.get("/count")
    def count(request: Request) -> dict[str, int]:  # a plain def: runs in the threadpool
        request.session["n"] = request.session.get("n", 0) + 1
        return {"n": request.session["n"]}

    with TestClient(app) as client:
        assert [client.get("/count").json()["n"] for _ in range(3)] == [1, 2, 3]


def test_the_legacy_store_rotates_secrets() -> None:
    old = "an-old-application-secret-0123456789-xyz"
    theirs_old = Starlette(
        routes=ROUTES, middleware=[Middleware(StarletteSessions, secret_key=old)]
    )
    _, cookie = visit(theirs_old, "/login", None)
    ours = starlette_app(SessionMiddleware, store=StarletteCookieStore([SECRET, old]))
    body, resigned = visit(ours, "/", cookie)
    assert body == {"user": "ada", "visits": 1}
    assert resigned != cookie  # re-signed with the new secret, though nothing changed
    assert visit(starlette_app(StarletteSessions), "/", resigned)[0] == {"user": "ada", "visits": 1}
    assert visit(starlette_app(StarletteSessions), "/", cookie)[0] == {}  # the old one fails


def test_the_core_middleware_mounts_in_starlette_too() -> None:
    """Also a typing check: Middleware(...) must accept both classes under mypy --strict."""
    from sesh.core import SessionMiddleware as CoreMiddleware

    app = Starlette(
        routes=ROUTES, middleware=[Middleware(CoreMiddleware, store=MemoryStore(), max_age=60)]
    )
    with TestClient(app) as client:
        client.get("/login")
        assert client.get("/").json() == {"user": "ada", "visits": 1}


def test_starlette_cookies_with_nan_are_read() -> None:
    async def put_nan(request: Request) -> JSONResponse:
        request.session["ratio"] = float("nan")
        request.session["big"] = float("inf")
        return JSONResponse({})

    async def describe(request: Request) -> Response:
        return Response(repr(sorted(request.session.items())))

    theirs = Starlette(
        routes=[Route("/put", put_nan)],
        middleware=[Middleware(StarletteSessions, secret_key=SECRET)],
    )
    ours = Starlette(
        routes=[Route("/", describe)],
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET)],
    )
    with TestClient(theirs) as client:
        cookie = client.get("/put").headers["set-cookie"].split(";")[0].split("=", 1)[1]
    with TestClient(ours) as client:
        response = client.get("/", headers={"cookie": f"session={cookie}"})
    assert response.text == "[('big', inf), ('ratio', nan)]"


def test_browser_session_cookies_still_end_on_the_server() -> None:
    clock = FakeClock(time.time())
    with TestClient(starlette_app(SessionMiddleware, max_age=None, clock=clock)) as client:
        response = client.get("/login")
        assert "max-age" not in attributes(response.headers["set-cookie"])
        clock.advance(14 * 86400 - 1)
        assert client.get("/").json() == {"user": "ada", "visits": 1}
        clock.advance(2)
        assert client.get("/").json() == {}


@pytest.mark.parametrize("stamp", [2**40, -5, 2**70], ids=["future", "negative", "absurd"])
def test_a_well_signed_starlette_cookie_with_a_bad_timestamp_is_no_session(stamp: int) -> None:
    import itsdangerous
    from itsdangerous.encoding import base64_encode

    raw = stamp.to_bytes(16, "big", signed=True).lstrip(b"\x00") if stamp > 0 else b"\xff" * 9
    value = b"eyJ1c2VyIjogImV2ZSJ9." + base64_encode(raw)  # {"user": "eve"}
    forged = itsdangerous.Signer(SECRET).sign(value).decode()  # Starlette's key, any stamp
    with TestClient(starlette_app(SessionMiddleware)) as client:
        response = client.get("/", headers={"cookie": f"session={forged}"})
    assert response.status_code == 200
    assert response.json() == {}


# -- the session is the dict Starlette apps expect --------------------------------------------


async def as_json(request: Request) -> JSONResponse:
    return JSONResponse(request.session)


async def only_touch(request: Request) -> Response:
    request.session  # noqa: B018 - Starlette's request.session marks the session accessed
    return Response("ok")


async def chat_until_the_client_leaves(websocket: WebSocket) -> None:
    # The canonical loop: it ends with WebSocketDisconnect when the client goes away.
    await websocket.accept()
    while True:
        text = await websocket.receive_text()
        websocket.session["said"] = [*websocket.session.get("said", []), text]
        await websocket.send_text("ok")


def dict_app(**options: Any) -> Starlette:
    routes = [
        Route("/login", login),
        Route("/json", as_json),
        Route("/touch", only_touch),
        WebSocketRoute("/loop", chat_until_the_client_leaves),
    ]
    return Starlette(
        routes=routes, middleware=[Middleware(SessionMiddleware, secret_key=SECRET, **options)]
    )


def test_json_response_of_the_session_shows_its_values() -> None:
    with TestClient(dict_app()) as client:
        client.get("/login")
        response = client.get("/json")
        assert response.json() == {"user": "ada", "visits": 1}


STARLETTE = tuple(int(part) for part in starlette.__version__.split(".")[:2])


@pytest.mark.skipif(STARLETTE < (1, 10), reason="Starlette calls mark_accessed() from 1.10")
def test_request_session_marks_it_accessed_as_starlette_does() -> None:
    for app in (dict_app(), dict_app(store=MemoryStore())):
        with TestClient(app) as client:
            client.get("/login")
            response = client.get("/touch")
            assert response.headers["vary"] == "Cookie"
            assert "set-cookie" not in response.headers


def talk_then_leave(client: TestClient) -> None:
    with client.websocket_connect("/loop") as websocket:
        for text in ("a", "b"):
            websocket.send_text(text)
            assert websocket.receive_text() == "ok"


def test_a_websocket_the_client_leaves_saves_its_changes() -> None:
    with TestClient(dict_app(store=MemoryStore())) as client:
        client.get("/login")
        # Leaving sends websocket.disconnect: receive_text() raises WebSocketDisconnect in
        # the app, which is how such a socket ends (sesh lets it through, and the test
        # client hands it back here).
        with pytest.raises(WebSocketDisconnect):
            talk_then_leave(client)
        assert client.get("/json").json() == {"user": "ada", "visits": 1, "said": ["a", "b"]}


def test_starlettes_own_middleware_inside_sesh_is_named_in_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = Starlette(
        routes=ROUTES,
        middleware=[
            Middleware(SessionMiddleware, secret_key=SECRET),  # outermost
            Middleware(StarletteSessions, secret_key=SECRET),  # replaces scope["session"]
        ],
    )
    with TestClient(app) as client, caplog.at_level("WARNING", logger="sesh"):
        client.get("/login")
        client.get("/login")
    assert caplog.text.count("another session middleware inside sesh's replaced") == 1
    assert "remove the other middleware" in caplog.text
