from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

from sesh.core import SessionMiddleware
from sesh.stores.memory import MemoryStore

from support.asgi import Action, Client, responder
from support.clock import FakeClock
from support.spy import SpyStore

SECRET = "a-test-secret-that-is-long-enough-0123456789"


def need_service(available: bool, what: str) -> None:
    """Skip a test whose service is missing, except under CI, where that is a failure."""
    if available:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{what} is required under CI=true but is not available")
    pytest.skip(f"{what} is not available")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def spy(store: MemoryStore) -> SpyStore:
    return SpyStore(store)


MakeClient = Callable[..., Client]


@pytest.fixture
def make_client(spy: SpyStore, clock: FakeClock) -> MakeClient:
    """A client for an app that runs ``action(session)``, behind sesh on the spied store."""

    def make(
        action: Action | None = None, *, status: int = 200, scheme: str = "http", **options: Any
    ) -> Client:
        options.setdefault("clock", clock)
        app = SessionMiddleware(responder(action, status=status), store=spy, **options)
        return Client(app, scheme=scheme)

    return make
