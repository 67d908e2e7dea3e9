"""An app whose websocket route starts a session, served by real servers in
tests/test_websocket_servers.py. Its store and options come from the environment."""

from __future__ import annotations

import os
from typing import Literal

from sesh.core import SessionMiddleware
from sesh.core.types import Receive, Scope, Send
from sesh.stores.redis import RedisStore

WEBSOCKET_COOKIES: dict[str, bool | Literal["auto"]] = {
    "auto": "auto",
    "true": True,
    "false": False,
}


async def route(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] != "websocket":
        await send({"type": "http.response.start", "status": 404})
        await send({"type": "http.response.body", "body": b""})
        return
    await receive()  # websocket.connect
    scope["session"]["joined"] = True  # a new session, started in the websocket
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": "hello"})
    await send({"type": "websocket.close", "code": 1000})


app = SessionMiddleware(
    route,
    store=RedisStore(os.environ["TEST_REDIS_URL"], prefix=os.environ["TEST_PREFIX"]),
    websocket_cookies=WEBSOCKET_COOKIES[os.environ.get("TEST_WEBSOCKET_COOKIES", "auto")],
)
