"""A drop-in for bareASGI-session, on the sesh engine.

``add_session_middleware(app, storage, ...)`` and ``session_data(request)`` keep
bareASGI-session's names, positional ``storage`` and keyword arguments, with their meaning
(bytes or str). The defaults differ, deliberately: cookies are HttpOnly, SameSite=Lax and
Secure on https, the Domain is never taken from the Host header, a client's session id is
never adopted, requests that never use the session create none, and sessions expire.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Literal, cast

from bareasgi import Application, HttpRequest, HttpResponse, WebSocket, WebSocketRequest
from bareasgi.http import HttpRequestCallback
from bareasgi.websockets import WebSocketRequestCallback

from sesh.core import Session, SessionEngine
from sesh.core.config import DEFAULT_MAX_AGE, OUTAGE_CLOSE, EngineOptions, OutageAnswer
from sesh.core.errors import ConfigurationError, StoreUnavailable
from sesh.core.middleware import no_session
from sesh.core.session import state_of
from sesh.core.store import ClientStore, Store
from sesh.core.types import Scope
from sesh.stores.memory import MemoryStore

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SESSION_CONTEXT_KEY", "MemorySessionStorage", "add_session_middleware", "session_data"]

SESSION_CONTEXT_KEY = "__bareasgi_session__"
MemorySessionStorage = MemoryStore
"""bareASGI-session's name for the in-memory store (with expiry, unlike the original)."""

_UNSET: Any = object()  # tells "not given" from an explicit False


def add_session_middleware(
    app: Application,
    storage: Store | ClientStore | None = None,
    *,
    context_key: str = SESSION_CONTEXT_KEY,
    cookie_name: bytes | str = b"bareASGI-session",
    expires: datetime | None = None,
    max_age: int | timedelta | None = None,
    path: bytes | str | None = None,
    domain: bytes | str | None = None,
    secure: bool = _UNSET,
    http_only: bool = _UNSET,
    same_site: bytes | str | None = None,
    secret_key: str | bytes | list[str | bytes] | None = None,
    **options: Unpack[EngineOptions],
) -> Application:
    """Give every http and websocket route of ``app`` a session; returns ``app``.

    ``storage`` is any sesh store (default: a :class:`MemorySessionStorage`). Without
    ``max_age`` or ``expires`` cookies last until the browser closes, as in bareASGI-session,
    but the server still ends a session two weeks after it was created. ``expires`` is
    turned into a lifetime when the middleware is added. ``secret_key`` signs session ids;
    the other sesh options (``idle_timeout``, ``on_store_error``, ...) follow as keywords.
    """
    if max_age is None and expires is not None:
        now = datetime.now(timezone.utc) if expires.tzinfo else datetime.now()
        max_age = expires - now
    lifetime = max_age.total_seconds() if isinstance(max_age, timedelta) else max_age
    engine = SessionEngine(
        storage if storage is not None else MemorySessionStorage(),
        secret_key=secret_key,
        cookie_name=_text(cookie_name),
        max_age=DEFAULT_MAX_AGE if lifetime is None else lifetime,
        browser_session=lifetime is None,
        path="/" if path is None else _text(path),
        domain=None if domain is None else _text(domain),
        secure="auto" if secure is _UNSET else secure,
        httponly=True if http_only is _UNSET else http_only,
        samesite="lax" if same_site is None else _text(same_site).lower(),  # type: ignore[arg-type]
        **options,
    )
    outage = engine.config.outage_answer
    if not isinstance(outage, OutageAnswer):
        raise ConfigurationError(
            "bareASGI answers an outage with a response of its own: give "
            "outage_answer=OutageAnswer(status=..., body=...), not another ASGI app"
        )
    sessions = _Sessions(engine, context_key, outage)
    app.middlewares.append(sessions.http)
    app.ws_middlewares.append(sessions.websocket)
    return app


def session_data(
    request: HttpRequest | WebSocketRequest,
    _type: type[Any] | None = None,
    *,
    context_key: str = SESSION_CONTEXT_KEY,
) -> Session:
    """The session of a bareASGI request (http or websocket). ``_type`` is taken for
    bareASGI-session 5's ``session_data(request, dict)``, and changes nothing: the session
    is always a :class:`~sesh.core.Session`, a mutable mapping."""
    session = request.context.get(context_key)
    if not isinstance(session, Session):
        raise no_session(
            request.scope,
            "call sesh.adapters.bareasgi.add_session_middleware(app) before serving the "
            "application",
        )
    return session


