"""The FastAPI dependency, in every kind of route, against the real FastAPI."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi import BackgroundTasks, FastAPI, WebSocket
from starlette.testclient import TestClient

from sesh.adapters.fastapi import SessionDep
from sesh.adapters.starlette import SessionMiddleware
from sesh.core import NoSessionMiddleware, Session
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

SECRET = "a-fastapi-test-secret-0123456789-abcdef"


def make_app(store: Any = None) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET, store=store)

    @app.get("/async")
    async def in_the_loop(session: SessionDep) -> dict[str, Any]:
        session["async"] = session.get("async", 0) + 1
        return dict(session)

    @app.get("/sync")
    def in_a_thread(session: SessionDep) -> dict[str, Any]:
        session["sync"] = session.get("sync", 0) + 1
        return dict(session)

    @app.get("/job")
    async def start_job(session: SessionDep, tasks: BackgroundTasks) -> dict[str, str]:
        session["job"] = "queued"

        def work(job_session: Session) -> None:
            job_session["job"] = "done"  # runs after the response was sent

        tasks.add_task(work, session)
        return {"job": "queued"}

    @app.get("/show")
    async def show(session: SessionDep) -> dict[str, Any]:
        return dict(session)

    @app.websocket("/ws")
    async def socket(websocket: WebSocket, session: SessionDep) -> None:
        await websocket.accept()
        await websocket.send_json(dict(session))
        session["socket"] = await websocket.receive_text()
        await websocket.close()

    return app


def test_async_and_sync_endpoints_both_save() -> None:
    with TestClient(make_app()) as client:
        assert client.get("/async").json() == {"async": 1}
        assert client.get("/sync").json() == {"async": 1, "sync": 1}
        assert client.get("/sync").json() == {"async": 1, "sync": 2}


def test_websocket_routes_get_the_same_session() -> None:
    with TestClient(make_app(MemoryStore())) as client:
        client.get("/async")
        with client.websocket_connect("/ws") as websocket:
            assert websocket.receive_json() == {"async": 1}
            websocket.send_text("hello")
        assert client.get("/show").json() == {"async": 1, "socket": "hello"}


def test_a_background_task_change_is_saved_with_a_server_side_store() -> None:
    with TestClient(make_app(MemoryStore())) as client:
        client.get("/async")
        assert client.get("/job").json() == {"job": "queued"}
        assert client.get("/show").json() == {"async": 1, "job": "done"}


def test_a_background_task_change_cannot_reach_a_cookie(caplog: pytest.LogCaptureFixture) -> None:
    with TestClient(make_app(CookieStore(SECRET))) as client, caplog.at_level(logging.WARNING):
        client.get("/job")
        assert client.get("/show").json() == {"job": "queued"}
    assert "cookie-store session travels in the response headers" in caplog.text


def test_without_the_middleware_the_error_names_the_fix() -> None:
    app = FastAPI()

    @app.get("/")
    async def home(session: SessionDep) -> dict[str, Any]:
        return dict(session)

    with TestClient(app) as client, pytest.raises(NoSessionMiddleware, match="add_middleware"):
        client.get("/")


def test_a_skipped_path_has_no_session_and_the_error_says_why() -> None:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, secret_key=SECRET, skip_paths=["/health"])

    @app.get("/health")
    async def health() -> str:
        return "ok"

    @app.get("/health/deep")
    async def deep(session: SessionDep) -> dict[str, Any]:
        return dict(session)

    with TestClient(app) as client:
        response = client.get("/health")
        assert response.json() == "ok"
        assert "set-cookie" not in response.headers
        with pytest.raises(NoSessionMiddleware, match=r"'/health/deep'.*skip_paths"):
            client.get("/health/deep")
