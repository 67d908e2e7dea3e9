"""The Session object as a mapping, its metadata, and deferred loading."""

from __future__ import annotations

from collections.abc import MutableMapping
from datetime import timedelta
from typing import Any

import pytest

from sesh.core import (
    NoSessionMiddleware,
    Session,
    SessionDataError,
    SessionEngine,
    SessionError,
    SessionMiddleware,
    SessionNotLoaded,
    session_data,
)
from sesh.core.testing import Client, FakeClock
from sesh.core.types import Receive, Scope, Send
from sesh.stores.memory import MemoryStore

from conftest import MakeClient
from support.spy import SpyStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def session(store: MemoryStore, clock: FakeClock) -> Session:
    return SessionEngine(store, clock=clock).start({"type": "http", "headers": []})


def test_is_a_mutable_mapping(session: Session) -> None:
    assert isinstance(session, MutableMapping)
    assert not session.accessed
    session["a"] = 1
    session.update({"b": 2}, c=3)
    assert session.setdefault("d", [4]) == [4]
    assert session.setdefault("a", 99) == 1
    assert session == {"a": 1, "b": 2, "c": 3, "d": [4]}
    assert list(session) == ["a", "b", "c", "d"]
    assert len(session) == 4
    assert "a" in session
    assert "z" not in session
    assert session.get("z", "default") == "default"
    assert session.pop("b") == 2
    assert session.pop("b", None) is None
    del session["c"]
    with pytest.raises(KeyError):
        del session["c"]
    with pytest.raises(KeyError):
        session["c"]
    assert dict(session.items()) == {"a": 1, "d": [4]}
    session.clear()
    assert dict(session) == {}
    assert session.accessed


def test_keys_must_be_strings(session: Session) -> None:
    with pytest.raises(TypeError, match="session keys must be str"):
        session[1] = "x"  # type: ignore[index]


async def test_modified_sees_sets_deletes_and_in_place_changes(
    store: MemoryStore, clock: FakeClock
) -> None:
    engine = SessionEngine(store, clock=clock)
    new = engine.start({"type": "http", "headers": []})
    assert not new.modified
    new.update(a=[1], b=2)
    assert new.modified
    headers = await engine.response_starts(new, 200, [])
    [cookie] = [value for name, value in headers if name == b"set-cookie"]
    scope = {"type": "http", "headers": [(b"cookie", cookie.split(b";")[0])]}

    async def stored() -> Session:
        session = engine.start(scope)
        await engine.load(session)
        return session

    read = await stored()
    assert read["a"] == [1]
    assert not read.modified  # read, unchanged
    read["a"].append(2)
    assert read.modified  # changed in place
    deleted = await stored()
    del deleted["b"]
    assert deleted.modified


def test_repr_reveals_neither_id_nor_data(session: Session) -> None:
    session["password"] = "hunter2"
    text = repr(session)
    assert "hunter2" not in text
    assert session.id not in text
    assert text == "<Session new, 1 keys>"


def test_a_new_session_gets_its_id_from_the_server(session: Session) -> None:
    assert session.is_new
    first = session.id
    assert first == session.id
    assert len(first) == 43


def test_set_expiry_validates_its_argument(session: Session) -> None:
    for bad in (-1, float("nan"), float("inf"), "10", True, 400 * 86400 + 1, 1e300):
        with pytest.raises(ValueError, match="set_expiry"):
            session.set_expiry(bad)  # type: ignore[arg-type]
    session.set_expiry(timedelta(days=1))
    assert session.expires_at == session.created_at + 86400


async def test_session_data_finds_the_session(make_client: MakeClient) -> None:
    found: list[Session] = []

    class Request:
        def __init__(self, scope: Scope) -> None:
            self.scope = scope

    def action(session: Session) -> None:
        found.append(session)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        assert session_data(scope) is session_data(Request(scope))
        found.append(session_data(Request(scope)))
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    await Client(SessionMiddleware(app)).request()
    assert isinstance(found[0], Session)


@pytest.mark.parametrize("source", [{}, {"session": {}}, object(), None, "scope"])
def test_session_data_without_middleware_says_how_to_fix_it(source: Any) -> None:
    with pytest.raises(
        NoSessionMiddleware, match="wrap the application in sesh's SessionMiddleware"
    ):
        session_data(source)


