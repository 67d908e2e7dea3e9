"""Sessions opened outside a request, by a worker that holds the session id."""

from __future__ import annotations

from typing import Any

import pytest

from sesh.core import ConfigurationError, Session, SessionMiddleware, open_session
from sesh.core.store import Store
from sesh.core.testing import Client, FakeClock, responder
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio
SECRET = "a-worker-test-secret-0123456789-abcdef"


async def user(store: Store, clock: FakeClock, **values: Any) -> tuple[Client, str]:
    """A browser with a stored session; and the session's id, as a worker would get it."""
    ids: list[str] = []

    def login(session: Session) -> None:
        session.update(values)
        ids.append(session.id)

    client = Client(
        SessionMiddleware(responder(login), store=store, clock=clock, secret_key=SECRET)
    )
    await client.request()
    client.app = SessionMiddleware(responder(dict), store=store, clock=clock, secret_key=SECRET)
    return client, ids[0]


async def test_a_worker_change_is_seen_by_the_next_request(
    any_store: Store, clock: FakeClock
) -> None:
    client, session_id = await user(any_store, clock, user="ada")
    async with open_session(any_store, session_id, clock=clock) as session:
        assert session["user"] == "ada"
        session["report"] = "ready"
    assert (await client.request()).text == "{'user': 'ada', 'report': 'ready'}"


async def test_a_worker_and_a_request_changing_different_keys_both_win(
    any_store: Store, clock: FakeClock
) -> None:
    client, session_id = await user(any_store, clock, user="ada")
    async with open_session(any_store, session_id, clock=clock) as session:
        client.app = SessionMiddleware(
            responder(lambda s: s.update(theme="dark")), store=any_store, clock=clock,
            secret_key=SECRET,
        )  # fmt: skip
        await client.request()  # a request commits while the worker holds the session
        session["report"] = "ready"
    client.app = SessionMiddleware(responder(dict), store=any_store, clock=clock, secret_key=SECRET)
    assert (await client.request()).text == "{'user': 'ada', 'theme': 'dark', 'report': 'ready'}"


async def test_a_worker_never_recreates_a_session_logged_out_meanwhile(
    any_store: Store, clock: FakeClock
) -> None:
    client, session_id = await user(any_store, clock, user="ada")
    async with open_session(any_store, session_id, clock=clock) as session:
        client.app = SessionMiddleware(
            responder(lambda s: s.invalidate()), store=any_store, clock=clock, secret_key=SECRET
        )
        await client.request()
        session["report"] = "ready"
    with pytest.raises(LookupError, match="no live session"):
        async with open_session(any_store, session_id, clock=clock):
            pass


async def test_an_error_in_the_block_saves_nothing(any_store: Store, clock: FakeClock) -> None:
    client, session_id = await user(any_store, clock, user="ada")

    async def failing_job() -> None:
        async with open_session(any_store, session_id, clock=clock) as session:
            session["half"] = "done"
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        await failing_job()
    assert (await client.request()).text == "{'user': 'ada'}"


async def test_a_worker_can_log_a_user_out(any_store: Store, clock: FakeClock) -> None:
    client, session_id = await user(any_store, clock, user="ada")
    async with open_session(any_store, session_id, clock=clock) as session:
        session.invalidate()
    assert (await client.request()).text == "{}"


async def test_regenerate_needs_a_request(any_store: Store, clock: FakeClock) -> None:
    _, session_id = await user(any_store, clock, user="ada")
    with pytest.raises(RuntimeError, match="needs a new cookie"):
        async with open_session(any_store, session_id, clock=clock) as session:
            session.regenerate()


@pytest.mark.parametrize("bad", ["", "x" * 43 + "/", "nope", "A" * 42])
async def test_what_is_not_an_id_is_refused(bad: str, clock: FakeClock) -> None:
    with pytest.raises(LookupError, match="not a session id"):
        async with open_session(MemoryStore(clock=clock), bad):
            pass


async def test_an_unknown_or_expired_id_is_refused(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    with pytest.raises(LookupError, match="no live session"):
        async with open_session(store, "U" * 43, clock=clock):
            pass
    _, session_id = await user(store, clock, user="ada")
    clock.advance(15 * 86400)
    with pytest.raises(LookupError, match="no live session"):
        async with open_session(store, session_id, clock=clock):
            pass


async def test_a_cookie_store_cannot_be_opened_outside_a_request() -> None:
    with pytest.raises(ConfigurationError, match="cannot be opened outside a request"):
        async with open_session(CookieStore(SECRET), "A" * 43):  # type: ignore[arg-type]
            pass
