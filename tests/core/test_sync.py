"""SyncSessions: sync code (a Celery task, a script) opens stored sessions by id with the
rules of ``open_session``. The sync code runs in a thread, as it would beside an app."""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import anyio
import pytest

from sesh.core import (
    ConfigurationError,
    Session,
    SessionConfig,
    SessionMiddleware,
    SessionNotFound,
)
from sesh.core.store import Store
from sesh.core.sync import SyncSessions
from sesh.core.testing import Client, FakeClock, responder
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore
from sesh.stores.redis import RedisStore

from support import ANSWER_TIMEOUT

pytestmark = pytest.mark.anyio
SECRET = "a-sync-worker-test-secret-0123456789-abcdef"


@pytest.fixture
def config(clock: FakeClock) -> SessionConfig:
    return SessionConfig(secret_key=SECRET, clock=clock)


@pytest.fixture
def sessions(
    any_store: Store, config: SessionConfig, request: pytest.FixtureRequest
) -> Iterator[SyncSessions]:
    """The worker's side: the same records as the app's store, through a store of its own
    (an asyncio client belongs to one event loop)."""
    if isinstance(any_store, MemoryStore):
        own: Store = any_store  # a memory store has no connections to share
    else:
        assert isinstance(any_store, RedisStore)
        url = request.getfixturevalue("redis_url")
        own = RedisStore(url, prefix=any_store.prefix, timeout=ANSWER_TIMEOUT)
    with SyncSessions(own, config=config) as sessions:
        yield sessions


def app(store: Store, config: SessionConfig, action: Any = dict) -> SessionMiddleware:
    return SessionMiddleware(responder(action), store=store, config=config)


async def logged_in(store: Store, config: SessionConfig) -> tuple[Client, str]:
    ids: list[str] = []

    def login(session: Session) -> None:
        session["user"] = "ada"
        ids.append(session.id)

    client = Client(app(store, config, login))
    await client.request()
    client.app = app(store, config)
    return client, ids[0]


async def while_a_task_holds_it(
    sessions: SyncSessions, session_id: str, request: Callable[[], Awaitable[Any]]
) -> None:
    """Run ``request`` after a task in a thread opened the session and before it commits
    ``progress``."""
    opened = threading.Event()
    go_on = threading.Event()

    def task() -> None:
        with sessions.open(session_id) as session:
            opened.set()
            go_on.wait()
            session["progress"] = 100

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(anyio.to_thread.run_sync, task)
        await anyio.to_thread.run_sync(opened.wait)
        try:
            await request()  # commits while the task holds the session
        finally:
            go_on.set()


async def test_a_task_writes_what_the_next_request_reads(
    any_store: Store, config: SessionConfig, sessions: SyncSessions
) -> None:
    client, session_id = await logged_in(any_store, config)

    def task() -> None:
        with sessions.open(session_id) as session:
            assert session["user"] == "ada"
            session["progress"] = 50

    await anyio.to_thread.run_sync(task)
    assert (await client.request()).text == "{'user': 'ada', 'progress': 50}"


async def test_a_task_and_a_request_changing_different_keys_both_win(
    any_store: Store, config: SessionConfig, sessions: SyncSessions
) -> None:
    client, session_id = await logged_in(any_store, config)
    client.app = app(any_store, config, lambda s: s.update(theme="dark"))
    await while_a_task_holds_it(sessions, session_id, client.request)
    client.app = app(any_store, config)
    assert (await client.request()).text == "{'user': 'ada', 'theme': 'dark', 'progress': 100}"


async def test_a_task_never_recreates_a_session_logged_out_meanwhile(
    any_store: Store, config: SessionConfig, sessions: SyncSessions
) -> None:
    client, session_id = await logged_in(any_store, config)
    client.app = app(any_store, config, lambda s: s.invalidate())
    await while_a_task_holds_it(sessions, session_id, client.request)

    def reopen() -> None:
        with sessions.open(session_id):
            pass

    with pytest.raises(SessionNotFound, match="no live session"):
        await anyio.to_thread.run_sync(reopen)


async def test_an_error_in_the_block_saves_nothing(
    any_store: Store, config: SessionConfig, sessions: SyncSessions
) -> None:
    client, session_id = await logged_in(any_store, config)

    def task() -> None:
        with sessions.open(session_id) as session:
            session["half"] = "done"
            raise ValueError("the task failed")

    with pytest.raises(ValueError, match="the task failed"):
        await anyio.to_thread.run_sync(task)
    assert (await client.request()).text == "{'user': 'ada'}"


async def test_an_unknown_id_is_not_found(sessions: SyncSessions) -> None:
    def task(session_id: str) -> None:
        with sessions.open(session_id):
            pass

    with pytest.raises(SessionNotFound, match="no live session"):
        await anyio.to_thread.run_sync(task, "A" * 43)
    with pytest.raises(SessionNotFound, match="not a session id"):
        await anyio.to_thread.run_sync(task, "a cookie value, not an id")


async def test_it_refuses_to_block_an_event_loop(sessions: SyncSessions) -> None:
    with pytest.raises(RuntimeError, match="async with open_session"), sessions.open("A" * 43):
        pass


def test_a_cookie_store_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="server-side store"):
        SyncSessions(CookieStore(SECRET))


async def test_after_close_it_opens_again_on_a_new_thread(
    any_store: Store, config: SessionConfig, sessions: SyncSessions
) -> None:
    client, session_id = await logged_in(any_store, config)

    def write(value: int) -> None:
        with sessions.open(session_id) as session:
            session["progress"] = value

    await anyio.to_thread.run_sync(write, 1)
    [first] = [t for t in threading.enumerate() if t.name == "sesh-sync-sessions"]
    sessions.close()
    first.join(timeout=10)
    assert not first.is_alive()
    await anyio.to_thread.run_sync(write, 2)
    assert (await client.request()).text == "{'user': 'ada', 'progress': 2}"