async def test_autoload_false_defers_the_load(
    make_client: MakeClient, spy: SpyStore, clock: FakeClock
) -> None:
    client = make_client(lambda s: s.__setitem__("a", 1))
    await client.request()
    spy.calls.clear()
    errors: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        session = scope["session"]
        assert spy.calls["load"] == 0
        try:
            session["a"]
        except SessionNotLoaded as error:
            errors.append(str(error))
        await session.load()
        await session.load()
        session["b"] = session["a"] + 1
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body"})

    client.app = SessionMiddleware(app, store=spy, clock=clock, autoload=False)
    await client.request()
    assert "call `await session.load()`" in errors[0]
    assert spy.calls == {"load": 1, "update": 1}


async def test_autoload_false_and_never_loaded_costs_nothing(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client = make_client(lambda s: s.__setitem__("a", 1))
    await client.request()
    spy.calls.clear()
    client.app = make_client(autoload=False).app
    response = await client.request()
    assert spy.calls == {}
    assert response.set_cookies == []


async def test_stored_values_decode_on_first_read_and_stay_apart_from_new_ones(
    make_client: MakeClient,
) -> None:
    stored = {"n": 1, "empty": "", "cart": [1], "blob": b"\x01", "flag": True}
    client = make_client(lambda s: s.update(stored))
    await client.request()

    def mixed(session: Session) -> list[Any]:
        # b"\x01" is both the encoding of 1 and, as a one-byte bytes, a shared object:
        # a value set by the app must never be taken for one still to decode.
        session["n"] = b"\x01"
        session["cart"].append(2)
        return [session["n"], session["empty"], session["blob"], session["flag"], dict(session)]

    client.app = make_client(mixed).app
    assert (await client.request()).text == str(
        [b"\x01", "", b"\x01", True, {**stored, "n": b"\x01", "cart": [1, 2]}]
    )
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == str({**stored, "n": b"\x01", "cart": [1, 2]})


async def test_regenerate_writes_values_never_read(make_client: MakeClient) -> None:
    client = make_client(lambda s: s.update(a=[1], b={"x": 2}, c="three"))
    await client.request()
    client.app = make_client(lambda s: s.regenerate()).app
    await client.request()
    client.app = make_client(lambda s: dict(s)).app
    assert (await client.request()).text == "{'a': [1], 'b': {'x': 2}, 'c': 'three'}"


def test_an_unstorable_value_is_refused_at_the_assignment(session: Session) -> None:
    with pytest.raises(SessionDataError, match=r"session\['handle'\] holds a builtin_function"):
        session["handle"] = print
    with pytest.raises(SessionDataError, match="lone surrogate"):
        session["\ud800"] = 1
    with pytest.raises(SessionDataError, match="keys must be str"):
        session[1] = 1  # type: ignore[index]
    assert dict(session) == {}


async def test_an_unstorable_change_in_place_is_refused_at_the_commit_naming_the_key(
    store: MemoryStore, clock: FakeClock
) -> None:
    engine = SessionEngine(store, clock=clock)
    session = engine.start({"type": "http", "headers": []})
    session["cart"] = []
    session["cart"].append(object())
    with pytest.raises(SessionDataError, match=r"session\['cart'\]"):
        await engine.response_starts(session, 200, [])
    assert len(store) == 0


# -- a session tied to no request: Session(data), as Starlette's ---------------------------------


def test_a_detached_session_starts_unmodified_and_notices_changes() -> None:
    session = Session({"cart": [1]}, user="ada")
    assert session == {"cart": [1], "user": "ada"}
    assert not session.modified
    session["cart"].append(2)  # in place, on a value it handed out
    assert session.modified


@pytest.mark.parametrize(
    ("data", "message"), [({"a": object()}, "session\\['a'\\]"), ({1: 2}, "keys")]
)
def test_a_detached_session_refuses_what_no_store_could_keep(data: Any, message: str) -> None:
    with pytest.raises(SessionDataError, match=message):
        Session(data)


async def test_a_detached_session_cannot_be_saved() -> None:
    with pytest.raises(SessionError, match="belongs to no request"):
        await Session({"a": 1}).save()
