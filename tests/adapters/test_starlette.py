"""The Starlette drop-in, against the real Starlette (and FastAPI) in both directions."""

from __future__ import annotations

import base64
import inspect
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest
import starlette
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis import strategies as st
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
from sesh.core import ConfigurationError, NotInThisFormat, Session, SessionDataError, session_data
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


def test_a_short_secret_works_with_one_warning_naming_the_fix(
    caplog: pytest.LogCaptureFixture,
) -> None:
    theirs = Starlette(routes=ROUTES, middleware=[Middleware(StarletteSessions, secret_key="s")])
    _, cookie = visit(theirs, "/login", None)
    caplog.set_level(logging.WARNING)
    app = Starlette(routes=ROUTES, middleware=[Middleware(SessionMiddleware, secret_key="s")])
    body, cookie = visit(app, "/login", cookie)  # Starlette's cookie, and one of ours
    assert body == {"user": "ada", "visits": 2}
    assert visit(theirs, "/", cookie)[0] == {"user": "ada", "visits": 2}
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "shorter than 32 bytes" in warnings[0]
    assert "secret_key=[new, old]" in warnings[0]


def test_a_short_secret_also_signs_ids_for_a_server_side_store() -> None:
    with TestClient(starlette_app_with("s", store=MemoryStore())) as client:
        client.get("/login")
        assert client.get("/").json() == {"user": "ada", "visits": 1}
        assert client.cookies["session"].count(".") == 2  # <id>.<deadline>.<tag>


def starlette_app_with(secret_key: Any, **options: Any) -> Starlette:
    return Starlette(
        routes=ROUTES, middleware=[Middleware(SessionMiddleware, secret_key=secret_key, **options)]
    )


@pytest.mark.parametrize("secret_key", [None, b"bytes-secret-0123456789-0123456789", [], ""])
def test_a_secret_of_no_use_is_refused_at_construction(secret_key: Any) -> None:
    with pytest.raises(ConfigurationError, match="secret_key"):
        SessionMiddleware(Starlette(), secret_key=secret_key)


def test_a_list_of_secrets_rotates_them() -> None:
    old = "an-old-application-secret-0123456789-xyz"
    _, cookie = visit(starlette_app_with(old, store=None), "/login", None)
    body, resigned = visit(starlette_app_with([SECRET, Secret(old)]), "/", cookie)
    assert body == {"user": "ada", "visits": 1}  # still logged in after the rotation
    assert resigned != cookie
    assert visit(starlette_app(StarletteSessions), "/", resigned)[0] == body  # new secret


@pytest.mark.parametrize("max_age", [0, -1])
def test_max_age_zero_or_less_keeps_nothing_as_in_starlette(max_age: int) -> None:
    with TestClient(starlette_app_with(SECRET, max_age=max_age)) as client:
        response = client.get("/login")
        assert response.json() == {"user": "ada", "visits": 1}  # usable during the request
        assert "; Max-Age=0; " in response.headers["set-cookie"]
        assert client.get("/").json() == {}
    made_by_starlette = Starlette(
        routes=ROUTES, middleware=[Middleware(StarletteSessions, secret_key=SECRET, max_age=60)]
    )
    _, cookie = visit(made_by_starlette, "/login", None)
    # A cookie Starlette made moments ago is no session either: nothing lives past its
    # response (Starlette itself would still take it within the second it was made).
    assert visit(starlette_app_with(SECRET, max_age=max_age), "/", cookie)[0] == {}


def test_max_age_zero_with_a_server_side_store_stores_nothing() -> None:
    store = MemoryStore()
    with TestClient(starlette_app_with(SECRET, max_age=0, store=store)) as client:
        assert client.get("/login").json() == {"user": "ada", "visits": 1}
        assert client.get("/").json() == {}
    assert not store._records  # nothing was ever written


def test_every_starlette_argument_is_accepted() -> None:
    ours = inspect.signature(SessionMiddleware).parameters
    for name, parameter in STARLETTE_OPTIONS.items():
        assert name in ours
        assert ours[name].default == parameter.default, name


# -- what Starlette's cookie format cannot carry is refused, never ignored -----------------


def test_idle_timeout_in_starlettes_format_is_refused_naming_the_fix() -> None:
    with pytest.raises(ConfigurationError, match="store=CookieStore"):
        SessionMiddleware(Starlette(), secret_key=SECRET, idle_timeout=60)
    SessionMiddleware(Starlette(), secret_key=SECRET, idle_timeout=60, store=MemoryStore())


