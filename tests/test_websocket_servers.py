"""A session started in a websocket route, under real servers: uvicorn sends the cookie
with ``websocket.accept``; granian (2.x) declares ASGI 2.3 yet drops those headers, so a
session started there reaches no client. ``websocket_cookies=False`` is the setting for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import redis
import websockets

from support.servers import granian, uvicorn

SUPPORT = Path(__file__).resolve().parent / "support"
Server = Callable[..., AbstractContextManager[str]]


def handshake(url: str) -> dict[str, str]:
    """Open the websocket once, without a cookie; the handshake response's headers."""

    async def connect() -> dict[str, str]:
        async with websockets.connect(url.replace("http://", "ws://") + "/ws") as socket:
            assert await socket.recv() == "hello"
            assert socket.response is not None
            return {k.lower(): v for k, v in socket.response.headers.raw_items()}

    return asyncio.run(connect())


def records(redis_url: str, prefix: str) -> int:
    client = redis.Redis.from_url(redis_url)
    try:
        return len(list(client.scan_iter(match=prefix + "*")))
    finally:
        client.close()


@pytest.mark.parametrize(
    ("server", "setting", "cookie_sent", "stored"),
    [
        (uvicorn, "auto", True, 1),  # ASGI 2.4, and it sends accept headers
        (granian, "auto", False, 1),  # declares 2.3, drops the cookie: an orphan record
        (granian, "false", False, 0),  # told so: no session started, nothing stored
    ],
    ids=["uvicorn", "granian-auto", "granian-false"],
)
def test_a_session_started_in_a_websocket(
    redis_url: str,
    redis_prefix: str,
    server: Server,
    setting: str,
    cookie_sent: bool,
    stored: int,
) -> None:
    env = {
        "TEST_REDIS_URL": redis_url,
        "TEST_PREFIX": redis_prefix,
        "TEST_WEBSOCKET_COOKIES": setting,
    }
    with server(SUPPORT, "websocket_app:app", env) as url:
        headers = handshake(url)
    assert ("set-cookie" in headers) is cookie_sent
    assert records(redis_url, redis_prefix) == stored
