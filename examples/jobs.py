"""What the demo app and its background job share: the store, the configuration, the job.

The job reports its progress into the user's session, one step at a time, committing each
step so that the page's next poll sees it. It runs as a FastAPI background task in the
app's process; or, when ``SESH_BROKER_URL`` is set, on a Celery worker, which needs a store
the two processes share (``SESH_REDIS_URL`` or ``SESH_DATABASE_URL``)::

    export SESH_REDIS_URL=redis://127.0.0.1:6379/0
    export SESH_BROKER_URL=amqp://guest:guest@127.0.0.1:5672//
    make demo-worker &   # celery --workdir examples -A jobs worker
    make demo
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from sesh.core import SessionConfig, SessionNotFound, open_session
from sesh.core.store import Store
from sesh.core.sync import SyncSessions
from sesh.stores.memory import MemoryStore
from sesh.stores.sql import SQLStore

JOB_STEPS = 10
JOB_STEP_SECONDS = float(os.environ.get("DEMO_JOB_STEP_SECONDS", "0.4"))
SECRET = os.environ.get("SESH_SECRET", "demo-only-secret-change-me-0123456789-abcdef")
BROKER_URL = os.environ.get("SESH_BROKER_URL")

# One configuration for the middleware and the job, so that both agree.
config = SessionConfig(secret_key=SECRET)


def make_store() -> tuple[Store, str]:
    """A store, and what the page says about it: in a SQL database when
    ``SESH_DATABASE_URL`` is set, in Redis when ``SESH_REDIS_URL`` is, else in memory."""
    if url := os.environ.get("SESH_DATABASE_URL"):
        sql = SQLStore(url)
        return sql, f"SQLStore on {sql.endpoint}"
    if url := os.environ.get("SESH_REDIS_URL"):
        from sesh.stores.redis import RedisStore

        redis = RedisStore(url, prefix=os.environ.get("DEMO_REDIS_PREFIX", "sesh-demo:"))
        return redis, f"RedisStore at {redis.endpoint}"
    return MemoryStore(), "MemoryStore: in this process, gone on restart"


def progress(step: int, runner: str) -> dict[str, Any]:
    return {"step": step, "runner": runner}


async def run_job(store: Store, session_id: str) -> None:
    """The job as a FastAPI background task, on the app's own store."""
    for step in range(1, JOB_STEPS + 1):
        await asyncio.sleep(JOB_STEP_SECONDS)  # the work
        try:
            async with open_session(store, session_id, config=config) as session:
                session["job"] = progress(step, "a FastAPI background task")
        except SessionNotFound:
            return  # the user logged out: nobody to report to


if BROKER_URL:
    from celery import Celery
    from celery.signals import worker_process_shutdown

    celery = Celery("sesh_demo", broker=BROKER_URL)
    celery.conf.task_default_queue = os.environ.get("DEMO_CELERY_QUEUE", "sesh-demo")
    worker_store, _ = make_store()
    if isinstance(worker_store, MemoryStore):
        raise RuntimeError(
            "SESH_BROKER_URL runs the job on a Celery worker, another process: set "
            "SESH_REDIS_URL or SESH_DATABASE_URL too, so that the app and the worker share "
            "the sessions"
        )
    # The worker's own store and event loop (see sesh.core.sync), started in each worker
    # process at its first job.
    sessions = SyncSessions(worker_store, config=config)

    @celery.task(name="sesh_demo.run_job")  # type: ignore[untyped-decorator]  # Celery has no types
    def run_job_on_celery(session_id: str) -> None:
        """The job as a sync Celery task, in a worker process."""
        for step in range(1, JOB_STEPS + 1):
            time.sleep(JOB_STEP_SECONDS)  # the work
            try:
                with sessions.open(session_id) as session:
                    session["job"] = progress(step, "Celery")
            except SessionNotFound:
                return

    @worker_process_shutdown.connect  # type: ignore[untyped-decorator]  # Celery has no types
    def close_sessions(**_: Any) -> None:
        sessions.close()  # the store's connections, and the thread that runs them
