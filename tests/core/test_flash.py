"""Flash messages: kept in the session across a redirect, read once, by category, bounded;
the same functions in plain ASGI, Starlette, FastAPI and bareASGI."""

from __future__ import annotations

from typing import Any

import bareasgi
import pytest
from bareasgi import HttpRequest, HttpResponse
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from sesh.adapters import bareasgi as sesh_bareasgi
from sesh.adapters.fastapi import SessionDep
from sesh.adapters.starlette import SessionMiddleware as StarletteSessionMiddleware
from sesh.core import Session, SessionEngine, SessionMiddleware, session_data
from sesh.core.flash import FLASH_KEY, MAX_FLASHES, Flash, flash, flashes
from sesh.core.testing import Client, read_session, responder
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

from support.spy import SpyStore

pytestmark = pytest.mark.anyio
SECRET = "a-flash-test-secret-0123456789-abcdef"


def session(**values: Any) -> Session:
    """A new session of a request, as an app's route gets it."""
    new = SessionEngine(MemoryStore()).start({"type": "http", "headers": []})
    new.update(values)
    return new


def test_messages_are_read_once_oldest_first() -> None:
    s = session()
    flash(s, "Saved.")
    flash(s, "Mind the quota.", "warning")
    assert flashes(s) == [Flash("message", "Saved."), Flash("warning", "Mind the quota.")]
    assert flashes(s) == []
    assert FLASH_KEY not in s


def test_categories_read_only_theirs_and_the_rest_wait() -> None:
    s = session()
    for category, message in [("error", "a"), ("info", "b"), ("error", "c"), ("success", "d")]:
        flash(s, message, category)
    assert [m for _, m in flashes(s, "error")] == ["a", "c"]
    assert flashes(s, "error") == []
    assert flashes(s, "info", "success") == [Flash("info", "b"), Flash("success", "d")]
    assert FLASH_KEY not in s


def test_the_same_message_twice_is_shown_twice() -> None:
    s = session()
    flash(s, "Saved.")
    flash(s, "Saved.")
    assert flashes(s) == [Flash("message", "Saved.")] * 2


def test_a_client_that_never_reads_keeps_only_the_newest() -> None:
    s = session()
    for number in range(MAX_FLASHES + 10):
        flash(s, str(number))
    assert [m for _, m in flashes(s)] == [str(n) for n in range(10, MAX_FLASHES + 10)]


@pytest.mark.parametrize(("message", "category"), [(b"bytes", "info"), ("ok", 3), (None, "x")])
def test_a_message_that_is_not_text_is_refused(message: Any, category: Any) -> None:
    with pytest.raises(TypeError, match="are str"):
        flash(session(), message, category)


@pytest.mark.parametrize(
    "stored", ["a str", [["only one"]], [[1, 2]], {"a": "b"}, [["a", "b", "c"]]]
)
def test_a_value_written_by_someone_else_is_not_shown(stored: Any) -> None:
    s = session(**{FLASH_KEY: stored})
    assert flashes(s) == []
    flash(s, "mine")
    assert flashes(s) == [Flash("message", "mine")]


async def test_reading_none_writes_nothing_and_makes_no_session() -> None:
    spy = SpyStore(MemoryStore())
    client = Client(SessionMiddleware(responder(flashes), store=spy))
    response = await client.request()
    assert response.text == "[]"
    assert response.set_cookies == []
    assert spy.writes == 0


@pytest.mark.parametrize("store", [MemoryStore(), CookieStore(SECRET)], ids=["memory", "cookie"])
async def test_a_message_survives_the_redirect_in_plain_asgi(store: Any) -> None:
    def route(s: Session) -> Any:
        if "posted" not in s:
            s["posted"] = True
            flash(s, "Saved.", "success")
            return None
        return flashes(s)

    client = Client(SessionMiddleware(responder(route), store=store, secret_key=SECRET))
    await client.request(method="POST")
    assert (await client.request()).text == "[Flash(category='success', message='Saved.')]"
    assert (await client.request()).text == "[]"


def test_starlette() -> None:
    async def save(request: Request) -> Response:
        flash(session_data(request), "Saved.", "success")
        return Response(status_code=303, headers={"location": "/"})

    async def page(request: Request) -> Response:
        return JSONResponse([list(f) for f in flashes(session_data(request))])

    app = Starlette(routes=[Route("/save", save, methods=["POST"]), Route("/", page)])
    app.add_middleware(StarletteSessionMiddleware, secret_key=SECRET)
    with TestClient(app) as client:
        assert client.post("/save").json() == [["success", "Saved."]]  # after the redirect
        assert client.get("/").json() == []


def test_fastapi() -> None:
    app = FastAPI()
    app.add_middleware(StarletteSessionMiddleware, secret_key=SECRET)

    @app.post("/save")
    async def save(session: SessionDep) -> RedirectResponse:
        flash(session, "Saved.", "success")
        return RedirectResponse("/", status_code=303)

    @app.get("/")
    async def page(session: SessionDep) -> list[Flash]:
        return flashes(session)

    with TestClient(app) as client:
        assert client.post("/save").json() == [["success", "Saved."]]
        assert client.get("/").json() == []


async def test_bareasgi() -> None:
    async def save(request: HttpRequest) -> HttpResponse:
        flash(sesh_bareasgi.session_data(request), "Saved.", "success")
        return HttpResponse(303, [(b"location", b"/")])

    async def page(request: HttpRequest) -> HttpResponse:
        shown = flashes(sesh_bareasgi.session_data(request))
        return HttpResponse.from_text(repr(shown))

    app = bareasgi.Application()
    app.http_router.add({"POST"}, "/save", save)
    app.http_router.add({"GET"}, "/", page)
    sesh_bareasgi.add_session_middleware(app)
    client = Client(app)
    assert (await client.request("/save", method="POST")).status == 303
    assert (await client.request("/")).text == "[Flash(category='success', message='Saved.')]"
    assert (await client.request("/")).text == "[]"


async def test_the_testing_helpers_see_what_waits() -> None:
    store = MemoryStore()
    client = Client(SessionMiddleware(responder(lambda s: flash(s, "hi")), store=store))
    await client.request()
    stored = await read_session(store, client.jar["session"])
    assert stored == {FLASH_KEY: [["message", "hi"]]}
