"""A small app whose every path is one identity action, for the identity tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from sesh.core import Session
from sesh.core.identity import (
    Users,
    list_sessions,
    login,
    logout,
    logout_everywhere,
    revoke,
)
from sesh.core.testing import Client
from sesh.core.types import Receive, Scope, Send

PASSWORDS = {"1": "p1", "2": "p2"}
NAMES = {"1": "ada", "2": "bob"}


async def load_user(uid: str) -> dict[str, str] | None:
    if uid not in PASSWORDS:
        return None
    return {"id": uid, "name": NAMES[uid], "password": PASSWORDS[uid]}


users = Users(load_user, auth_hash=lambda user: "hash-" + user["password"])


async def identity_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Each path one identity action; the answer is its result's repr."""
    session: Session = scope["session"]
    query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
    path = scope["path"]
    status = 200
    result: Any = None
    if path == "/login":
        uid = query["user"]
        login(
            session,
            uid,
            auth_hash="hash-" + PASSWORDS[uid],
            ip="10.0.0.1",
            user_agent=query.get("ua", "test agent"),
        )
        if "expiry" in query:  # "remember me" for that many seconds
            session.set_expiry(float(query["expiry"]))
    elif path == "/me":
        user = await users.current(scope)
        result = None if user is None else user["name"]
    elif path == "/set":
        session[query["key"]] = query["value"]
        status = int(query.get("status", "200"))
    elif path == "/get":
        result = session.get(query["key"])
    elif path == "/logout":
        logout(session)
    elif path == "/devices":
        found = await list_sessions(session, query["user"], current=session)
        result = [(info.handle, info.current, info.user_agent, info.ip) for info in found]
    elif path == "/revoke":
        result = await revoke(session, query["user"], query["handle"])
    elif path == "/everywhere":
        result = await logout_everywhere(session, query["user"], keep=session)
    elif path == "/id":
        result = session.id
    body = b"" if result is None else repr(result).encode()
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def say(client: Client, path: str) -> str:
    """The text of ``path``'s answer, which must not be a server error."""
    response = await client.request(path)
    assert response.status < 500, (path, response.status)
    return response.text
