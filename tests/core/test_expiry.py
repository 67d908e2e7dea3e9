"""The three clocks of expiry: absolute lifetime, idle timeout, per-session override."""

from __future__ import annotations

from typing import Any

import pytest

from sesh.core import ConfigurationError, Session, SessionMiddleware
from sesh.core.testing import Client, FakeClock, cookie_attributes
from sesh.core.types import Receive, Scope, Send
from sesh.stores.memory import MemoryStore

from conftest import SECRET, MakeClient
from support.spy import SpyStore

pytestmark = pytest.mark.anyio
DAY = 86400.0


def show(session: Session) -> Any:
    return dict(session)


async def login(client: Client, make_client: MakeClient, **options: Any) -> None:
    client.app = make_client(lambda s: s.__setitem__("user", "ada"), **options).app
    await client.request()
    client.app = make_client(show, **options).app


@pytest.mark.parametrize("secret", [None, SECRET])
async def test_the_absolute_lifetime_ends_the_session(
    make_client: MakeClient, clock: FakeClock, spy: SpyStore, secret: str | None
) -> None:
    client = make_client(secret_key=secret, max_age=3600)
    await login(client, make_client, secret_key=secret, max_age=3600)
    clock.advance(3599)
    assert (await client.request()).text == "{'user': 'ada'}"
    clock.advance(1)
    spy.calls.clear()
    assert (await client.request()).text == "{}"
    if secret:  # a signed cookie carries its deadline: refused without a round trip
        assert spy.calls == {}


