"""A small app served by several uvicorn processes in the end-to-end tests: on RedisStore,
or on CookieStore when ``SESH_STORE=cookie``."""

from __future__ import annotations

import json
import os

from sesh.core import SessionMiddleware
from sesh.core.types import Receive, Scope, Send
from sesh.stores.cookie import CookieStore
from sesh.stores.redis import RedisStore


async def counter(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    session = scope["session"]
    if scope["path"] == "/visit":
        session["visits"] = session.get("visits", 0) + 1
        session.setdefault("servers", []).append(os.environ["SERVER_NAME"])
    body = json.dumps({"server": os.environ["SERVER_NAME"], **session}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


app = SessionMiddleware(
    counter,
    store=CookieStore(os.environ["SESH_SECRET"])
    if os.environ.get("SESH_STORE") == "cookie"
    else RedisStore(os.environ["SESH_REDIS_URL"], prefix=os.environ["SESH_PREFIX"]),
    secret_key=os.environ["SESH_SECRET"],
)
