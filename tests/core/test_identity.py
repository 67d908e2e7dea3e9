"""Identity helpers through the real middleware, on the memory store and real Redis."""

from __future__ import annotations

import logging

import pytest

from sesh.core import ConfigurationError, SessionConfig, SessionEngine, SessionMiddleware
from sesh.core.config import OnStoreError
from sesh.core.csrf import CSRF_KEY, csrf_token, csrf_valid
from sesh.core.errors import LoginTooOld, SessionError
from sesh.core.identity import (
    AUTH_HASH_KEY,
    LOGIN_AT_KEY,
    Users,
    list_sessions,
    login,
    login_age,
    logout_everywhere,
    require_recent_login,
    user_id,
)
from sesh.core.store import USER_INDEX_LIMIT, Store
from sesh.core.testing import Client, FakeClock, login_as, preload, responder, session_of
from sesh.core.types import Receive, Scope, Send
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

from conftest import SECRET
from support.identity_app import PASSWORDS, identity_app, say
from support.spy import IndexSpyStore

pytestmark = pytest.mark.anyio


@pytest.fixture
def app(any_store: Store, clock: FakeClock) -> SessionMiddleware:
    return SessionMiddleware(identity_app, store=any_store, secret_key=SECRET, clock=clock)


async def devices(client: Client, user: str = "1") -> list[tuple[str, bool, str, str]]:
    listed: list[tuple[str, bool, str, str]] = eval(  # noqa: S307 (our own repr)
        await say(client, f"/devices?user={user}")
    )
    return listed


async def test_login_rotates_the_id_and_keeps_the_data(app: SessionMiddleware) -> None:
    client = Client(app)
    await say(client, "/set?key=cart&value=apples")
    before = await say(client, "/id")
    old_cookie = dict(client.jar)
    await say(client, "/login?user=1")
    assert await say(client, "/id") != before
    assert await say(client, "/me") == "'ada'"
    assert await say(client, "/get?key=cart") == "'apples'"
    attacker = Client(app)  # whoever planted or stole the id from before the login
    attacker.jar = old_cookie
    assert await say(attacker, "/me") == ""


async def test_logging_in_again_rotates_the_id_too(app: SessionMiddleware) -> None:
    """The user does not change, so only login() itself can rotate here."""
    client = Client(app)
    await say(client, "/login?user=1")
    await say(client, "/set?key=cart&value=apples")
    before = await say(client, "/id")
    await say(client, "/login?user=1")
    assert await say(client, "/id") != before
    assert await say(client, "/get?key=cart") == "'apples'"


async def test_a_login_as_another_user_starts_empty(app: SessionMiddleware) -> None:
    client = Client(app)
    await say(client, "/login?user=1")
    await say(client, "/set?key=draft&value=ada's")
    await say(client, "/login?user=2")
    assert await say(client, "/me") == "'bob'"
    assert await say(client, "/get?key=draft") == ""
    assert await devices(client, "1") == []  # ada's session ended with her data


async def test_logout_ends_the_session(app: SessionMiddleware) -> None:
    client = Client(app)
    await say(client, "/login?user=1")
    cookie = dict(client.jar)
    await say(client, "/logout")
    assert client.jar == {}
    replay = Client(app)
    replay.jar = cookie
    assert await say(replay, "/me") == ""


async def test_a_password_change_logs_every_device_out(app: SessionMiddleware) -> None:
    phone, laptop = Client(app), Client(app)
    await say(phone, "/login?user=1")
    await say(laptop, "/login?user=1")
    PASSWORDS["1"] = "changed"
    try:
        assert await say(phone, "/me") == ""
        assert phone.jar == {}  # ended, not just hidden
        assert await say(laptop, "/me") == ""
        await say(laptop, "/login?user=1")  # a login with the new password
        assert await say(laptop, "/me") == "'ada'"
    finally:
        PASSWORDS["1"] = "p1"


