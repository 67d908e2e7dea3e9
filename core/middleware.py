"""Entry points around the engine: ``SessionMiddleware``, ``session_data``, ``open_session``."""

from __future__ import annotations

import logging
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from .config import SessionConfig, SessionOptions
from .engine import SKIPPED, SessionEngine, answer_outage, new_engine
from .errors import NoSessionMiddleware, StoreUnavailable
from .session import Session, state_of
from .store import ClientStore, Store
from .types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger("sesh")
_SESSION_TYPES = frozenset({"http", "websocket"})


class SessionMiddleware:
    """Puts a :class:`Session` into ``scope["session"]`` for http and websocket scopes.

    ``store`` is any server-side or client-side store; ``None`` keeps sessions in a
    :class:`~sesh.stores.memory.MemoryStore`. The options come as one ``config``
    (a :class:`SessionConfig`, shareable with workers) or as keywords (see the README).
    """

    def __init__(
        self,
        app: ASGIApp,
        store: Store | ClientStore | None = None,
        *,
        config: SessionConfig | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        self.app = app
        self.engine = new_engine(store, config, options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in _SESSION_TYPES:
            await self.app(scope, receive, send)
            return
        engine = self.engine
        config = engine.config
        # The emptiness test first: calling skips() on every request would cost 2.4% of a
        # session read's instructions (benchmarks/instructions.py memory s1).
        if config.skip_paths and engine.skips(scope):
            await self.app(scope, receive, send)
            return
        key = config.scope_key
        if _already_served(engine, scope):
            await self.app(scope, receive, send)
            return
        # open() and exchange_ends() in their halves: see the engine's module docstring.
        session = engine.start(scope)
        if engine.must_load(session):
            try:
                await engine.load(session)
            except StoreUnavailable:
                await answer_outage(engine.config, scope, receive, send)
                return
        scope[key] = session
        if scope["type"] == "websocket":
            receive = engine.wrap_receive(session, receive)
        try:
            await self.app(scope, receive, engine.wrap_send(scope, session, send))
        except BaseException as error:
            await engine.exchange_ends(session, error)
            raise
        if engine.ends(session):
            await engine.commit_late(session)
        if scope.get(key) is not session:
            _warn_replaced(engine)


def _already_served(engine: SessionEngine, scope: Scope) -> bool:
    """Whether a sesh middleware with the same settings already put a session in this
    scope (stacked twice: harmless); another session there is an error naming the fix."""
    key = engine.config.scope_key
    existing = scope.get(key)
    if existing is None:
        return False
    if isinstance(existing, Session):
        outer = state_of(existing).engine
        if outer.config == engine.config and outer.store is engine.store:
            return True
        raise RuntimeError(
            f"two sesh session middlewares with different settings (or stores) wrap this app, "
            f"both at scope[{key!r}]: remove one, or give one another scope_key"
        )
    raise RuntimeError(
        f"scope[{key!r}] is already set by another session middleware "
        f"({type(existing).__module__}.{type(existing).__name__}): remove it, or give sesh "
        "another scope_key"
    )


_warned_replaced: set[int] = set()


def _warn_replaced(engine: SessionEngine) -> None:
    """Another session middleware inside sesh's replaced the session: once per engine."""
    if id(engine) not in _warned_replaced:
        _warned_replaced.add(id(engine))
        logger.warning(
            "another session middleware inside sesh's replaced scope[%r]: sesh saved nothing "
            "of what the app did to it; remove the other middleware",
            engine.config.scope_key,
        )


def open_session(
    store: Store,
    session_id: str,
    *,
    config: SessionConfig | None = None,
    **options: Unpack[SessionOptions],
) -> AbstractAsyncContextManager[Session]:
    """Open a stored session outside any request: in a worker, a job, another process.

        async with open_session(store, session_id, config=config) as session:
            session["report"] = "ready"

    Changes are committed when the block ends without error, with the rules of a request:
    only the keys changed are written, and a session deleted meanwhile (a logout) is never
    recreated. :class:`SessionNotFound` (a ``LookupError``) if no live session has this id.
    The cookie cannot change from here, so ``regenerate()`` and ``set_expiry()`` raise
    :class:`CookieAlreadySent`; ``invalidate()`` logs the user out. Pass the app's
    ``config`` so that expiry agrees. The id is a bearer credential: hand it to workers as
    you would a password.
    """
    return SessionEngine(store, config, **options).open_stored(session_id)


def session_data(source: Any, scope_key: str = "session") -> Session:
    """The session of a request: pass an ASGI scope or any object with ``.scope``
    (a Starlette or FastAPI ``Request``, a bareASGI ``HttpRequest``, a websocket)."""
    scope = source if isinstance(source, dict) else getattr(source, "scope", None)
    session = scope.get(scope_key) if isinstance(scope, dict) else None
    if not isinstance(session, Session):
        raise no_session(
            scope,
            "wrap the application in sesh's SessionMiddleware (or use the adapter for your "
            "framework) so that requests carry a session",
        )
    return session


def no_session(scope: object, fix: str) -> NoSessionMiddleware:
    """The error for a request that has no session: the path ``skip_paths`` left out, or
    else no middleware, with the ``fix`` of the framework at hand."""
    if isinstance(scope, dict) and scope.get(SKIPPED):
        return NoSessionMiddleware(
            f"no session on {scope.get('path')!r}: the session middleware's skip_paths "
            "leaves it out; take the path out of skip_paths to give it a session"
        )
    return NoSessionMiddleware(f"no session here: {fix}")
