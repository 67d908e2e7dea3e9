"""The machine's RabbitMQ, for the tests that run a real Celery worker: each run sends its
tasks to a queue of its own and deletes that queue afterwards."""

from __future__ import annotations

import os

from kombu.connection import Connection

from conftest import need_service

BROKER_URL = os.environ.get("SESH_TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")


def broker_reachable() -> None:
    """Skip the test when the broker is not there; under CI=true, fail it."""
    try:
        with Connection(BROKER_URL, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
            connection.ensure_connection(max_retries=1)
        available = True
    except Exception:  # whatever kombu raises, the broker is not there
        available = False
    need_service(available, f"a Celery broker at {BROKER_URL}")


def delete_queue(queue: str) -> None:
    """Remove a queue of this run's own (never another's) from the broker."""
    with Connection(BROKER_URL, connect_timeout=5) as connection:  # type: ignore[no-untyped-call]
        connection.default_channel.queue_delete(queue)