async def test_use_does_not_extend_the_absolute_lifetime(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = make_client(max_age=100)
    await login(client, make_client, max_age=100)
    client.app = make_client(lambda s: s.__setitem__("n", s.get("n", 0) + 1), max_age=100).app
    for _ in range(9):
        clock.advance(10)
        await client.request()
    clock.advance(10)
    client.app = make_client(show, max_age=100).app
    assert (await client.request()).text == "{}"


async def test_regenerate_keeps_the_creation_time(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = make_client(max_age=100)
    await login(client, make_client, max_age=100)
    clock.advance(60)
    client.app = make_client(lambda s: s.regenerate(), max_age=100).app
    response = await client.request()
    assert cookie_attributes(response.set_cookies[0])["max-age"] == "40"
    client.app = make_client(show, max_age=100).app
    clock.advance(40)
    assert (await client.request()).text == "{}"


async def test_idle_timeout_ends_an_unused_session(
    make_client: MakeClient, clock: FakeClock
) -> None:
    options = {"max_age": DAY, "idle_timeout": 600}
    client = make_client(**options)
    await login(client, make_client, **options)
    for _ in range(10):  # in use: kept alive well past one idle period
        clock.advance(590)
        assert (await client.request()).text == "{'user': 'ada'}"
    clock.advance(600)
    assert (await client.request()).text == "{}"


async def test_idle_refresh_is_a_throttled_touch(
    make_client: MakeClient, clock: FakeClock, spy: SpyStore
) -> None:
    options = {"max_age": DAY, "idle_timeout": 600, "touch_interval": 60}
    client = make_client(**options)
    await login(client, make_client, **options)
    spy.calls.clear()
    for _ in range(6):
        clock.advance(10)
        response = await client.request()
        assert response.set_cookies == []
    assert spy.calls == {"load": 6, "touch": 1}


async def test_touch_happens_even_if_the_app_ignores_the_session(
    make_client: MakeClient, clock: FakeClock, spy: SpyStore
) -> None:
    options = {"max_age": DAY, "idle_timeout": 600}
    client = make_client(**options)
    await login(client, make_client, **options)
    client.app = make_client(None, **options).app
    clock.advance(590)
    await client.request()
    clock.advance(590)
    client.app = make_client(show, **options).app
    assert (await client.request()).text == "{'user': 'ada'}"


async def test_remember_me_sets_a_longer_lifetime(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = make_client(max_age=3600)
    await login(client, make_client, max_age=3600)
    client.app = make_client(lambda s: s.set_expiry(30 * DAY), max_age=3600).app
    response = await client.request()
    assert cookie_attributes(response.set_cookies[0])["max-age"] == str(int(30 * DAY))
    client.app = make_client(show, max_age=3600).app
    clock.advance(29 * DAY)
    assert (await client.request()).text == "{'user': 'ada'}"


async def test_zero_means_until_the_browser_closes(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = make_client(max_age=3600)
    await login(client, make_client, max_age=3600)
    client.app = make_client(lambda s: s.set_expiry(0), max_age=3600).app
    response = await client.request()
    assert "max-age" not in cookie_attributes(response.set_cookies[0])
    client.app = make_client(show, max_age=3600).app
    clock.advance(3600)  # the server still enforces max_age
    assert (await client.request()).text == "{}"


async def test_the_longest_lifetime_round_trips_in_a_signed_cookie(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """400 days (browsers keep no cookie longer), as max_age and from set_expiry(): a
    longer one was once accepted, and its signed deadline refused on the next request."""
    options: dict[str, Any] = {"max_age": 400 * DAY, "secret_key": SECRET}
    client = make_client(**options)
    await login(client, make_client, **options)
    client.app = make_client(lambda s: s.set_expiry(400 * DAY), **options).app
    response = await client.request()
    assert cookie_attributes(response.set_cookies[0])["max-age"] == str(400 * 86400)
    client.app = make_client(show, **options).app
    clock.advance(399 * DAY)
    assert (await client.request()).text == "{'user': 'ada'}"


async def test_expiry_in_the_past_deletes_the_session(
    make_client: MakeClient, clock: FakeClock
) -> None:
    client = make_client(max_age=3600)
    await login(client, make_client, max_age=3600)

    def shorten(session: Session) -> None:
        session.set_expiry(30 * DAY)

    client.app = make_client(shorten, max_age=3600).app
    await client.request()
    clock.advance(7200)
    client.app = make_client(lambda s: s.set_expiry(None), max_age=3600).app
    response = await client.request()
    assert cookie_attributes(response.set_cookies[0])["max-age"] == "0"
    client.app = make_client(show, max_age=3600).app
    assert (await client.request()).text == "{}"


async def test_metadata_is_exposed(make_client: MakeClient, clock: FakeClock) -> None:
    start = clock.now
    client = make_client(max_age=3600)
    await login(client, make_client, max_age=3600)
    clock.advance(100)
    client.app = make_client(lambda s: (s.created_at, s.expires_at, s.is_new), max_age=3600).app
    assert (await client.request()).text == repr((start, start + 3600, False))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_age": -5}, "max_age must be 0 or more"),
        ({"max_age": None}, "max_age must be a number"),
        ({"max_age": float("inf")}, "max_age must be a number"),
        ({"max_age": 400 * DAY + 1}, "longer than the 400 days a browser keeps a cookie"),
        ({"idle_timeout": 0}, "idle_timeout must be positive"),
        ({"max_age": 60, "idle_timeout": 120}, "idle_timeout (120s) is longer than max_age"),
        ({"touch_interval": 5}, "touch_interval only applies with an idle_timeout"),
        ({"idle_timeout": 60, "touch_interval": 60}, "touch_interval must be shorter"),
        ({"secret_key": "short"}, "at least 32 bytes"),
        ({"scope_key": ""}, "scope_key must be"),
        ({"samesite": "none"}, "samesite='none' needs secure=True"),
    ],
)
def test_bad_options_fail_when_the_middleware_is_built(
    options: dict[str, Any], message: str
) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError

    with pytest.raises(ConfigurationError) as error:
        SessionMiddleware(app, **options)
    assert message in str(error.value)


def test_a_store_that_is_not_a_store_is_refused() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise AssertionError

    with pytest.raises(ConfigurationError, match=r"store must implement sesh\.core\.store\.Store"):
        SessionMiddleware(app, store={})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"pass an instance, MemoryStore\(...\)"):
        SessionMiddleware(app, store=MemoryStore)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="secret_key must be a str, bytes, or a list"):
        SessionMiddleware(app, secret_key=12345678)  # type: ignore[arg-type]


async def test_remember_me_on_a_brand_new_session(
    make_client: MakeClient, clock: FakeClock
) -> None:
    """set_expiry() before the first write of a new session: the session's times start
    there, and the write that follows must not reset the lifetime to max_age."""

    def remember_then_login(session: Session) -> None:
        session.set_expiry(30 * DAY)
        session["user"] = "ada"

    client = make_client(remember_then_login, max_age=3600)
    response = await client.request()
    assert cookie_attributes(response.set_cookies[0])["max-age"] == str(int(30 * DAY))
    client.app = make_client(show, max_age=3600).app
    clock.advance(29 * DAY)
    assert (await client.request()).text == "{'user': 'ada'}"