def _text(value: bytes | str) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else value


class _Sessions:
    """The engine's three entry points, called from bareASGI's middleware chains."""

    def __init__(self, engine: SessionEngine, context_key: str, outage: OutageAnswer) -> None:
        self.engine = engine
        self.context_key = context_key
        self.outage = outage

    async def _open(self, request: HttpRequest | WebSocketRequest) -> Session:
        scope = cast("Scope", request.scope)  # bareASGI types it as a TypedDict
        session = await self.engine.open(scope)  # may raise StoreUnavailable
        request.context[self.context_key] = session
        scope[self.engine.config.scope_key] = session  # so that sesh.core.session_data works
        return session

    async def http(self, request: HttpRequest, handler: HttpRequestCallback) -> HttpResponse:
        engine = self.engine
        if engine.skips(cast("Scope", request.scope)):
            return await handler(request)
        try:
            session = await self._open(request)
        except StoreUnavailable:
            return _outage(self.outage)
        try:
            response = await handler(request)
            response.headers = list(
                await engine.response_starts(session, response.status, response.headers or ())
            )
        except StoreUnavailable:
            return _outage(self.outage)
        except BaseException as error:
            await engine.exchange_ends(session, error)
            raise
        if response.body is None:
            await engine.exchange_ends(session)
        else:
            response.body = _then_end(response.body, engine, session)
        return response

    async def websocket(self, request: WebSocketRequest, handler: WebSocketRequestCallback) -> None:
        if self.engine.skips(cast("Scope", request.scope)):
            await handler(request)
            return
        try:
            session = await self._open(request)
        except StoreUnavailable:
            await request.web_socket.close(OUTAGE_CLOSE)
            return
        socket = _AcceptWithCookie(request.web_socket, self.engine, session)
        request.web_socket = socket
        try:
            await handler(request)
        except BaseException as error:
            await self.engine.exchange_ends(session, error)
            raise
        await self.engine.exchange_ends(session)


def _outage(answer: OutageAnswer) -> HttpResponse:
    return HttpResponse(answer.status, answer.headers(), _once(answer.body))


async def _once(body: bytes) -> AsyncIterator[bytes]:
    yield body


async def _then_end(
    body: AsyncIterable[bytes], engine: SessionEngine, session: Session
) -> AsyncIterator[bytes]:
    """Stream the body, then save what changed while it streamed (the late save)."""
    try:
        async for chunk in body:
            yield chunk
    except BaseException as error:
        await engine.exchange_ends(session, error)
        raise
    await engine.exchange_ends(session)


class _AcceptWithCookie(WebSocket):
    """The route's websocket, with the session committed into its accept headers.

    It serves bareASGI 4 and 5 alike. bareASGI 5 (Python 3.12+) added ``close(code,
    reason)``, ``wait_closed()``, ``state``, ``code`` and ``reason`` to the abstract
    ``WebSocket``; they pass straight through, and 4's socket never has them called.
    """

    def __init__(self, inner: WebSocket, engine: SessionEngine, session: Session) -> None:
        self._inner: Any = inner  # Any: its methods differ between bareASGI 4 and 5
        self._engine = engine
        self._session = session

    async def accept(
        self, subprotocol: str | None = None, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        try:
            merged = await self._engine.response_starts(
                self._session, 0, headers or [], websocket=True
            )
        except StoreUnavailable:
            await self._inner.close(OUTAGE_CLOSE)
            raise
        await self._inner.accept(subprotocol, list(merged))

    async def receive(self) -> bytes | str | None:
        result: bytes | str | None = await self._inner.receive()
        if result is None:  # bareASGI's word for "the client went away"
            state_of(self._session).saw_disconnect()
        return result

    async def send(self, content: bytes | str) -> None:
        await self._inner.send(content)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        if reason is None:  # the only form bareASGI 4 accepts
            await self._inner.close(code)
        else:
            await self._inner.close(code, reason)

    async def wait_closed(self) -> None:
        await self._inner.wait_closed()

    @property
    def state(self) -> Literal["connected", "open", "closed"]:
        state: Literal["connected", "open", "closed"] = self._inner.state
        return state

    @property
    def code(self) -> int:
        code: int = self._inner.code
        return code

    @property
    def reason(self) -> str | None:
        reason: str | None = self._inner.reason
        return reason
