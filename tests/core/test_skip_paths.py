"""``skip_paths``: static files and health checks get no session, no store call, no cookie."""

from __future__ import annotations

from typing import Any

import pytest

from sesh.core import (
    ConfigurationError,
    NoSessionMiddleware,
    SessionConfig,
    SessionMiddleware,
    session_data,
)
from sesh.core.testing import Client
from sesh.core.types import Receive, Scope, Send
from sesh.stores.memory import MemoryStore

from support.spy import SpyStore

pytestmark = pytest.mark.anyio


def counting_app() -> Any:
    """Counts visits where there is a session; says "no session" (and why) where not."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            session = session_data(scope)
        except NoSessionMiddleware as error:
            body = f"no session: {error}".encode()
        else:
            session["visits"] = session.get("visits", 0) + 1
            body = str(session["visits"]).encode()
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.send", "text": body.decode()})
            await send({"type": "websocket.close", "code": 1000})
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.fixture
def spy() -> SpyStore:
    return SpyStore(MemoryStore())


@pytest.fixture
def client(spy: SpyStore) -> Client:
    app = SessionMiddleware(counting_app(), store=spy, skip_paths=["/static/", "/healthz"])
    return Client(app)


@pytest.mark.parametrize("path", ["/static", "/static/app.css", "/static/a/b.js", "/healthz"])
async def test_a_skipped_path_has_no_session_and_sets_no_cookie(
    client: Client, spy: SpyStore, path: str
) -> None:
    response = await client.request(path)
    assert response.set_cookies == []
    assert response.text.startswith("no session: ")
    assert f"no session on {path!r}" in response.text
    assert "skip_paths" in response.text
    assert sum(spy.calls.values()) == 0


async def test_a_skipped_path_leaves_a_live_session_alone(client: Client, spy: SpyStore) -> None:
    assert (await client.request("/")).text == "1"
    calls = sum(spy.calls.values())
    response = await client.request("/static/app.css")  # the cookie goes along
    assert response.set_cookies == []
    assert sum(spy.calls.values()) == calls  # not even a load
    assert (await client.request("/")).text == "2"


@pytest.mark.parametrize("path", ["/", "/statics", "/static-files/x", "/api/static", "/health"])
async def test_other_paths_have_their_session(client: Client, path: str) -> None:
    response = await client.request(path)
    assert response.text == "1"
    assert len(response.set_cookies) == 1


async def test_a_websocket_on_a_skipped_path_has_no_session(client: Client, spy: SpyStore) -> None:
    sent = await client.websocket("/static/live")
    [accept] = [m for m in sent if m["type"] == "websocket.accept"]
    assert not accept.get("headers")
    assert any("skip_paths" in m.get("text", "") for m in sent)
    assert sum(spy.calls.values()) == 0


def test_the_option_takes_one_str_a_list_or_the_environment() -> None:
    assert SessionConfig(skip_paths="/static/").skip_paths == ("/static",)
    assert SessionConfig(skip_paths=("/a", "/b/")).skip_paths == ("/a", "/b")
    environ = {"SESH_SKIP_PATHS": "/static, /healthz/"}
    assert SessionConfig.from_env(environ).skip_paths == ("/static", "/healthz")
    assert SessionConfig().skip_paths == ()


@pytest.mark.parametrize("bad", ["/", "", "static", "/static/*", "/a?b", ["/ok", 3], [b"/x"]])
def test_a_prefix_that_is_not_a_path_is_refused(bad: Any) -> None:
    with pytest.raises(ConfigurationError, match="skip_paths holds path prefixes"):
        SessionConfig(skip_paths=bad)


def test_configs_that_skip_other_paths_differ() -> None:
    assert SessionConfig(skip_paths=["/a"]) != SessionConfig(skip_paths=["/b"])
    assert SessionConfig(skip_paths=["/a/"]) == SessionConfig(skip_paths="/a")
