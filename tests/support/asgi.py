"""Driving ASGI apps in-process: hand-built scopes, a ``send`` that collects, a cookie jar."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sesh.core import Session
from sesh.core.types import ASGIApp, Message, Receive, Scope, Send

Action = Callable[[Session], Any]


@dataclass
class Response:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes = b""
    messages: list[Message] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        wanted = name.lower().encode()
        return [value.decode("latin-1") for key, value in self.headers if key.lower() == wanted]

    @property
    def set_cookies(self) -> list[str]:
        return self.values("set-cookie")

    @property
    def text(self) -> str:
        return self.body.decode()


def cookie_attributes(set_cookie: str) -> dict[str, str]:
    """``Set-Cookie`` attributes by lower-cased name (the first pair is under ``""``)."""
    first, *rest = set_cookie.split("; ")
    found = {"": first}
    for item in rest:
        name, _, value = item.partition("=")
        found[name.lower()] = value
    return found


class Client:
    """Sends requests to an ASGI app and keeps the cookies it sets, like a browser would."""

    def __init__(self, app: Any, scheme: str = "http") -> None:
        # Any ASGI app, whichever way its framework types the callable.
        self.app: ASGIApp = app
        self.scheme = scheme
        self.jar: dict[str, str] = {}

    def _cookie_headers(self) -> list[tuple[bytes, bytes]]:
        if not self.jar:
            return []
        line = "; ".join(f"{name}={value}" for name, value in self.jar.items())
        return [(b"cookie", line.encode("latin-1"))]

    def _remember(self, set_cookies: Iterable[str]) -> None:
        for header in set_cookies:
            attributes = cookie_attributes(header)
            name, _, value = attributes[""].partition("=")
            if attributes.get("max-age") == "0":
                self.jar.pop(name, None)
            else:
                self.jar[name] = value

    def scope(
        self, kind: str, path: str, headers: Iterable[tuple[bytes, bytes]] | None, method: str
    ) -> Scope:
        scheme = self.scheme if kind == "http" else {"http": "ws", "https": "wss"}[self.scheme]
        return {
            "type": kind,
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": scheme,
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": list(self._cookie_headers() if headers is None else headers),
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }

    async def request(
        self,
        path: str = "/",
        *,
        method: str = "GET",
        headers: Iterable[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
    ) -> Response:
        """One http request; ``headers`` replaces the jar's cookie header when given."""
        scope = self.scope("http", path, headers, method)
        sent: list[Message] = []
        incoming: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def receive() -> Message:
            # The body once; then, as a server would once the exchange is over, a disconnect.
            return incoming.pop(0) if incoming else {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        await self.app(scope, receive, send)
        start = next(m for m in sent if m["type"] == "http.response.start")
        response = Response(
            start["status"],
            [(bytes(k), bytes(v)) for k, v in start.get("headers", [])],
            b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body"),
            sent,
        )
        self._remember(response.set_cookies)
        return response

    async def websocket(self, path: str = "/ws", incoming: Iterable[str] = ()) -> list[Message]:
        """A websocket connection: connect, the ``incoming`` texts, then a disconnect."""
        queue: list[Message] = [
            {"type": "websocket.connect"},
            *({"type": "websocket.receive", "text": text} for text in incoming),
            {"type": "websocket.disconnect", "code": 1000},
        ]
        sent: list[Message] = []

        async def receive() -> Message:
            return queue.pop(0)

        async def send(message: Message) -> None:
            sent.append(message)

        await self.app(self.scope("websocket", path, None, "GET"), receive, send)
        for message in sent:
            if message["type"] == "websocket.accept":
                headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
                self._remember(v.decode() for k, v in headers if k == b"set-cookie")
        return sent


def responder(
    action: Action | None = None, *, status: int = 200
) -> Callable[[Scope, Receive, Send], Awaitable[None]]:
    """An ASGI app that runs ``action(session)`` (sync or async) and answers with its result."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        result = None
        if action is not None:
            result = action(scope["session"])
            if inspect.isawaitable(result):
                result = await result
        body = b"" if result is None else repr(result).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app
