"""The current user, permissions, recent logins and CSRF as FastAPI dependencies, and the
test helpers that log a user in, against the real FastAPI."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Form, WebSocket
from starlette.requests import HTTPConnection
from starlette.testclient import TestClient

from sesh.adapters.fastapi import (
    BasePermission,
    IsAuthenticated,
    PermissionDependency,
    SessionDep,
    csrf_protect,
    current_user,
    optional_user,
    recent_login,
)
from sesh.core import SessionConfig, SessionMiddleware
from sesh.core.csrf import csrf_token
from sesh.core.identity import Users, login
from sesh.core.store import Store
from sesh.core.testing import (
    FakeClock,
    login_as,
    login_as_sync,
    preload,
    preload_sync,
    session_of,
    session_of_sync,
)
from sesh.stores.memory import MemoryStore
from sesh.stores.redis import RedisStore

SECRET = "a-fastapi-auth-test-secret-0123456789-abcdef"


@dataclass
class User:
    id: int
    name: str
    password: str
    is_admin: bool = False


PEOPLE = {1: User(1, "ada", "pw-ada", is_admin=True), 2: User(2, "bob", "pw-bob")}


async def load_user(user_id: str) -> User | None:
    return PEOPLE.get(int(user_id))


users = Users(load_user, auth_hash=lambda user: f"h:{user.password}")
CurrentUser = Annotated[User, Depends(current_user(users))]
OptionalUser = Annotated[User | None, Depends(optional_user(users))]


class IsAdmin(BasePermission):
    async def has_permission(self, request: HTTPConnection, user: Any) -> bool:
        return user is not None and user.is_admin


def make_app(store: Store, config: SessionConfig) -> FastAPI:
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store, config=config)

    @app.post("/login")
    async def log_in(session: SessionDep, name: Annotated[str, Form()]) -> str:
        user = next(user for user in PEOPLE.values() if user.name == name)
        login(session, user.id, auth_hash=f"h:{user.password}")
        return "ok"

    @app.get("/me")
    async def me(user: CurrentUser) -> str:
        return user.name

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> str | None:
        return None if user is None else user.name

    @app.get(
        "/admin", dependencies=[Depends(PermissionDependency([IsAuthenticated, IsAdmin], users))]
    )
    async def admin() -> str:
        return "admin"

    @app.post("/cart/{item}")
    async def add(session: SessionDep, item: int) -> list[int]:
        cart = [*session.get("cart", []), item]
        session["cart"] = cart
        return cart

    @app.get("/csrf")
    async def token(session: SessionDep) -> str:
        return csrf_token(session)

    @app.post("/password", dependencies=[Depends(recent_login(300)), Depends(csrf_protect)])
    async def change_password() -> str:
        return "changed"

    return app


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def config(clock: FakeClock) -> SessionConfig:
    return SessionConfig(secret_key=SECRET, clock=clock)


@pytest.fixture
def store(clock: FakeClock) -> MemoryStore:
    return MemoryStore(clock=clock)


@pytest.fixture
def client(store: MemoryStore, config: SessionConfig) -> TestClient:
    return TestClient(make_app(store, config))


def test_current_and_optional_user(client: TestClient) -> None:
    assert client.get("/me").status_code == 401
    assert client.get("/maybe").json() is None
    assert client.post("/login", data={"name": "bob"}).status_code == 200
    assert client.get("/me").json() == "bob"
    assert client.get("/maybe").json() == "bob"


def test_permissions_answer_401_then_403(client: TestClient) -> None:
    assert client.get("/admin").status_code == 401
    client.post("/login", data={"name": "bob"})
    assert client.get("/admin").status_code == 403
    client.post("/login", data={"name": "ada"})
    assert client.get("/admin").json() == "admin"


def test_a_password_change_logs_the_user_out(client: TestClient) -> None:
    client.post("/login", data={"name": "bob"})
    PEOPLE[2].password = "pw-new"
    try:
        assert client.get("/me").status_code == 401
        assert "session" not in client.cookies  # the session ended, not just hidden
    finally:
        PEOPLE[2].password = "pw-bob"


def test_a_sensitive_action_needs_a_recent_login_and_the_csrf_token(
    client: TestClient, clock: FakeClock
) -> None:
    client.post("/login", data={"name": "ada"})
    token = client.get("/csrf").json()
    assert client.post("/password").status_code == 403  # no token
    assert client.post("/password", headers={"x-csrf-token": token}).json() == "changed"
    assert client.post("/password", data={"csrf_token": token}).json() == "changed"
    assert client.post("/password", files={"csrf_token": (None, token)}).json() == "changed"
    assert client.post("/password", data={"csrf_token": "forged"}).status_code == 403
    clock.advance(301)
    assert client.post("/password", headers={"x-csrf-token": token}).status_code == 401


def test_login_as_with_the_test_client(
    client: TestClient, store: MemoryStore, config: SessionConfig
) -> None:
    login_as_sync(client, store, 1, config=config, auth_hash="h:pw-ada", data={"cart": [3]})
    assert client.get("/me").json() == "ada"
    assert client.get("/admin").json() == "admin"
    login_as_sync(client, store, 2, config=config, auth_hash="h:stale")
    assert client.get("/me").status_code == 401  # a hash the user no longer has


def test_the_apps_own_cookie_replaces_the_helpers(
    client: TestClient, store: MemoryStore, config: SessionConfig
) -> None:
    login_as_sync(client, store, 1, config=config, auth_hash="h:pw-ada")
    assert client.post("/login", data={"name": "bob"}).json() == "ok"  # a new id, a new cookie
    assert client.get("/me").json() == "bob"  # one session cookie, the app's: not two
    assert len(client.cookies.jar) == 1


def test_preload_and_read_with_the_test_client(
    client: TestClient, store: MemoryStore, config: SessionConfig
) -> None:
    assert session_of_sync(client, store, config=config) == {}
    preload_sync(client, store, {"cart": [3]}, config=config)
    assert client.post("/cart/4").json() == [3, 4]
    assert session_of_sync(client, store, config=config) == {"cart": [3, 4]}
    assert client.get("/maybe").json() is None


def test_login_as_on_redis_runs_on_the_apps_loop(
    redis_url: str, redis_prefix: str, config: SessionConfig
) -> None:
    store = RedisStore(redis_url, prefix=redis_prefix)
    with TestClient(make_app(store, config)) as client:
        login_as_sync(client, store, 2, config=config, auth_hash="h:pw-bob", data={"cart": [1]})
        assert client.get("/me").json() == "bob"
        assert client.post("/cart/5").json() == [1, 5]
        stored = session_of_sync(client, store, config=config)
        assert stored["_auth_user_id"] == "2"
        assert stored["cart"] == [1, 5]
        preload_sync(client, store, {"cart": [7]}, config=config)
        assert client.post("/cart/8").json() == [7, 8]
        assert client.portal is not None
        client.portal.call(store.aclose)


def test_the_helpers_keep_to_the_cookies_path(store: MemoryStore) -> None:
    config = SessionConfig(secret_key=SECRET, path="/shop")
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store, config=config)

    @app.get("/shop/cart")
    async def cart(session: SessionDep) -> Any:
        return session.get("cart")

    client = TestClient(app)
    preload_sync(client, store, {"cart": [1]}, config=config)
    assert client.get("/shop/cart").json() == [1]
    assert session_of_sync(client, store, config=config) == {"cart": [1]}


def test_a_cookie_the_client_would_not_send_back_is_refused(store: MemoryStore) -> None:
    config = SessionConfig(secret_key=SECRET, secure=True)
    with pytest.raises(ValueError, match="would not send"):
        preload_sync(TestClient(make_app(store, config)), store, {"cart": [1]}, config=config)
    client = TestClient(make_app(store, config), base_url="https://testserver")
    preload_sync(client, store, {"cart": [1]}, config=config)
    assert client.post("/cart/2").json() == [1, 2]


@pytest.mark.anyio
async def test_login_as_with_an_async_client(store: MemoryStore, config: SessionConfig) -> None:
    transport = httpx.ASGITransport(app=make_app(store, config))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        name, _ = await login_as(client, store, "1", config=config, auth_hash="h:pw-ada")
        assert name == "session"
        assert (await client.get("/me")).json() == "ada"
        await preload(client, store, {"cart": [2]}, config=config)
        assert (await client.post("/cart/6")).json() == [2, 6]
        assert await session_of(client, store, config=config) == {"cart": [2, 6]}


@pytest.mark.anyio
async def test_what_is_not_a_test_client_is_refused(
    store: MemoryStore, config: SessionConfig
) -> None:
    app = make_app(store, config)
    with pytest.raises(TypeError, match="not FastAPI"):
        await preload(app, store, {"cart": [2]}, config=config)
    with pytest.raises(TypeError, match="not FastAPI"):
        await session_of(app, store, config=config)


@pytest.mark.anyio
async def test_an_async_client_without_a_base_url_is_refused(
    store: MemoryStore, config: SessionConfig
) -> None:
    transport = httpx.ASGITransport(app=make_app(store, config))
    async with httpx.AsyncClient(transport=transport) as client:
        with pytest.raises(ValueError, match="base_url"):
            await preload(client, store, {"cart": [2]}, config=config)


def test_csrf_protect_can_guard_a_whole_app_with_websockets() -> None:
    app = FastAPI(dependencies=[Depends(csrf_protect)])
    app.add_middleware(SessionMiddleware, store=MemoryStore())

    @app.websocket("/ws")
    async def socket(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("open")
        await websocket.close()

    @app.post("/write")
    async def write() -> str:
        return "written"

    client = TestClient(app)
    with client.websocket_connect("/ws") as websocket:
        assert websocket.receive_text() == "open"
    assert client.post("/write").status_code == 403