async def test_a_user_who_no_longer_exists_is_logged_out(app: SessionMiddleware) -> None:
    client = Client(app)
    await say(client, "/login?user=2")
    del PASSWORDS["2"]
    try:
        assert await say(client, "/me") == ""
        assert client.jar == {}
    finally:
        PASSWORDS["2"] = "p2"


async def test_the_user_is_loaded_once_per_request() -> None:
    loads: list[str] = []

    async def counting(uid: str) -> str:
        loads.append(uid)
        return uid

    counted = Users(counting)

    async def twice(scope: Scope, receive: Receive, send: Send) -> None:
        login(scope["session"], "7")
        first, second = await counted.current(scope), await counted.current(scope)
        assert first == second == "7"
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    await Client(SessionMiddleware(twice, store=MemoryStore())).request()
    assert loads == ["7"]


async def test_devices_are_listed_and_one_can_be_revoked(app: SessionMiddleware) -> None:
    phone, laptop, other = Client(app), Client(app), Client(app)
    await say(phone, "/login?user=1&ua=phone")
    await say(laptop, "/login?user=1&ua=laptop")
    await say(other, "/login?user=2&ua=bob's")
    listed = await devices(laptop)
    assert sorted((ua, current, ip) for _, current, ua, ip in listed) == [
        ("laptop", True, "10.0.0.1"),
        ("phone", False, "10.0.0.1"),
    ]
    phone_handle = next(handle for handle, _, ua, _ in listed if ua == "phone")
    assert phone_handle not in str(phone.jar)  # a handle is not the token, nor in it
    # Bob cannot revoke Ada's phone, even with its handle.
    assert await say(other, f"/revoke?user=2&handle={phone_handle}") == "False"
    assert await say(phone, "/me") == "'ada'"
    assert await say(laptop, f"/revoke?user=1&handle={phone_handle}") == "True"
    assert await say(phone, "/me") == ""
    assert await say(laptop, "/me") == "'ada'"
    assert [ua for _, _, ua, _ in await devices(laptop)] == ["laptop"]
    assert await say(laptop, f"/revoke?user=1&handle={phone_handle}") == "False"


async def test_logout_everywhere_keeps_only_this_device(app: SessionMiddleware) -> None:
    browsers = [Client(app) for _ in range(4)]
    for client in browsers:
        await say(client, "/login?user=1")
    bob = Client(app)
    await say(bob, "/login?user=2")
    assert await say(browsers[0], "/everywhere?user=1") == "3"
    assert await say(browsers[0], "/me") == "'ada'"
    for client in browsers[1:]:
        assert await say(client, "/me") == ""
    assert await say(bob, "/me") == "'bob'"
    assert len(await devices(browsers[0])) == 1


async def test_logout_everywhere_from_outside_a_request(any_store: Store, clock: FakeClock) -> None:
    app = SessionMiddleware(identity_app, store=any_store, secret_key=SECRET, clock=clock)
    client = Client(app)
    await say(client, "/login?user=1")
    worker = SessionEngine(any_store, secret_key=SECRET, clock=clock)
    assert len(await list_sessions(worker, "1")) == 1
    assert await logout_everywhere(worker, 1) == 1  # an int id is the same user
    assert await say(client, "/me") == ""


async def test_index_entries_of_ended_sessions_are_dropped_when_read(
    app: SessionMiddleware,
) -> None:
    one, two = Client(app), Client(app)
    await say(one, "/login?user=1")
    await say(two, "/login?user=1")
    await say(one, "/logout")
    assert len(await devices(two)) == 1
    assert await app.engine.index.index_members(_ref("1")) == [  # type: ignore[union-attr]
        await _key_of(app, two)
    ]


