"""A real Celery worker (prefork, on the machine's RabbitMQ) writes a task's progress into
a user's session with SyncSessions while the app reads it; per-key merge and no
resurrection hold across the two processes."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio
from celery import Celery

from sesh.core import Session, SessionConfig, SessionMiddleware
from sesh.core.testing import Client, responder
from sesh.stores.redis import RedisStore

from support import ANSWER_TIMEOUT
from support.broker import BROKER_URL, broker_reachable, delete_queue
from support.redis_keys import remove_own_keys
from support.servers import celery_worker

pytestmark = pytest.mark.anyio
SUPPORT = Path(__file__).resolve().parent / "support"
SECRET = "a-celery-test-secret-0123456789-abcdef"
RUN = f"sesh-test:celery-{os.getpid()}-{secrets.token_hex(4)}"
TURN_SECONDS = 60


class Worker:
    """The worker's queue and store prefix (this run's own), and a client that sends it tasks."""

    def __init__(self, queue: str, prefix: str) -> None:
        self.queue = queue
        self.prefix = prefix
        self.celery = Celery("sesh_tests_client", broker=BROKER_URL)

    def start(self, session_id: str, steps: int, signal: str) -> None:
        self.celery.send_task(
            "sesh_tests.report_progress", args=[session_id, steps, signal], queue=self.queue
        )


@pytest.fixture(scope="module")
def worker(redis_url: str) -> Iterator[Worker]:
    broker_reachable()
    queue, prefix = f"{RUN}:queue", f"{RUN}:sessions:"
    env = {
        "TEST_BROKER_URL": BROKER_URL,
        "TEST_QUEUE": queue,
        "TEST_REDIS_URL": redis_url,
        "TEST_PREFIX": prefix,
        "TEST_SECRET": SECRET,
    }
    worker = Worker(queue, prefix)
    try:
        with celery_worker(SUPPORT, "celery_app", env):
            yield worker
    finally:
        worker.celery.close()  # the sending side's broker connections
        delete_queue(queue)


@pytest.fixture
async def store(worker: Worker, redis_url: str) -> AsyncIterator[RedisStore]:
    store = RedisStore(redis_url, prefix=worker.prefix, timeout=ANSWER_TIMEOUT)
    yield store
    await remove_own_keys(store)
    await store.aclose()


@pytest.fixture
async def turns(redis_url: str) -> AsyncIterator[Turns]:
    turns = Turns(redis_url, f"{RUN}:signal:{secrets.token_hex(4)}")
    yield turns
    await turns.client.delete(f"{turns.signal}:done", f"{turns.signal}:go")
    await turns.client.aclose()


class Turns:
    """The test's side of the two lists the task and the test take turns through."""

    def __init__(self, redis_url: str, signal: str) -> None:
        self.client = redis.asyncio.Redis.from_url(redis_url)
        self.signal = signal

    async def step_done(self) -> str:
        popped = await self.client.blpop([f"{self.signal}:done"], timeout=TURN_SECONDS)
        assert popped is not None, "the worker reported nothing"
        step = popped[1]
        return step.decode() if isinstance(step, bytes) else step

    async def go_on(self) -> None:
        await self.client.rpush(f"{self.signal}:go", "go")


def app(store: RedisStore, action: Any = dict) -> SessionMiddleware:
    return SessionMiddleware(
        responder(action), store=store, config=SessionConfig(secret_key=SECRET)
    )


async def logged_in(store: RedisStore) -> tuple[Client, str]:
    ids: list[str] = []

    def login(session: Session) -> None:
        session["user"] = "ada"
        ids.append(session.id)

    client = Client(app(store, login))
    await client.request()
    return client, ids[0]


async def read(client: Client, store: RedisStore) -> dict[str, Any]:
    seen: list[dict[str, Any]] = []
    client.app = app(store, lambda session: seen.append(dict(session)))
    await client.request()
    return seen[0]


async def test_the_app_reads_the_progress_a_worker_writes(
    worker: Worker, store: RedisStore, turns: Turns
) -> None:
    client, session_id = await logged_in(store)
    await anyio.to_thread.run_sync(worker.start, session_id, 3, turns.signal)
    assert await turns.step_done() == "1"
    first = await read(client, store)
    assert first["progress"]["step"] == 1
    assert first["progress"]["pid"] != os.getpid()  # another process wrote it
    # The app changes another key between the worker's steps: both changes stay.
    client.app = app(store, lambda session: session.update(theme="dark"))
    await client.request()
    await turns.go_on()
    assert await turns.step_done() == "2"
    assert (await read(client, store))["progress"]["step"] == 2
    await turns.go_on()
    assert await turns.step_done() == "3"
    final = await read(client, store)
    assert final == {"user": "ada", "theme": "dark", "progress": final["progress"]}
    assert final["progress"]["step"] == 3


async def test_a_logout_during_the_task_is_never_undone(
    worker: Worker, store: RedisStore, turns: Turns
) -> None:
    client, session_id = await logged_in(store)
    await anyio.to_thread.run_sync(worker.start, session_id, 3, turns.signal)
    assert await turns.step_done() == "1"
    client.app = app(store, lambda session: session.invalidate())
    await client.request()
    await turns.go_on()
    assert await turns.step_done() == "ended"  # the task found no session to write to
    assert [key async for key in store.client.scan_iter(match=store.prefix + "*")] == []
    assert await read(client, store) == {}
