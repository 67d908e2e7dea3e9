"""Entry points around the engine: ``SessionMiddleware``, ``session_data``, ``open_session``."""

from __future__ import annotations

from collections.abc import Awaitable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from .engine import SessionEngine, SessionOptions
from .errors import NoSessionMiddleware, StoreUnavailable
from .session import Session
from .store import ClientStore, Store
from .types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from typing_extensions import Unpack

_SESSION_TYPES = frozenset({"http", "websocket"})
# The outage answer (on_store_error="fail"), the same from every integration.
OUTAGE_STATUS = 503
OUTAGE_HEADERS = [(b"content-type", b"text/plain; charset=utf-8"), (b"retry-after", b"1")]
OUTAGE_BODY = b"Service Unavailable: session store"
OUTAGE_CLOSE = 1013  # websocket close code: try again later
OUTAGE_REASON = "session store unavailable"

# Messages that start a response; the websocket denial response counts as http.
_STARTS = frozenset({"http.response.start", "websocket.http.response.start", "websocket.accept"})


class SessionMiddleware:
    """Puts a :class:`Session` into ``scope["session"]`` for http and websocket scopes.

    ``store`` is any server-side or client-side store; ``None`` keeps sessions in a
    :class:`~sesh.stores.memory.MemoryStore`. Every other
    keyword is an option of :class:`~sesh.core.engine.SessionEngine` (see the README).
    """

    def __init__(
        self,
        app: ASGIApp,
        store: Store | ClientStore | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        if store is None:
            from sesh.stores.memory import MemoryStore  # the default, imported only when used

            store = MemoryStore()
        self.app = app
        self.engine = SessionEngine(store, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in _SESSION_TYPES:
            await self.app(scope, receive, send)
            return
        engine = self.engine
        # `in` first: no method call on the path of every request.
        if engine.scope_key in scope and (existing := scope[engine.scope_key]) is not None:
            if isinstance(existing, Session):  # the same middleware stacked twice
                await self.app(scope, receive, send)
                return
            raise RuntimeError(
                f"scope[{engine.scope_key!r}] is already set by another session middleware; "
                "remove one, or give sesh another scope_key"
            )
        session = engine.start(scope)
        if engine.wants_load(session):
            try:
                await engine.load(session)
            except StoreUnavailable:
                await _unavailable(scope["type"], send)
                return
        scope[engine.scope_key] = session
        answered = False  # True once we answered 503 in the app's place

        # Not a coroutine function: it hands back send()'s own awaitable, so passing a
        # message through costs one plain call rather than a coroutine per message.
        def send_with_session(message: Message) -> Awaitable[None]:
            if answered:
                return _nothing()
            kind = message["type"]
            if kind in _STARTS:
                vary = kind != "websocket.accept"
                headers = engine.begin_response(session, message["status"] if vary else 0, vary)
                if headers is None:  # the store must be written first

                    async def commit_then_send() -> None:
                        nonlocal answered
                        try:
                            headers = await engine.commit(session, vary)
                        except StoreUnavailable:
                            answered = True
                            await _unavailable(scope["type"], send)
                            return
                        if headers:
                            message["headers"] = [*message.get("headers", ()), *headers]
                        await send(message)

                    return commit_then_send()
                if headers:
                    message["headers"] = [*message.get("headers", ()), *headers]
            return send(message)

        await self.app(scope, receive, send_with_session)
        if session.accessed and engine.wants_finish(session):  # untouched: nothing to save
            await engine.finish(session)


async def _nothing() -> None:
    """What sending costs once the response is taken over by the outage answer."""


async def _unavailable(kind: str, send: Send) -> None:
    """The outage answer: 503 for http; for a websocket, a close with 1013 (try again later)."""
    if kind == "websocket":
        await send({"type": "websocket.close", "code": OUTAGE_CLOSE, "reason": OUTAGE_REASON})
        return
    await send({"type": "http.response.start", "status": OUTAGE_STATUS, "headers": OUTAGE_HEADERS})
    await send({"type": "http.response.body", "body": OUTAGE_BODY})


def open_session(
    store: Store, session_id: str, **options: Unpack[SessionOptions]
) -> AbstractAsyncContextManager[Session]:
    """Open a stored session outside any request: in a worker, a job, another process.

        async with open_session(store, session_id) as session:
            session["report"] = "ready"

    Changes are committed when the block ends without error, with the rules of a request:
    only the keys changed are written, and a session deleted meanwhile (a logout) is never
    recreated. ``LookupError`` if no live session has this id. The cookie cannot change
    from here, so ``regenerate()`` is refused; ``invalidate()`` logs the user out. Pass the
    options the app uses (``max_age``, ``idle_timeout``, ...), so that expiry agrees.
    The id is a bearer credential: hand it to workers as you would a password.
    """
    return SessionEngine(store, **options).open_session(session_id)


def session_data(source: Any, scope_key: str = "session") -> Session:
    """The session of a request: pass an ASGI scope or any object with ``.scope``
    (a Starlette or FastAPI ``Request``, a bareASGI ``HttpRequest``, a websocket)."""
    scope = source if isinstance(source, dict) else getattr(source, "scope", None)
    session = scope.get(scope_key) if isinstance(scope, dict) else None
    if not isinstance(session, Session):
        raise NoSessionMiddleware(
            "no session here: wrap the application in sesh's SessionMiddleware (or use the "
            "adapter for your framework) so that requests carry a session"
        )
    return session