async def test_sessions_past_the_limit_end_oldest_first(
    any_store: Store, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sesh.core.engine.USER_INDEX_LIMIT", 3)
    app = SessionMiddleware(identity_app, store=any_store, secret_key=SECRET, clock=clock)
    clients = [Client(app) for _ in range(4)]
    # Lifetimes a minute apart, the first login's shortest: on Redis the index scores by
    # the server's clock, which the fake clock does not move, and logins a millisecond
    # apart would tie.
    for n, client in enumerate(clients):
        await say(client, f"/login?user=1&expiry={3600 + 60 * n}")
    assert await say(clients[0], "/me") == ""  # the first login expires first: it went
    assert [await say(client, "/me") for client in clients[1:]] == ["'ada'"] * 3
    assert USER_INDEX_LIMIT == 1000


# -- the safety net: a user set without login() ------------------------------------------------


@pytest.fixture
def starlette_style(any_store: Store, clock: FakeClock) -> SessionMiddleware:
    """Code written for Starlette's cookie sessions: it sets "user_id" itself."""
    return SessionMiddleware(
        identity_app, store=any_store, secret_key=SECRET, clock=clock, user_key="user_id"
    )


async def test_a_user_set_without_login_still_rotates_the_id(
    starlette_style: SessionMiddleware, caplog: pytest.LogCaptureFixture
) -> None:
    client = Client(starlette_style)
    await say(client, "/set?key=cart&value=pears")
    before = await say(client, "/id")
    with caplog.at_level(logging.WARNING, logger="sesh"):
        await say(client, "/set?key=user_id&value=1")
        await say(client, "/set?key=user_id&value=2")
    assert await say(client, "/id") != before
    assert await say(client, "/get?key=cart") == "'pears'"
    rotated = [r for r in caplog.records if "rotated anyway" in r.getMessage()]
    assert len(rotated) == 1  # logged once, however often it happens
    assert before not in caplog.text
    # ... and the session is in the user's index, under the app's own key.
    assert len(await devices(client, "2")) == 1


async def test_the_safety_net_waits_for_a_successful_answer(
    starlette_style: SessionMiddleware,
) -> None:
    client = Client(starlette_style)
    await say(client, "/set?key=cart&value=pears")
    before = await say(client, "/id")
    await say(client, "/set?key=user_id&value=1&status=403")
    assert await say(client, "/id") == before
    assert await say(client, "/get?key=user_id") == "'1'"


async def test_other_changes_do_not_rotate(starlette_style: SessionMiddleware) -> None:
    client = Client(starlette_style)
    await say(client, "/set?key=user_id&value=1")
    before = await say(client, "/id")
    await say(client, "/set?key=theme&value=dark")
    assert await say(client, "/id") == before


# -- recent logins, CSRF ---------------------------------------------------------------------


async def test_a_recent_login_gate(clock: FakeClock) -> None:
    engine = SessionEngine(MemoryStore(clock=clock), clock=clock)
    session = await engine.open({"type": "http", "headers": []})
    with pytest.raises(LoginTooOld, match="holds no login"):
        require_recent_login(session, 300)
    login(session, "1")
    assert login_age(session) == 0
    clock.advance(299)
    require_recent_login(session, 300)
    clock.advance(2)
    with pytest.raises(LoginTooOld, match="a login 301s old"):
        require_recent_login(session, 300)
    session[LOGIN_AT_KEY] = "yesterday"
    assert login_age(session) is None


async def test_csrf_tokens_are_masked_and_tied_to_the_session() -> None:
    engine = SessionEngine(MemoryStore())
    session = await engine.open({"type": "http", "headers": []})
    assert not csrf_valid(session, "anything")
    first, second = csrf_token(session), csrf_token(session)
    assert first != second  # masked afresh each time
    assert csrf_valid(session, first)
    assert csrf_valid(session, second)
    other = await engine.open({"type": "http", "headers": []})
    csrf_token(other)
    assert not csrf_valid(other, first)
    for bad in ["", "x" * 500, first[:-2], first + "AA", "é" * 86, None]:
        assert not csrf_valid(session, bad)
    login(session, "1")  # a login replaces the secret: tokens of before are void
    assert CSRF_KEY not in session
    assert not csrf_valid(session, first)


async def test_login_refuses_what_is_not_a_user_id() -> None:
    session = await SessionEngine(MemoryStore()).open({"type": "http", "headers": []})
    for bad in ["", True, None, 1.5, b"1"]:
        with pytest.raises(SessionError, match="a user id"):
            login(session, bad)  # type: ignore[arg-type]
    login(session, 42)
    assert user_id(session) == "42"
    assert session["_auth_user_id"] == "42"  # Django's key, and Django's str ids
    assert AUTH_HASH_KEY not in session


async def test_a_cookie_store_says_it_keeps_no_index() -> None:
    engine = SessionEngine(CookieStore(SECRET))
    with pytest.raises(ConfigurationError, match="CookieStore keeps no index"):
        await list_sessions(engine, "1")
    with pytest.raises(ConfigurationError, match="cannot list or end them"):
        await logout_everywhere(engine, "1")


# -- helpers ----------------------------------------------------------------------------------


def _ref(uid: str) -> str:
    from sesh.core.tokens import user_ref

    return user_ref(uid)


async def _key_of(app: SessionMiddleware, client: Client) -> str:
    session_id = eval(await say(client, "/id"))  # noqa: S307 (our own repr)
    return app.engine.ids.key(session_id)


# -- outages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("failing", ["create", "index_add", "delete"])
@pytest.mark.parametrize("policy", ["fail", "continue"])
async def test_a_login_during_an_outage_leaves_the_session_as_it_was(
    clock: FakeClock, failing: str, policy: OnStoreError
) -> None:
    memory = MemoryStore(clock=clock)
    spy = IndexSpyStore(memory)
    app = SessionMiddleware(
        identity_app, store=spy, secret_key=SECRET, clock=clock, on_store_error=policy
    )
    client = Client(app)
    await say(client, "/login?user=1")
    await say(client, "/set?key=cart&value=apples")
    cookie = dict(client.jar)
    records = len(memory)
    spy.failing = {failing}
    response = await client.request("/login?user=2")
    assert response.status == (503 if policy == "fail" else 200)
    assert response.set_cookies == []
    spy.failing = set()
    assert client.jar == cookie
    assert await say(client, "/me") == "'ada'"
    assert await say(client, "/get?key=cart") == "'apples'"
    # Nothing half-written stays behind: a record made before the failure went again
    # (unless deleting is what fails: then it stays, unknown to any browser, until it expires).
    assert len(memory) == records + (failing == "delete")


async def test_a_user_key_holding_no_id_is_not_indexed(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    store = MemoryStore(clock=clock)
    app = SessionMiddleware(
        responder(lambda s: s.update(user=["not", "an", "id"])), store, clock=clock, user_key="user"
    )
    with caplog.at_level(logging.WARNING, logger="sesh"):
        assert (await Client(app).request()).status == 200
    assert "holds neither a str nor an int" in caplog.text
    assert store._users == {}


async def test_the_test_helpers_with_the_plain_asgi_client(
    any_store: Store, clock: FakeClock
) -> None:
    config = SessionConfig(secret_key=SECRET, clock=clock)
    client = Client(SessionMiddleware(identity_app, store=any_store, config=config))
    await login_as(client, any_store, 1, config=config, auth_hash="hash-p1", data={"cart": "figs"})
    assert await say(client, "/me") == "'ada'"
    assert len(await devices(client)) == 1  # in the user's index, as a real login is
    await say(client, "/set?key=theme&value=dark")
    stored = await session_of(client, any_store, config=config)
    assert (stored["cart"], stored["theme"], stored["_auth_user_id"]) == ("figs", "dark", "1")
    await say(client, "/logout")
    assert await session_of(client, any_store, config=config) == {}
    await preload(client, any_store, {"cart": "pears"}, config=config)
    assert await say(client, "/get?key=cart") == "'pears'"
    assert await say(client, "/me") == ""