@pytest.mark.parametrize(
    "use",
    [
        lambda session: session.id,
        lambda session: session.regenerate(),
        lambda session: session.set_expiry(60),
    ],
    ids=["id", "regenerate", "set_expiry"],
)
def test_what_starlettes_format_cannot_carry_raises_naming_the_fix(
    use: Callable[[Session], Any],
) -> None:
    async def route(request: Request) -> Response:
        request.session["user"] = "ada"
        with pytest.raises(NotInThisFormat, match="store=CookieStore"):
            use(session_data(request))
        return Response("refused")

    app = Starlette(
        routes=[Route("/", route)], middleware=[Middleware(SessionMiddleware, secret_key=SECRET)]
    )
    with TestClient(app) as client:
        assert client.get("/").text == "refused"


@pytest.mark.parametrize("store", [lambda: MemoryStore(), lambda: CookieStore(SECRET)])
def test_the_id_is_stable_for_the_life_of_a_session_in_sesh_stores(
    store: Callable[[], Any],
) -> None:
    async def show_id(request: Request) -> Response:
        session = session_data(request)
        session.setdefault("user", "ada")
        return Response(session.id)

    app = Starlette(
        routes=[Route("/", show_id)],
        middleware=[Middleware(SessionMiddleware, secret_key=SECRET, store=store())],
    )
    with TestClient(app) as client:
        assert len({client.get("/").text for _ in range(3)}) == 1


# -- any cookie a trusted signer could have made is a session or none, never a 500 ----------


def starlette_sign(values: Any, secret: str = SECRET) -> str:
    """The cookie Starlette itself makes of ``values`` (any JSON, or JSON text as a
    ``RawJSON``), with its own signer."""
    import itsdangerous

    text = values.text if isinstance(values, RawJSON) else json.dumps(values)
    body = base64.b64encode(text.encode())
    return itsdangerous.TimestampSigner(secret).sign(body).decode()


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=10,
)


@settings(max_examples=60, deadline=None)
@given(values=st.dictionaries(st.text(), JSON, max_size=4))
def test_any_json_starlette_signs_is_a_session_or_none(values: dict[str, Any]) -> None:
    with TestClient(starlette_app(SessionMiddleware)) as client:
        response = client.get("/", headers={"cookie": f"session={starlette_sign(values)}"})
    assert response.status_code == 200
    assert response.json() in ({}, json.loads(json.dumps(values)))


class RawJSON:
    def __init__(self, text: str) -> None:
        self.text = text


HOSTILE: dict[str, Any] = {
    "a huge integer": {"n": 2**80},
    "a huge negative integer": {"n": -(2**80)},
    "deep nesting": RawJSON('{"n": ' + "[" * 900 + "]" * 900 + "}"),  # json.dumps makes it
    "deeper nesting": RawJSON('{"n": ' + "[" * 15_000 + "]" * 15_000 + "}"),
    "a number past float": {"n": 10**400},
    "not an object": RawJSON("[1, 2]"),
    "a lone surrogate": RawJSON('{"n": "\\ud800"}'),
}


@pytest.mark.parametrize("values", list(HOSTILE.values()), ids=list(HOSTILE))
def test_odd_cookies_are_a_session_or_none_even_beside_a_good_one(values: Any) -> None:
    hostile = starlette_sign(values)
    good = starlette_sign({"user": "ada"})
    with TestClient(starlette_app(SessionMiddleware)) as client:
        alone = client.get("/", headers={"cookie": f"session={hostile}"})
        beside = client.get("/", headers={"cookie": f"session={hostile}; session={good}"})
        with client.websocket_connect("/ws", headers={"cookie": f"session={hostile}"}) as ws:
            ws.send_text("hi")
            socket = ws.receive_json()
    assert alone.status_code == beside.status_code == 200
    if alone.json() == {}:  # no session: then the good cookie beside it is the session
        assert beside.json() == {"user": "ada"}
        assert socket == {"said": "hi"}
    else:  # a session sesh can keep (deep, but within what json.dumps makes)
        assert values is HOSTILE["deep nesting"]
        assert alone.json() == json.loads(values.text)
        assert beside.json() == {}  # two different valid values: neither is trusted
        assert socket == {**json.loads(values.text), "said": "hi"}


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
