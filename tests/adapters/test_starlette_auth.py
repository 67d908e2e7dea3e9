"""request.user and request.auth from the session, through Starlette's own
AuthenticationMiddleware and ``@requires``, against the real Starlette."""

from __future__ import annotations

import pickle
from dataclasses import dataclass

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sesh.adapters.starlette import SessionAuthBackend, SessionMiddleware, SessionUser
from sesh.core import ConfigurationError, SessionConfig, session_data
from sesh.core.identity import Users, login, logout
from sesh.core.testing import login_as_sync, preload_sync, session_of_sync
from sesh.stores.memory import MemoryStore

SECRET = "a-starlette-auth-test-secret-0123456789-abc"


@dataclass
class User:
    id: int
    username: str
    is_admin: bool


async def load_user(user_id: str) -> User | None:
    return {"1": User(1, "ada", True)}.get(user_id)


users = Users(load_user)


async def log_in(request: Request) -> PlainTextResponse:
    login(session_data(request), 1)
    return PlainTextResponse("ok")


async def log_out(request: Request) -> PlainTextResponse:
    logout(session_data(request))
    return PlainTextResponse("ok")


async def whoami(request: Request) -> JSONResponse:
    user = request.user
    return JSONResponse(
        {
            "authenticated": user.is_authenticated,
            "name": user.display_name,
            "scopes": request.auth.scopes,
            "admin": getattr(user, "is_admin", None),
            "identity": user.identity if user.is_authenticated else None,
        }
    )


@requires("authenticated", status_code=401)
async def private(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello {request.user.username}")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def client(store: MemoryStore) -> TestClient:
    app = Starlette(
        routes=[
            Route("/login", log_in),
            Route("/logout", log_out),
            Route("/whoami", whoami),
            Route("/private", private),
        ],
        middleware=[  # the first is the outermost: the session wraps the authentication
            Middleware(SessionMiddleware, store=store, secret_key=SECRET),
            Middleware(AuthenticationMiddleware, backend=SessionAuthBackend(users)),
        ],
    )
    return TestClient(app)


def test_request_user_follows_the_session(client: TestClient) -> None:
    assert client.get("/whoami").json() == {
        "authenticated": False,
        "name": "",
        "scopes": [],
        "admin": None,
        "identity": None,
    }
    assert client.get("/private").status_code == 401
    client.get("/login")
    assert client.get("/whoami").json() == {
        "authenticated": True,
        "name": "ada",
        "scopes": ["authenticated"],
        "admin": True,  # the app's user's own attribute
        "identity": "1",
    }
    assert client.get("/private").text == "hello ada"
    client.get("/logout")
    assert client.get("/private").status_code == 401


def test_the_test_helpers_with_starlettes_test_client(
    client: TestClient, store: MemoryStore
) -> None:
    config = SessionConfig(secret_key=SECRET)  # what the middleware was given
    login_as_sync(client, store, 1, config=config, data={"theme": "dark"})
    assert client.get("/private").text == "hello ada"
    assert session_of_sync(client, store, config=config)["theme"] == "dark"
    client.get("/logout")
    assert session_of_sync(client, store, config=config) == {}
    preload_sync(client, store, {"_auth_user_id": "1"}, config=config)  # no login() at all
    assert client.get("/whoami").json()["identity"] == "1"


def test_a_session_user_copies_and_pickles() -> None:
    user = SessionUser(User(1, "ada", True), "1")
    assert pickle.loads(pickle.dumps(user)).username == "ada"  # noqa: S301 (our own bytes)
    assert not hasattr(SessionUser.__new__(SessionUser), "username")  # no user yet: no answer


def test_the_backend_wants_a_users() -> None:
    with pytest.raises(ConfigurationError, match="Users"):
        SessionAuthBackend(load_user)  # type: ignore[arg-type]
