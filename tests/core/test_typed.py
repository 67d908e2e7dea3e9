"""Typed sessions: a msgspec.Struct or a pydantic model over the session's keys, validated
on read and on write, while the session stays the plain mapping."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import msgspec
import pydantic
import pytest

from sesh.core import Session, SessionDataError, SessionEngine, SessionMiddleware, typed
from sesh.core.testing import Client, responder
from sesh.stores.memory import MemoryStore

from support.spy import SpyStore

pytestmark = pytest.mark.anyio


class Cart(msgspec.Struct):
    items: list[int] = []
    coupon: str | None = None
    seen_at: datetime | None = None
    size: tuple[int, int] = (0, 0)


class Named(msgspec.Struct, rename={"user": "_auth_user_id"}, omit_defaults=True):
    user: str | None = None
    theme: str = "light"


class Required(msgspec.Struct):
    user: str


class Prefs(pydantic.BaseModel):
    theme: str = "light"
    font_size: int = pydantic.Field(default=16, alias="fontSize")
    tags: list[str] = []


def session(**values: Any) -> Session:
    new = SessionEngine(MemoryStore()).start({"type": "http", "headers": []})
    new.update(values)
    return new


def test_a_struct_reads_the_keys_it_declares_and_defaults_the_rest() -> None:
    s = session(items=[1, 2], other="not the cart's")
    assert typed.read(s, Cart) == Cart(items=[1, 2])


def test_a_struct_writes_back_only_what_changed() -> None:
    s = session(items=[1], other="kept")
    cart = typed.read(s, Cart)
    cart.items.append(2)
    cart.seen_at = datetime(2026, 12, 7, 6, 0, tzinfo=timezone.utc)
    typed.write(s, cart)
    assert dict(s) == {
        "items": [1, 2],
        "other": "kept",
        "seen_at": "2026-12-07T06:00:00Z",  # builtins, as any store keeps them
    }
    assert typed.read(s, Cart).seen_at == cart.seen_at  # and back


def test_a_value_of_the_wrong_type_names_its_field() -> None:
    with pytest.raises(SessionDataError, match=r"session key 'items' does not fit Cart: Expected"):
        typed.read(session(items="not a list"), Cart)
    with pytest.raises(SessionDataError, match=r"session key 'size' does not fit Cart"):
        typed.read(session(size=[1, 2, 3]), Cart)
    with pytest.raises(SessionDataError, match=r"session key 'items' does not fit Cart"):
        typed.read(session(items=[1, "two"]), Cart)  # deep inside: still the key


def test_a_missing_required_key_is_named() -> None:
    with pytest.raises(SessionDataError, match=r"the session does not fit Required: .*`user`"):
        typed.read(session(), Required)
    assert typed.read(session(user="ada"), Required) == Required("ada")


def test_a_wrong_value_assigned_in_code_is_refused_and_nothing_is_written() -> None:
    s = session(items=[1])
    cart = typed.read(s, Cart)
    cart.coupon = "SAVE10"
    cart.items = "oops"  # type: ignore[assignment]  # what a struct lets through
    with pytest.raises(SessionDataError, match="session key 'items'"):
        typed.write(s, cart)
    assert dict(s) == {"items": [1]}


def test_renamed_fields_use_their_key_and_defaults_are_written_when_set_back() -> None:
    s = session(_auth_user_id="7", theme="dark")
    named = typed.read(s, Named)
    assert named == Named(user="7", theme="dark")
    named.theme = "light"  # its default, which omit_defaults would leave out of an encoding
    typed.write(s, named)
    assert dict(s) == {"_auth_user_id": "7", "theme": "light"}


async def test_reading_and_writing_an_untouched_shape_starts_no_session() -> None:
    spy = SpyStore(MemoryStore())

    def route(s: Session) -> None:
        typed.write(s, typed.read(s, Cart))

    response = await Client(SessionMiddleware(responder(route), store=spy)).request()
    assert response.set_cookies == []
    assert spy.writes == 0


async def test_a_typed_write_merges_with_other_requests_per_key() -> None:
    store = MemoryStore()
    client = Client(SessionMiddleware(responder(lambda s: s.update(items=[1])), store=store))
    await client.request()

    def add(s: Session) -> None:
        cart = typed.read(s, Cart)
        cart.items.append(2)
        typed.write(s, cart)

    client.app = SessionMiddleware(responder(add), store=store)
    await client.request()
    client.app = SessionMiddleware(responder(dict), store=store)
    assert (await client.request()).text == "{'items': [1, 2]}"


def test_a_pydantic_model_works_the_same_with_its_aliases() -> None:
    s = session(fontSize=18)
    prefs = typed.read(s, Prefs)
    assert prefs == Prefs(fontSize=18)
    prefs.tags.append("beta")
    typed.write(s, prefs)
    assert dict(s) == {"fontSize": 18, "tags": ["beta"]}


def test_a_pydantic_misfit_names_its_field() -> None:
    with pytest.raises(SessionDataError, match="session key 'fontSize' does not fit Prefs: "):
        typed.read(session(fontSize="huge"), Prefs)
    prefs = Prefs()
    prefs.tags = [1]  # type: ignore[list-item]  # no validate_assignment
    with pytest.raises(SessionDataError, match="session key 'tags' does not fit Prefs"):
        typed.write(session(), prefs)


@pytest.mark.parametrize("shape", [dict, int, "Cart", type("Plain", (), {})])
def test_a_shape_that_is_neither_is_refused(shape: Any) -> None:
    with pytest.raises(TypeError, match=r"msgspec.Struct or a pydantic model"):
        typed.read(session(), shape)
