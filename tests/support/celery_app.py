"""The Celery app of tests/test_celery.py, imported by a real worker process
(``celery -A celery_app worker``): a task writes its progress into a user's session.

Everything comes from the environment the test sets: the broker, the queue (one per run),
Redis and the store's prefix. The task and the test take turns through two Redis lists, so
that the test reads the session between steps without sleeping: after each step the task
pushes the step to ``<signal>:done`` and waits for the test's push to ``<signal>:go``.
"""

from __future__ import annotations

import os

import redis
from celery import Celery

from sesh.core import SessionConfig, SessionNotFound
from sesh.core.sync import SyncSessions
from sesh.stores.redis import RedisStore

REDIS_URL = os.environ["TEST_REDIS_URL"]
TURN_SECONDS = 60  # how long either side waits for the other before giving up

app = Celery("sesh_tests", broker=os.environ["TEST_BROKER_URL"])
app.conf.update(
    task_default_queue=os.environ["TEST_QUEUE"],
    worker_hijack_root_logger=False,
    worker_enable_remote_control=False,  # no pidbox queues left on the shared broker
    broker_connection_retry_on_startup=True,
)
# Built at import, in the worker's parent; each forked child starts its own loop and
# connections at its first task.
sessions = SyncSessions(
    RedisStore(REDIS_URL, prefix=os.environ["TEST_PREFIX"], timeout=5.0),
    config=SessionConfig(secret_key=os.environ["TEST_SECRET"]),
)
signals = redis.Redis.from_url(REDIS_URL)


@app.task(name="sesh_tests.report_progress")  # type: ignore[untyped-decorator]  # Celery has no types
def report_progress(session_id: str, steps: int, signal: str) -> None:
    for step in range(1, steps + 1):
        try:
            with sessions.open(session_id) as session:
                session["progress"] = {"step": step, "pid": os.getpid()}
        except SessionNotFound:
            signals.rpush(f"{signal}:done", "ended")
            return
        signals.rpush(f"{signal}:done", step)
        if step < steps and signals.blpop([f"{signal}:go"], timeout=TURN_SECONDS) is None:
            return
