"""For tests: the store contract suites, an in-process ASGI client, and app-test helpers.

Needs pytest, and anyio's pytest plugin (``pip install pytest anyio``); nothing else in
sesh imports this module.

* :class:`StoreContract` and :class:`SessionContract`: subclass them in a store's own test
  module (give a ``store``, respectively ``session_store``, fixture) and every test runs
  against that store unchanged. sesh runs them on each of its own stores.
* :class:`Client`, :func:`responder`, :class:`FakeClock`: drive an ASGI app in-process,
  with a cookie jar and a clock the test moves by hand.
* :func:`preload`, :func:`login_as` and :func:`session_of`: give a test client a session
  holding given data, or with a user logged in; read what the client's session holds.
  Each has a ``_sync`` form for Starlette's and FastAPI's ``TestClient``.
* :func:`make_session` and :func:`read_session`: the same by cookie, without a client: put
  a session in a store and get the cookie that names it, or read a cookie's session.
"""

from __future__ import annotations

import copy
import functools
import importlib
import inspect
import json
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any, TypeVar

import anyio
import pytest

from .config import SessionConfig
from .cookies import cookie_values
from .engine import SessionEngine
from .identity import login
from .middleware import SessionMiddleware
from .session import Session
from .store import ClientStore, ForeignIds, Record, Store, UserIndexStore
from .tokens import user_ref
from .types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "Client",
    "FakeClock",
    "Response",
    "SessionContract",
    "StoreContract",
    "UserIndexContract",
    "cookie_attributes",
    "login_as",
    "login_as_sync",
    "make_session",
    "preload",
    "preload_sync",
    "read_session",
    "responder",
    "session_of",
    "session_of_sync",
]

Action = Callable[[Session], Any]


# -- a clock the tests move -------------------------------------------------------------------


