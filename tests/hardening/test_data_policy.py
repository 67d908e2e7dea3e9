"""The one written policy for session values (README, "What a session can hold"): what
comes back unchanged, what changes type, what is refused at save (naming the key)."""

from __future__ import annotations

import dataclasses
import enum
import uuid
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from sesh.core import Session, SessionDataError, SessionMiddleware
from sesh.core.testing import Client, responder
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio
SECRET = "a-data-policy-test-secret-0123456789"


class Colour(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def nested(depth: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(depth):
        value = [value]
    return value


UNCHANGED = [
    "text \u2603", "", 0, -(2**63), 2**64 - 1, 1.5, float("inf"), True, False, None,
    b"\x00\xff", [1, "a", None], {"a": {"b": [1]}}, {1: "int keys"}, nested(500),
    (1, 2), (), ((1, "a"), [2]), {3}, frozenset({4}), {"in": [(5,), {6}]},
    Decimal("1.10"), uuid.UUID(int=1),
    datetime(2030, 1, 2, 3, 4, 5, 6, tzinfo=timezone.utc),
    datetime(2030, 1, 2, 3, 4, 5),  # naive stays naive
    datetime(2030, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),  # keeps its offset
    date(2030, 1, 2), time(3, 4), time(3, 4, tzinfo=timezone.utc),
    timedelta(days=-1, seconds=90, microseconds=7),
]  # fmt: skip
CHANGED = [
    (bytearray(b"ab"), b"ab"),
    (Colour.RED, "red"),
    (Point(1, 2), {"x": 1, "y": 2}),
]  # fmt: skip
# Deeper than any Python allows: 3.13 refuses past 10,000 levels, 3.10 and 3.11 past 1,000.
REFUSED = [2**64, -(2**63) - 1, object(), print, nested(100_000), open]


@pytest.fixture(params=["memory", "cookie"])
def store(request: pytest.FixtureRequest) -> Any:
    return MemoryStore() if request.param == "memory" else CookieStore(SECRET)


async def round_trip(store: Any, value: Any) -> Any:
    got: list[Any] = []
    client = Client(SessionMiddleware(responder(lambda s: s.__setitem__("v", value)), store=store))
    await client.request()

    def read(session: Session) -> None:
        got.append(session["v"])

    client.app = SessionMiddleware(responder(read), store=store)
    await client.request()
    return got[0]


@pytest.mark.parametrize("value", UNCHANGED, ids=lambda v: type(v).__name__)
async def test_plain_data_comes_back_unchanged(store: Any, value: Any) -> None:
    got = await round_trip(store, value)
    assert got == value
    assert type(got) is type(value)
    if isinstance(value, datetime | time):
        assert got.utcoffset() == value.utcoffset()  # naive stays naive, offsets are kept


async def test_nan_comes_back_as_nan(store: Any) -> None:
    got = await round_trip(store, float("nan"))
    assert got != got


@pytest.mark.parametrize(("value", "comes_back"), CHANGED, ids=lambda v: type(v).__name__)
async def test_these_change_type_as_documented(store: Any, value: Any, comes_back: Any) -> None:
    got = await round_trip(store, value)
    assert got == comes_back
    assert type(got) is type(comes_back)


@pytest.mark.parametrize("value", REFUSED, ids=lambda v: type(v).__name__)
async def test_these_are_refused_at_save_naming_the_key(store: Any, value: Any) -> None:
    client = Client(SessionMiddleware(responder(lambda s: s.update(ok=1)), store=store))
    await client.request()
    client.app = SessionMiddleware(responder(lambda s: s.update(ok=2, bad=value)), store=store)
    with pytest.raises(SessionDataError, match=r"session\['bad'\]"):
        await client.request()
    client.app = SessionMiddleware(responder(dict), store=store)
    assert (await client.request()).text == "{'ok': 1}"  # the stored session is intact
