"""The scenarios and the systems under test, built around one endpoint so that only the
session library differs. Peers come from PyPI (benchmarks/requirements.txt)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import bareasgi
import bareasgi_session
import starsessions
import starsessions.stores.redis
from fastapi import FastAPI, Request
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware as StarletteSessions
from starlette.requests import Request as StarletteRequest
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from sesh.adapters.bareasgi import add_session_middleware as sesh_bareasgi
from sesh.core import SessionMiddleware, SessionOptions
from sesh.core.types import ASGIApp
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore
from sesh.stores.redis import RedisStore

SECRET = "benchmark-secret-benchmark-secret-0123456789"  # noqa: S105
SMALL: dict[str, Any] = {"user": "ada", "theme": "dark", "visits": 3}

# The large session is varied, as real ones are: phrases, numbers, tokens and lists, the
# same every run. Repeated filler ("x" * 26, as this once was) compresses to nothing at
# almost no cost, and would flatter any store that compresses.
_WORDS = ["ada", "blue", "cart", "dark", "desk", "east", "fern", "gold", "hill", "iron", "jade",
          "kite", "lamp", "mint", "navy", "oak", "pear", "quay", "rose", "sand", "teal", "vale",
          "wren", "yarn", "zinc"]  # fmt: skip
_random = random.Random(6265)


def _varied(i: int) -> Any:
    kind = i % 4
    if kind == 0:
        return " ".join(_random.choice(_WORDS) for _ in range(9))
    if kind == 1:
        return _random.randrange(10**9)
    if kind == 2:
        return f"{_random.getrandbits(160):040x}"
    return [_random.randrange(1000) for _ in range(8)]


LARGE: dict[str, Any] = {f"key{i:02d}": _varied(i) for i in range(50)}  # 2 KB as JSON
LARGE["visits"] = 3


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    data: dict[str, Any] | None  # the session the client already has, if any
    act: Callable[[Any], str]  # what the endpoint does with the session; returns the body
    writes: bool


def _untouched(session: Any) -> str:
    return "ok"


def _write_one(session: Any) -> str:
    session["n"] = 1
    return "ok"


def _read_user(session: Any) -> str:
    return str(session["user"])


def _read_large(session: Any) -> str:
    return str(session["key25"])


def _change_visits(session: Any) -> str:
    session["visits"] = (session["visits"] + 1) % 1000  # the same size every time
    return "ok"


SCENARIOS = {
    s.name: s
    for s in (
        Scenario("s1", "no cookie, session untouched", None, _untouched, False),
        Scenario("s2", "no cookie, one key written", None, _write_one, True),
        Scenario("s3", "small session, one key read", SMALL, _read_user, False),
        Scenario("s4", "small session, one key changed", SMALL, _change_visits, True),
        Scenario("s5r", "50-key 2 KB session, one key read", LARGE, _read_large, False),
        Scenario("s5m", "50-key 2 KB session, one key changed", LARGE, _change_visits, True),
    )
}


def _setup_body(data: dict[str, Any]) -> Callable[[Any], str]:
    def write_all(session: Any) -> str:
        session.update(data)
        return "ok"

    return write_all


# -- the endpoint in each framework ---------------------------------------------------------


def starlette_app(act: Callable[[Any], str] | None, middleware: list[Middleware]) -> ASGIApp:
    async def endpoint(request: StarletteRequest) -> Response:
        return PlainTextResponse("ok" if act is None else act(request.session))

    return Starlette(routes=[Route("/", endpoint)], middleware=middleware)


def fastapi_app(act: Callable[[Any], str] | None, middleware: list[Middleware]) -> ASGIApp:
    app = FastAPI(middleware=middleware, openapi_url=None)

    @app.get("/", response_class=PlainTextResponse)
    async def endpoint(request: Request) -> str:
        return "ok" if act is None else act(request.session)

    return app


def bareasgi_app(
    act: Callable[[Any], str] | None, session_of: Callable[[Any], Any] | None = None
) -> Any:  # an ASGI app, typed by bareASGI with asgi-typing's own scope types
    async def endpoint(request: bareasgi.HttpRequest) -> bareasgi.HttpResponse:
        body = "ok" if act is None else act(session_of(request))  # type: ignore[misc]
        return bareasgi.HttpResponse.from_text(body)

    app = bareasgi.Application()
    app.http_router.add({"GET"}, "/", endpoint)
    return app


# -- the systems ----------------------------------------------------------------------------


@dataclass(frozen=True)
class System:
    name: str
    baseline: str  # the bare app this system's added cost is measured against
    cookie: str  # the session cookie's name
    build: Callable[[Callable[[Any], str] | None], Any]  # returns an ASGI app
    resends_cookie: bool = False  # sends Set-Cookie on every request with a session
    cookie_on_change: bool = False  # the whole session is in the cookie
    cookie_for_everyone: bool = False  # a session (and cookie) for every cookieless request
    redis: bool = False

    def sends_cookie(self, scenario: Scenario) -> bool:
        """What the correctness check expects: is a Set-Cookie part of this response?"""
        if scenario.data is None:
            return scenario.writes or self.cookie_for_everyone
        return self.resends_cookie or (scenario.writes and self.cookie_on_change)


def systems(redis_url: str, prefix: str) -> list[System]:
    """Every system, each with fresh stores. ``prefix`` keeps this run's Redis keys apart."""
    memory, cookie = MemoryStore(max_entries=10_000_000), CookieStore(SECRET)
    sesh_redis = RedisStore(redis_url, prefix=prefix + "sesh:")
    star_memory = starsessions.InMemoryStore()
    star_cookie = starsessions.CookieStore(SECRET)
    star_redis = starsessions.stores.redis.RedisStore(
        connection=Redis.from_url(redis_url), prefix=prefix + "star:"
    )

    def sesh(store: Any) -> list[Middleware]:
        # The memory store as configured by default, with bare ids (as starsessions' ids):
        # a lookup of a forged id costs a dict miss. RedisStore is signed: a forged id then
        # never costs a round trip.
        signed: SessionOptions = {"secret_key": SECRET} if store is sesh_redis else {}
        return [Middleware(SessionMiddleware, store=store, **signed)]

    def star(store: Any) -> list[Middleware]:
        return [
            Middleware(starsessions.SessionMiddleware, store=store, lifetime=14 * 86400,
                       cookie_https_only=False),
            Middleware(starsessions.SessionAutoloadMiddleware),
        ]  # fmt: skip

    their_bareasgi_memory = bareasgi_session.MemorySessionStorage()

    def bare_session(app: Any) -> Any:
        return bareasgi_session.add_session_middleware(app, their_bareasgi_memory)

    bareasgi_memory = MemoryStore(max_entries=10_000_000)

    def bareasgi_sesh(act: Any) -> Any:
        app = bareasgi_app(act, bareasgi_session_data)
        return sesh_bareasgi(app, bareasgi_memory)

    return [
        System("bare Starlette", "", "session", lambda act: starlette_app(None, [])),
        System("bare FastAPI", "", "session", lambda act: fastapi_app(None, [])),
        System("bare bareASGI", "", "session", lambda act: bareasgi_app(None)),
        System("sesh memory", "bare Starlette", "session",
               lambda act: starlette_app(act, sesh(memory))),
        System("sesh cookie", "bare Starlette", "session",
               lambda act: starlette_app(act, sesh(cookie)), cookie_on_change=True),
        System("sesh redis", "bare Starlette", "session",
               lambda act: starlette_app(act, sesh(sesh_redis)), redis=True),
        System("sesh memory (FastAPI)", "bare FastAPI", "session",
               lambda act: fastapi_app(act, sesh(memory))),
        System("sesh memory (bareASGI)", "bare bareASGI", "session", bareasgi_sesh),
        System("Starlette SessionMiddleware", "bare Starlette", "session",
               lambda act: starlette_app(act, [Middleware(StarletteSessions, secret_key=SECRET)]),
               cookie_on_change=True),
        System("starsessions memory", "bare Starlette", "session",
               lambda act: starlette_app(act, star(star_memory)), resends_cookie=True),
        System("starsessions cookie", "bare Starlette", "session",
               lambda act: starlette_app(act, star(star_cookie)), resends_cookie=True),
        System("starsessions redis", "bare Starlette", "session",
               lambda act: starlette_app(act, star(star_redis)), resends_cookie=True, redis=True),
        System("bareASGI-session", "bare bareASGI", "bareASGI-session",
               lambda act: bare_session(bareasgi_app(act, bareasgi_session.session_data)),
               cookie_for_everyone=True),
    ]  # fmt: skip


def bareasgi_session_data(request: bareasgi.HttpRequest) -> Any:
    from sesh.adapters.bareasgi import session_data

    return session_data(request)


def setup_app(system: System, data: dict[str, Any]) -> Any:
    """The system's app, answering with a session that holds ``data``."""
    return system.build(_setup_body(data))