class FakeClock:
    """Callable like ``time.time``; starts at a fixed epoch and moves only on ``advance``."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- driving an ASGI app in-process ------------------------------------------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    messages: list[Message] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        wanted = name.lower().encode()
        return [value.decode("latin-1") for key, value in self.headers if key.lower() == wanted]

    @property
    def set_cookies(self) -> list[str]:
        return self.values("set-cookie")

    @property
    def text(self) -> str:
        return self.body.decode()


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    """``Set-Cookie`` attributes by lower-cased name (the first pair is under ``""``)."""
    first, *rest = set_cookie.split("; ")
    found = {"": first}
    for item in rest:
        name, _, value = item.partition("=")
        found[name.lower()] = value
    return found


class Client:
    """Sends requests to an ASGI app and keeps the cookies it sets, like a browser would."""

    def __init__(self, app: Any, scheme: str = "http", spec_version: str = "2.4") -> None:
        # Any ASGI app, whichever way its framework types the callable.
        self.app: ASGIApp = app
        self.scheme = scheme
        self.spec_version = spec_version  # what the server declares: "2.0" has no accept headers
        self.jar: dict[str, str] = {}

    def _cookie_headers(self) -> list[tuple[bytes, bytes]]:
        if not self.jar:
            return []
        line = "; ".join(f"{name}={value}" for name, value in self.jar.items())
        return [(b"cookie", line.encode("latin-1"))]

    def _remember(self, set_cookies: Iterable[str]) -> None:
        for header in set_cookies:
            attributes = cookie_attributes(header)
            name, _, value = attributes[""].partition("=")
            if attributes.get("max-age") == "0":
                self.jar.pop(name, None)
            else:
                self.jar[name] = value

    def scope(
        self, kind: str, path: str, headers: Iterable[tuple[bytes, bytes]] | None, method: str
    ) -> Scope:
        scheme = self.scheme if kind == "http" else {"http": "ws", "https": "wss"}[self.scheme]
        path, _, query = path.partition("?")
        return {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": self.spec_version},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": list(self._cookie_headers() if headers is None else headers),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

    async def request(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        headers: Iterable[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
    ) -> Response:
        """One http request; ``headers`` replaces the jar's cookie header when given."""
        scope = self.scope("http", path, headers, method)
        sent: list[Message] = []
        incoming: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            # The body once; then, as a server would once the exchange is over, a disconnect.
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        response = Response(
            start["status"],
            [(bytes(k), bytes(v)) for k, v in start.get("headers", [])],
            b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
            sent,
        )
        self._remember(response.set_cookies)
        return response

    async def websocket(
        self,
        path: str = "/ws",
        incoming: Iterable[str] = (),
        *,
        headers: Iterable[tuple[bytes, bytes]] = (),
    ) -> list[Message]:
        """A websocket connection: connect, the ``incoming`` texts, then a disconnect.
        ``headers`` go with the jar's cookie header (an ``Origin``, say)."""
        queue: list[Message] = [
            {"type": "websocket.connect"},
            *({"type": "websocket.receive", "text": text} for text in incoming),
            {"type": "websocket.disconnect", "code": 1000},
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return queue.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        scope = self.scope("websocket", path, [*self._cookie_headers(), *headers], "GET")
        await self.app(scope, receive, send)
        for message in sent:
            if message["type"] == "websocket.accept":
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
                self._remember(v.decode() for k, v in headers if k == b"set-cookie")
        return sent


def responder(
    action: Action | None = None, *, status: int = 200
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app that runs ``action(session)`` (sync or async) and answers with its result."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        result = None
        if action is not None:
            result = action(scope["session"])
            if inspect.isawaitable(result):
                result = await result
        body = b"" if result is None else repr(result).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


# -- helpers for an app's tests ---------------------------------------------------------------


async def make_session(
    store: Store | ClientStore,
    data: Mapping[str, Any],
    *,
    config: SessionConfig | None = None,
) -> tuple[str, str]:
    """Store a session holding ``data`` as the app would (``config`` as the app's), and
    return the cookie that names it, ``(name, value)``, for a test client to send."""
    return _name_and_value(await _stored(store, config, lambda session: session.update(data)))


async def preload(
    client: Any,
    store: Store | ClientStore,
    data: Mapping[str, Any],
    *,
    config: SessionConfig | None = None,
) -> tuple[str, str]:
    """Store a session holding ``data`` and give its cookie to ``client``, as if the app had
    set it: the client's next request carries that session. ``client`` is this module's
    :class:`Client` or an ``httpx.AsyncClient`` (for Starlette's and FastAPI's
    ``TestClient``, see :func:`preload_sync`). Returns the cookie, ``(name, value)``."""
    return _give(client, await _stored(store, config, lambda session: session.update(data)))


async def login_as(
    client: Any,
    store: Store | ClientStore,
    user_id: str | int,
    *,
    config: SessionConfig | None = None,
    auth_hash: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """Log ``user_id`` in for ``client``, as :func:`sesh.core.identity.login` would in the
    app (with ``data`` in the session too): the session is stored and its cookie given to
    the client as :func:`preload` does. For Starlette's and FastAPI's ``TestClient``, see
    :func:`login_as_sync`. ``config`` (the app's) must agree on the cookie. Returns the
    cookie, ``(name, value)``."""

    def log_in(session: Session) -> None:
        session.update(data or {})
        login(session, user_id, auth_hash=auth_hash)

    return _give(client, await _stored(store, config, log_in))


async def session_of(
    client: Any, store: Store | ClientStore, *, config: SessionConfig | None = None
) -> dict[str, Any]:
    """What the session ``client`` would send to the app holds, read as the app would read
    it (``{}`` when the client has no live session). ``client`` as for :func:`preload`."""
    engine = SessionEngine(store, config)
    return await _read(engine, _cookie_header(client, engine.config.cookie.path))


async def read_session(
    store: Store | ClientStore, cookie_value: str, *, config: SessionConfig | None = None
) -> dict[str, Any]:
    """What the session named by ``cookie_value`` holds (``{}`` if none is live)."""
    engine = SessionEngine(store, config)
    cookie = f"{engine.config.cookie.name}={cookie_value}".encode("latin-1")
    return await _read(engine, [(b"cookie", cookie)])


def preload_sync(
    client: Any,
    store: Store | ClientStore,
    data: Mapping[str, Any],
    *,
    config: SessionConfig | None = None,
) -> tuple[str, str]:
    """:func:`preload` for Starlette's (and FastAPI's) ``TestClient``."""
    return _on_client_loop(client, functools.partial(preload, client, store, data, config=config))


def login_as_sync(
    client: Any,
    store: Store | ClientStore,
    user_id: str | int,
    *,
    config: SessionConfig | None = None,
    auth_hash: str | None = None,
    data: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """:func:`login_as` for Starlette's (and FastAPI's) ``TestClient``."""
    work = functools.partial(
        login_as, client, store, user_id, config=config, auth_hash=auth_hash, data=data
    )
    return _on_client_loop(client, work)


def session_of_sync(
    client: Any, store: Store | ClientStore, *, config: SessionConfig | None = None
) -> dict[str, Any]:
    """:func:`session_of` for Starlette's (and FastAPI's) ``TestClient``."""
    return _on_client_loop(client, functools.partial(session_of, client, store, config=config))


T = TypeVar("T")


def _on_client_loop(client: Any, work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work`` for a ``TestClient``. Inside ``with TestClient(app) as client:`` it runs
    on the app's event loop, which a store holding connections (Redis, SQL) needs."""
    portal = getattr(client, "portal", None)
    if portal is not None:
        return portal.call(work)  # type: ignore[no-any-return]
    return anyio.run(work)


async def _stored(
    store: Store | ClientStore, config: SessionConfig | None, change: Callable[[Session], None]
) -> str:
    """Commit a new session changed by ``change``; the ``Set-Cookie`` that names it."""
    engine = SessionEngine(store, config)
    session = await engine.open({"type": "http", "headers": []})
    change(session)
    headers = await engine.response_starts(session, 200, [])
    [value] = [v for k, v in headers if k == b"set-cookie"]
    return bytes(value).decode("latin-1")


async def _read(engine: SessionEngine, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    session = await engine.open({"type": "http", "headers": headers})
    return session.copy()


def _name_and_value(set_cookie: str) -> tuple[str, str]:
    name, _, value = cookie_attributes(set_cookie)[""].partition("=")
    return name, value


def _give(client: Any, set_cookie: str) -> tuple[str, str]:
    """Give ``client`` the cookie as a response from its app would. An httpx client's jar
    files it under the host of the client's ``base_url``, so that the app's own
    ``Set-Cookie`` replaces it later (a cookie set with no host would stay beside that
    one, and the app, sent two session cookies, would trust neither)."""
    name, value = _name_and_value(set_cookie)
    if isinstance(client, Client):
        client._remember([set_cookie])
        return name, value
    _check_client(client)
    if not client.base_url.host:
        raise ValueError(
            "give the client a base_url (httpx.AsyncClient(..., base_url='http://test')): "
            "the session's cookie is kept for that host, as the app's own would be"
        )
    path = cookie_attributes(set_cookie).get("path", "/")  # the app's own, as set
    request = client.build_request("GET", path)
    # The client's own httpx: Starlette's TestClient may be built on httpx2.
    httpx = importlib.import_module(type(request).__module__.partition(".")[0])
    response = httpx.Response(200, headers=[("set-cookie", set_cookie)], request=request)
    client.cookies.extract_cookies(response)
    sent = cookie_values(_cookie_header(client, path), name.encode("latin-1")) or []
    if value.encode("latin-1") not in sent:
        raise ValueError(
            f"a client at {client.base_url} would not send the session's cookie: its "
            "Domain, Path or Secure attribute (from the app's config) does not fit the "
            "client's base_url, so the app's own cookie would not come back either"
        )
    return name, value


def _check_client(client: object) -> None:
    if not all(hasattr(client, name) for name in ("base_url", "build_request", "cookies")):
        raise TypeError(
            "client is sesh.core.testing.Client or an httpx client (Starlette's and FastAPI's "
            f"TestClient, httpx.AsyncClient), not {type(client).__name__}"
        )


def _cookie_header(client: Any, path: str) -> list[tuple[bytes, bytes]]:
    """The ``Cookie`` header ``client`` would send to its app at ``path``."""
    if isinstance(client, Client):
        return client._cookie_headers()
    _check_client(client)
    line = client.build_request("GET", path).headers.get("cookie")
    return [] if line is None else [(b"cookie", line.encode("latin-1"))]


# -- the store contract: what every server-side store must do ----------------------------------


META = b"\x95\x01\xcb" + b"\x00" * 8  # opaque to the store: any bytes
DATA = {"user": b"\xa3ada", "cart": b"\x92\x01\x02"}


class StoreContract:
    """Inherit, give a ``store`` fixture, implement ``remaining_ttl``; every test here then
    speaks to that store directly."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        """Seconds the record under ``key`` has left, or None if there is none."""
        raise NotImplementedError

    @pytest.fixture
    def key(self) -> str:
        return "a3f1" * 12

    async def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    async def test_load_of_a_missing_key_is_none(self, store: Store, key: str) -> None:
        assert await store.load(key) is None

    async def test_create_then_load_round_trips(self, store: Store, key: str) -> None:
        assert await store.create(key, Record(dict(DATA), META), 60)
        assert await store.load(key) == Record(DATA, META)

    async def test_binary_values_and_unicode_fields_round_trip(
        self, store: Store, key: str
    ) -> None:
        data = {"\u00e9t\u00e9 \u2603": bytes(range(256)), "": b"\x00", "\x00": b""}
        assert await store.create(key, Record(data, bytes(range(256))), 60)
        assert await store.load(key) == Record(data, bytes(range(256)))

    async def test_create_never_overwrites(self, store: Store, key: str) -> None:
        assert await store.create(key, Record(dict(DATA), META), 60)
        assert not await store.create(key, Record({"evil": b"\xc0"}, b"x"), 60)
        assert await store.load(key) == Record(DATA, META)

    async def test_the_caller_cannot_change_a_record_after_writing_it(
        self, store: Store, key: str
    ) -> None:
        data = dict(DATA)
        await store.create(key, Record(data, META), 60)
        data["user"] = b"\xa3eve"
        changed = {"cart": b"\xc0"}
        await store.update(key, changed, [], META, 60)
        changed["cart"] = b"\xc2"
        assert await store.load(key) == Record({"user": b"\xa3ada", "cart": b"\xc0"}, META)

    async def test_update_of_a_missing_key_creates_nothing(self, store: Store, key: str) -> None:
        assert not await store.update(key, {"a": b"\x01"}, [], META, 60)
        assert await store.load(key) is None

    async def test_update_changes_only_the_named_fields(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 60)
        assert await store.update(key, {"user": b"\xa3bob", "new": b"\xc3"}, ["cart"], b"m2", 60)
        assert await store.load(key) == Record({"user": b"\xa3bob", "new": b"\xc3"}, b"m2")

    async def test_removing_an_absent_field_is_harmless(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 60)
        assert await store.update(key, {}, ["nothing"], META, 60)
        assert await store.load(key) == Record(DATA, META)

    async def test_updates_of_different_fields_both_win(self, store: Store, key: str) -> None:
        await store.create(key, Record({"base": b"\x00"}, META), 60)
        assert await store.update(key, {"a": b"\x01"}, [], META, 60)
        assert await store.update(key, {"b": b"\x02"}, [], META, 60)
        loaded = await store.load(key)
        assert loaded is not None
        assert loaded.data == {"base": b"\x00", "a": b"\x01", "b": b"\x02"}

    async def test_a_deleted_record_is_never_brought_back(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 60)
        assert await store.delete(key)
        assert not await store.delete(key)
        assert not await store.update(key, {"late": b"\x01"}, [], META, 60)
        assert not await store.touch(key, META, 60)
        assert await store.load(key) is None

    async def test_touch_replaces_meta_and_keeps_data(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 60)
        assert await store.touch(key, b"touched", 600)
        assert await store.load(key) == Record(DATA, b"touched")
        ttl = await self.remaining_ttl(store, key)
        assert ttl is not None
        assert 60 < ttl <= 600

    async def test_touch_of_a_missing_key_creates_nothing(self, store: Store, key: str) -> None:
        assert not await store.touch(key, META, 60)
        assert await store.load(key) is None

    async def test_every_write_sets_the_ttl(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 100)
        ttl = await self.remaining_ttl(store, key)
        assert ttl is not None
        assert 90 < ttl <= 100
        await store.update(key, {"a": b"\x01"}, [], META, 1000)
        ttl = await self.remaining_ttl(store, key)
        assert ttl is not None
        assert 900 < ttl <= 1000
        await store.update(key, {}, ["a"], META, 50)
        ttl = await self.remaining_ttl(store, key)
        assert ttl is not None
        assert 40 < ttl <= 50

    async def test_keys_are_independent(self, store: Store, key: str) -> None:
        other = key[::-1]
        await store.create(key, Record({"a": b"\x01"}, META), 60)
        await store.create(other, Record({"b": b"\x02"}, META), 60)
        await store.delete(key)
        assert await store.load(other) == Record({"b": b"\x02"}, META)


# -- the per-user index: what a UserIndexStore must do ---------------------------------------


ADA, BOB = user_ref("ada"), user_ref("bob")  # users as the engine names them to a store


class UserIndexContract:
    """Inherit (beside :class:`StoreContract`) for a store that keeps a per-user index,
    give a ``store`` fixture and implement ``let_pass``; every test here then speaks to
    that store's index directly."""

    pytestmark = pytest.mark.anyio

    async def let_pass(self, store: UserIndexStore, seconds: float) -> None:
        """Make ``seconds`` pass for the store's index (move its clock)."""
        raise NotImplementedError

    async def test_is_a_user_index_store(self, store: UserIndexStore) -> None:
        assert isinstance(store, UserIndexStore)

    async def test_added_keys_are_listed_once(self, store: UserIndexStore) -> None:
        assert await store.index_members(ADA) == []
        assert await store.index_add(ADA, "k1", 60, 10) == []
        assert await store.index_add(ADA, "k2", 60, 10) == []
        assert await store.index_add(ADA, "k1", 90, 10) == []
        assert sorted(await store.index_members(ADA)) == ["k1", "k2"]

    async def test_users_are_independent(self, store: UserIndexStore) -> None:
        await store.index_add(ADA, "k1", 60, 10)
        await store.index_add(BOB, "k2", 60, 10)
        await store.index_remove(ADA, ["k2"])  # not ada's: nothing happens
        assert await store.index_members(ADA) == ["k1"]
        assert await store.index_members(BOB) == ["k2"]

    async def test_remove_forgets_only_the_named_keys(self, store: UserIndexStore) -> None:
        for key in ("k1", "k2", "k3"):
            await store.index_add(ADA, key, 60, 10)
        await store.index_remove(ADA, ["k1", "k3", "absent"])
        await store.index_remove(ADA, [])
        assert await store.index_members(ADA) == ["k2"]

    async def test_entries_expire_with_their_sessions(self, store: UserIndexStore) -> None:
        await store.index_add(ADA, "short", 10, 10)
        await store.index_add(ADA, "long", 100, 10)
        await self.let_pass(store, 11)
        assert await store.index_members(ADA) == ["long"]
        await store.index_add(ADA, "short", 1000, 10)  # noted again: its new time counts
        await self.let_pass(store, 100)
        assert await store.index_members(ADA) == ["short"]

    async def test_past_the_limit_those_expiring_first_go(self, store: UserIndexStore) -> None:
        await store.index_add(ADA, "k1", 300, 3)
        await store.index_add(ADA, "k2", 100, 3)
        await store.index_add(ADA, "k3", 200, 3)
        # The new key expires first of all, yet it is kept: the user just logged in there.
        assert await store.index_add(ADA, "k4", 50, 3) == ["k2"]
        assert sorted(await store.index_members(ADA)) == ["k1", "k3", "k4"]
        assert sorted(await store.index_add(ADA, "k5", 400, 2)) == ["k3", "k4"]
        assert sorted(await store.index_members(ADA)) == ["k1", "k5"]


# -- the session contract: what every store does behind the engine ----------------------------


SECRET = "a-contract-secret-that-is-long-enough-0123"  # noqa: S105 (a test secret)


class SessionContract:
    """Inherit and give a ``session_store`` fixture (any store, server- or client-side);
    every test here then runs through the real middleware on that store."""

    pytestmark = pytest.mark.anyio

    @pytest.fixture
    def clock(self) -> FakeClock:
        return FakeClock()

    @pytest.fixture
    def client(self, session_store: Store | ClientStore, clock: FakeClock) -> Client:
        self._store = session_store
        self._clock = clock
        return Client(self.app(None))

    @property
    def cookie(self) -> str:
        """The session cookie's name: another framework's for a store that shares its
        sessions (:class:`~sesh.core.store.ForeignIds`)."""
        return self._store.cookie_name if isinstance(self._store, ForeignIds) else "session"

    def app(self, action: Action | None, **options: Any) -> Any:
        options.setdefault("clock", self._clock)
        if isinstance(self._store, ForeignIds):  # that framework's cookie: its bare id
            options.setdefault("cookie_name", self._store.cookie_name)
        else:
            options.setdefault("secret_key", SECRET)
        return SessionMiddleware(responder(action), store=self._store, **options)

    async def run(self, client: Client, action: Action, **options: Any) -> Response:
        client.app = self.app(action, **options)
        return await client.request()

    async def show(self, client: Client) -> str:
        return (await self.run(client, lambda s: dict(s))).text

    async def test_a_write_is_read_back(self, client: Client) -> None:
        response = await self.run(client, lambda s: s.update(user="ada", n=1))
        assert len(response.set_cookies) == 1
        assert await self.show(client) == "{'user': 'ada', 'n': 1}"

    async def test_values_round_trip(self, client: Client) -> None:
        when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        values = {
            "s": "\u00e9t\u00e9 \u2603",
            "b": b"\x00\xff",
            "f": 1.5,
            "none": None,
            "nested": {"list": [1, [2, {"x": True}]]},
            "when": when,
            "big": 2**62,
        }
        await self.run(client, lambda s: s.update(values))
        response = await self.run(client, lambda s: dict(s) == values)
        assert response.text == "True"

    async def test_reading_sends_no_cookie(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1))
        response = await self.run(client, lambda s: s["a"])
        assert response.text == "1"
        assert response.set_cookies == []
        assert response.values("vary") == ["Cookie"]

    async def test_changing_one_key_keeps_the_others(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1, b=2))
        await self.run(client, lambda s: s.__setitem__("b", 3))
        await self.run(client, lambda s: s.__delitem__("a"))
        assert await self.show(client) == "{'b': 3}"

    async def test_in_place_changes_are_saved(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(cart=[1]))
        await self.run(client, lambda s: s["cart"].append(2))
        assert await self.show(client) == "{'cart': [1, 2]}"

    async def test_regenerate_keeps_the_data_under_a_new_id(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1))
        before = client.jar[self.cookie]
        response = await self.run(client, lambda s: s.regenerate())
        assert len(response.set_cookies) == 1
        assert client.jar[self.cookie] != before
        assert await self.show(client) == "{'a': 1}"

    async def test_invalidate_forgets_the_session(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1))
        response = await self.run(client, lambda s: s.invalidate())
        assert cookie_attributes(response.set_cookies[0])["max-age"] == "0"
        assert self.cookie not in client.jar
        assert await self.show(client) == "{}"

    async def test_the_lifetime_is_enforced_by_the_server(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1), max_age=60)
        self._clock.advance(61)
        response = await self.run(client, lambda s: dict(s), max_age=60)
        assert response.text == "{}"

    async def test_remember_me(self, client: Client) -> None:
        def remember(session: Session) -> None:
            session["a"] = 1
            session.set_expiry(86400 * 30)

        response = await self.run(client, remember)
        assert cookie_attributes(response.set_cookies[0])["max-age"] == str(86400 * 30)
        self._clock.advance(86400 * 29)
        assert await self.show(client) == "{'a': 1}"

    async def test_new_and_stored_sessions_are_told_apart(self, client: Client) -> None:
        def was_new_then_write(session: Session) -> bool:
            new = session.is_new
            session["a"] = 1
            return new

        assert (await self.run(client, was_new_then_write)).text == "True"
        assert (await self.run(client, lambda s: s.is_new)).text == "False"

    async def test_a_tampered_cookie_is_no_session(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1))
        value = client.jar[self.cookie]
        client.jar[self.cookie] = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
        response = await self.run(client, lambda s: dict(s))
        assert response.status == 200
        assert response.text == "{}"

    # -- the session is the dict apps expect, on every store ----------------------------------

    async def test_the_session_is_a_dict_with_decoded_values(self, client: Client) -> None:
        when = datetime(2030, 1, 2, 3, 4, 5)
        await self.run(client, lambda s: s.update(user="ada", when=when, cart=[1, 2]))

        def as_dicts(session: Session) -> bool:
            expected = {"user": "ada", "when": when, "cart": [1, 2]}
            shallow = copy.copy(session)
            return (
                isinstance(session, dict)
                and session == expected
                and dict(session) == expected
                and {**session} == expected
                and shallow == expected
                and type(shallow) is dict
                and copy.deepcopy(session) == expected
                and json.loads(json.dumps(session, default=str))["user"] == "ada"
                and sorted(session) == ["cart", "user", "when"]
            )

        assert (await self.run(client, as_dicts)).text == "True"

    async def test_every_dict_method_changes_the_stored_session(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1, b=2, c=3, d=4, keep=0))

        def through_every_method(session: Session) -> None:
            session |= {"a": 10}
            session.update({"b": 20})
            session.setdefault("e", 5)
            session.setdefault("keep", 99)  # present: unchanged
            session.pop("c")
            del session["d"]

        await self.run(client, through_every_method)
        assert await self.show(client) == "{'a': 10, 'b': 20, 'keep': 0, 'e': 5}"
        popped = await self.run(client, lambda s: s.popitem())
        assert popped.text == "('e', 5)"
        assert await self.show(client) == "{'a': 10, 'b': 20, 'keep': 0}"

    async def test_in_place_changes_to_nested_values_are_saved(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(prefs={"tags": ["a"]}))
        await self.run(client, lambda s: s["prefs"]["tags"].append("b"))
        await self.run(client, lambda s: s.get("prefs").__setitem__("n", 1))
        assert await self.show(client) == "{'prefs': {'tags': ['a', 'b'], 'n': 1}}"

    @pytest.mark.parametrize(
        "change",
        [
            lambda s: s["cart"].append(3),
            lambda s: s.get("cart").append(3),
            lambda s: s.setdefault("cart", []).append(3),
            lambda s: next(iter(s.values())).append(3),
            lambda s: dict(s.items())["cart"].append(3),
            lambda s: s.copy()["cart"].append(3),
            lambda s: dict(s)["cart"].append(3),
            lambda s: {**s}["cart"].append(3),
        ],
        ids=["getitem", "get", "setdefault", "values", "items", "copy", "dict", "unpack"],
    )
    async def test_in_place_changes_through_every_accessor_are_saved(
        self, client: Client, change: Action
    ) -> None:
        await self.run(client, lambda s: s.update(cart=[1, 2], user="ada"))
        await self.run(client, change)
        assert await self.show(client) == "{'cart': [1, 2, 3], 'user': 'ada'}"

    async def test_values_keep_their_type(self, client: Client) -> None:
        values = {
            "naive": datetime(2030, 1, 2, 3, 4, 5, 6),
            "aware": datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "day": date(2030, 1, 2),
            "clock": time(3, 4, 5, 6),
            "span": timedelta(days=-1, seconds=5, microseconds=7),
            "price": Decimal("10.10"),
            "id": uuid.UUID(int=7),
            "pair": (1, ("nested", 2)),
            "tags": {"x", "y"},
            "frozen": frozenset({1}),
            "mixed": [(1, 2), {"when": date(2030, 1, 1)}],
        }
        await self.run(client, lambda s: s.update(values))

        def same_types(session: Session) -> bool:
            return dict(session) == values and all(
                type(session[key]) is type(value) for key, value in values.items()
            )

        assert (await self.run(client, same_types)).text == "True"
        # The arithmetic bareASGI-session's own example does with a stored datetime.
        later = await self.run(client, lambda s: (s["naive"] + timedelta(days=1)).day)
        assert later.text == "3"

    # -- an emptied session ends --------------------------------------------------------------

    async def test_clear_ends_the_session(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(user="ada"))
        before = client.jar[self.cookie]
        response = await self.run(client, lambda s: s.clear())
        [deletion] = response.set_cookies
        assert cookie_attributes(deletion)["max-age"] == "0"
        assert cookie_attributes(deletion)["path"] == "/"
        assert self.cookie not in client.jar
        if isinstance(self._store, Store):  # a server-side record is gone for good
            client.jar[self.cookie] = before
            assert await self.show(client) == "{}"
            del client.jar[self.cookie]
        await self.run(client, lambda s: s.update(user="bob"))
        assert client.jar[self.cookie] != before
        assert await self.show(client) == "{'user': 'bob'}"

    async def test_deleting_the_last_key_ends_the_session(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(user="ada"))
        response = await self.run(client, lambda s: s.pop("user"))
        assert cookie_attributes(response.set_cookies[0])["max-age"] == "0"
        assert self.cookie not in client.jar
