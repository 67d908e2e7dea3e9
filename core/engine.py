"""The session engine: one implementation of the request flow, driven by every integration.

An integration calls: ``start`` when a request arrives, ``load`` if ``wants_load`` says so,
``begin_response`` at the response start (and ``commit`` if it says so), and ``finish`` if
``wants_finish`` says so once the app has returned without error. The checks are plain
calls: most requests need no coroutine beyond the app's own.
The pure-ASGI middleware is a few lines around them; the framework adapters are too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Literal, TypedDict, TypeVar

from .cookies import MAX_LIFETIME, CookieSpec, SameSite, Secure, read_values
from .errors import ConfigurationError, SessionTooLarge, StoreUnavailable
from .session import ABANDONED, OPEN, STARTED, Session
from .store import ClientStore, Record, Store, pack_meta, unpack_meta
from .tokens import SecretKeys, TokenCodec, is_session_id, short_hash, store_key
from .types import Clock, Scope

logger = logging.getLogger("sesh")

DEFAULT_MAX_AGE = 14 * 24 * 60 * 60  # two weeks, as Starlette's middleware
MAX_SET_COOKIE = 4096
"""Bytes of one ``Set-Cookie`` (name, value and attributes) that every browser keeps."""

_SECURE_SCHEMES = frozenset({"https", "wss"})
_VARY_COOKIE = (b"vary", b"Cookie")
_IN_COOKIE = "cookie"  # the "store key" of a session that lives in its cookie
T = TypeVar("T")
Headers = Sequence[tuple[bytes, bytes]]
_NO_HEADERS: Headers = ()
_VARY_ONLY: Headers = (_VARY_COOKIE,)


OnStoreError = Literal["fail", "continue"]


class EngineOptions(TypedDict, total=False):
    """The engine's options that are not about the cookie (see :class:`SessionEngine`)."""

    idle_timeout: float | timedelta | None
    touch_interval: float | timedelta | None
    leeway: float | timedelta
    on_store_error: OnStoreError
    autoload: bool
    scope_key: str
    clock: Clock


class SessionOptions(EngineOptions, total=False):
    """Every keyword option of :class:`SessionEngine`, for ``**options`` that type checkers
    can follow (PEP 692), so that ``Middleware(SessionMiddleware, ...)`` type-checks."""

    secret_key: SecretKeys | None
    cookie_name: str
    max_age: float | timedelta
    browser_session: bool
    path: str
    domain: str | None
    secure: Secure
    httponly: bool
    samesite: SameSite
    partitioned: bool


class SessionEngine:
    """Reads the session cookie, loads and commits sessions through a store.

    ``store`` is a server-side :class:`~sesh.core.Store` (the cookie carries an id) or a
    :class:`~sesh.core.store.ClientStore` (the cookie carries the session). Every option is
    validated here, when the middleware is built.
    """

    def __init__(
        self,
        store: Store | ClientStore,
        *,
        secret_key: SecretKeys | None = None,
        cookie_name: str = "session",
        max_age: float | timedelta = DEFAULT_MAX_AGE,
        idle_timeout: float | timedelta | None = None,
        touch_interval: float | timedelta | None = None,
        browser_session: bool = False,
        leeway: float | timedelta = 0,
        on_store_error: OnStoreError = "fail",
        path: str = "/",
        domain: str | None = None,
        secure: Secure = "auto",
        httponly: bool = True,
        samesite: SameSite = "lax",
        partitioned: bool = False,
        autoload: bool = True,
        scope_key: str = "session",
        clock: Clock = time.time,
    ) -> None:
        if isinstance(store, ClientStore):
            self.client: ClientStore | None = store
        elif isinstance(store, Store):
            self.client = None
        else:
            raise ConfigurationError(
                "store must implement sesh.core.Store (load, create, update, touch, delete) "
                f"or sesh.core.store.ClientStore (seal, unseal); got {type(store).__name__}"
            )
        self.store = store
        self.tokens = TokenCodec(secret_key)
        self.cookie = CookieSpec(
            cookie_name,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )
        self.max_age = _seconds("max_age", max_age)
        if self.max_age > MAX_LIFETIME:
            raise ConfigurationError(
                f"max_age ({self.max_age:g}s) is longer than the 400 days a browser keeps a "
                "cookie (RFC 6265bis): lower it"
            )
        self.idle_timeout = None if idle_timeout is None else _seconds("idle_timeout", idle_timeout)
        if self.idle_timeout is not None and self.idle_timeout > self.max_age:
            raise ConfigurationError(
                f"idle_timeout ({self.idle_timeout:g}s) is longer than max_age "
                f"({self.max_age:g}s), so it could never apply: lower it or raise max_age"
            )
        if touch_interval is not None and self.idle_timeout is None:
            raise ConfigurationError("touch_interval only applies with an idle_timeout: set one")
        self.touch_interval = (
            (self.idle_timeout or 0) / 10
            if touch_interval is None
            else _seconds("touch_interval", touch_interval)
        )
        if self.idle_timeout is not None and self.touch_interval >= self.idle_timeout:
            raise ConfigurationError(
                "touch_interval must be shorter than idle_timeout, or sessions would expire "
                "while in use"
            )
        self.leeway = 0.0 if leeway == 0 else _seconds("leeway", leeway)
        if self.leeway > 300:
            raise ConfigurationError("leeway is for clock skew between servers: keep it <= 300s")
        if not isinstance(scope_key, str) or not scope_key:
            raise ConfigurationError("scope_key must be a non-empty str")
        if on_store_error not in ("fail", "continue"):
            raise ConfigurationError(
                f"on_store_error must be 'fail' (answer 503) or 'continue' (an empty, read-only "
                f"session), not {on_store_error!r}"
            )
        self.on_store_error = on_store_error
        self.browser_session = bool(browser_session)
        self.autoload = autoload
        self.scope_key = scope_key
        self.clock = clock

    # -- a request arrives -------------------------------------------------------------------

    def start(self, scope: Scope) -> Session:
        """The session for this request, before any store I/O.

        A session that came with a valid cookie for a server-side store still needs
        ``await load(session)`` (the middleware does it unless ``autoload=False``).
        """
        session = Session(self, scope.get("scheme") in _SECURE_SCHEMES)
        # scope["headers"]: the ASGI spec requires it in http and websocket scopes.
        values = read_values(scope["headers"], self.cookie.pattern)
        if not values:
            if values is None:
                logger.info("session cookie ignored: the cookie headers exceed the size limit")
            return session
        session._client_cookie = True
        # One value is the common case: checked here, without _one_valid's bookkeeping.
        if self.client is None:
            tokens = self.tokens
            lenient = self.clock() - self.leeway if tokens.signed else 0.0  # bare ids: no time
            if len(values) > 1:
                verified = _one_valid(values, tokens.load, lenient)
            elif (verified := tokens.load(values[0], lenient)) is None:
                _rejected(values[0])
            if verified is not None:
                session._pending = verified.session_id
                session._resign = verified.resign
            return session
        now = self.clock()
        if len(values) > 1:
            unsealed = _one_valid(values, self.client.unseal)
        elif (unsealed := self.client.unseal(values[0])) is None:
            _rejected(values[0])
        if unsealed is not None:
            self._accept(session, unsealed.session_id, _IN_COOKIE, unsealed.record, now)
            if unsealed.resign:  # an older key: rewrite the cookie, if it was accepted
                session._resign = session._key is not None
        return session

    def wants_load(self, session: Session) -> bool:
        """Whether an integration must ``await load(session)`` before the app runs: the
        request carried a valid cookie of a server-side store, and ``autoload`` is on."""
        return session._pending is not None and self.autoload

    async def load(self, session: Session) -> None:
        """Fetch the record of a session that came with a valid cookie.

        Raises :class:`StoreUnavailable` when the store is unreachable and
        ``on_store_error="fail"`` (the integration then answers 503); with ``"continue"``
        the session becomes empty, read-only and ``unavailable``.
        """
        session_id = session._pending
        if session_id is None:
            return
        key = store_key(session_id)
        try:
            record = await self.store.load(key)  # type: ignore[union-attr]
        except StoreUnavailable:
            self._outage(session, "loading")
            return
        session._pending = None
        now = self.clock()
        if record is None:
            session._reset(now)
            logger.info("session cookie names no live session (%s)", short_hash(session_id))
            return
        self._accept(session, session_id, key, record, now)

    def _accept(
        self, session: Session, session_id: str, key: str, record: Record, now: float
    ) -> None:
        """Make ``record`` the session's state if it is intact and unexpired; otherwise the
        session is new and empty."""
        try:
            created_at, deadline, touched_at, browser = unpack_meta(record.meta)
        except ValueError:
            logger.warning("stored session is corrupt; treated as none (%s)", short_hash(key))
            session._reset(now)
            return
        idle = self.idle_timeout
        lenient = now - self.leeway
        if deadline <= lenient or (idle is not None and touched_at + idle <= lenient):
            session._reset(now)  # expired: a store's TTL may lag our clock; a cookie may be
            return  # replayed
        # The store built record.data for this call alone: the session may keep it. Values
        # are decoded when first read (see Session).
        session._restore(
            session_id or None, key, record.data, created_at, deadline, touched_at, browser
        )
        if idle is not None:
            session._touch_due = now - touched_at >= self.touch_interval

    # -- the response starts -------------------------------------------------------------------

    def begin_response(self, session: Session, status: int, vary: bool = True) -> Headers | None:
        """The response is starting: the headers to add to it, or ``None`` when the store
        must be written first, and ``await commit(session, vary)`` gives them instead.

        ``status`` >= 500 abandons the session: nothing is saved, now or later. A websocket
        accept passes status 0. ``vary`` asks for ``Vary: Cookie`` when the session was read
        (http, not a websocket accept).
        """
        if status >= 500:
            session.phase = ABANDONED
            return _NO_HEADERS
        if not (session.accessed or session._touch_due or session._resign):
            session.phase = STARTED  # untouched: the common case, and the cheapest
            return _NO_HEADERS
        if session._loaded and session._dirty():
            if self.client is None:
                return None
            self._persist_in_cookie(session)  # no I/O: it all goes in the cookie
        return self._headers(session, vary)

    async def commit(self, session: Session, vary: bool) -> Headers:
        """Write what changed, when ``begin_response`` returned ``None``; the headers to add
        to the response that is starting.

        Raises :class:`StoreUnavailable` when the store is unreachable and
        ``on_store_error="fail"``: the integration answers 503 instead of the app's response.
        """
        try:  # begin_response() found changes: no second look before persist()'s own
            await self.persist(session)
        except StoreUnavailable:
            session.phase = ABANDONED
            self._outage(session, "saving")
            return _NO_HEADERS
        return self._headers(session, vary)

    @staticmethod
    def _headers(session: Session, vary: bool) -> Headers:
        session.phase = STARTED
        vary = vary and session.accessed
        cookie = session.set_cookie
        if cookie is None:
            return _VARY_ONLY if vary else _NO_HEADERS
        session.set_cookie = None
        return [(b"set-cookie", cookie), _VARY_COOKIE] if vary else [(b"set-cookie", cookie)]

    @staticmethod
    def wants_finish(session: Session) -> bool:
        """Whether ``await finish(session)`` has anything to save: the app changed the
        session after its response started."""
        return (
            session.phase == STARTED and session.accessed and session._loaded and session._dirty()
        )

    async def finish(self, session: Session) -> None:
        """The app returned without error: save what changed after the response started."""
        if self.wants_finish(session):
            try:
                await self.persist(session)
            except StoreUnavailable:
                logger.warning(
                    "session store unreachable: changes made after the response "
                    "started were not saved"
                )

    @asynccontextmanager
    async def open_session(self, session_id: str) -> AsyncIterator[Session]:
        """A stored session, outside any request (a worker, a job queue); see
        :func:`sesh.core.open_session`."""
        if self.client is not None:
            raise ConfigurationError(
                "a cookie store keeps each session in its browser: it cannot be opened outside "
                "a request; use a server-side store (MemoryStore, RedisStore)"
            )
        if not is_session_id(session_id):
            raise LookupError("not a session id: pass session.id, not the cookie's value")
        session = Session(self)
        session._pending = session_id
        await self.load(session)
        if session._key is None:
            raise LookupError("no live session has this id (it ended, or never existed)")
        session.phase = STARTED  # as after a response: the client's cookie cannot change now
        yield session
        if session._regenerated:
            raise RuntimeError("regenerate() needs the user's request, to send the new cookie")
        await self.persist(session)

    def _outage(self, session: Session, doing: str) -> None:
        """Apply the outage policy: raise for "fail", degrade the session for "continue"."""
        if self.on_store_error == "fail":
            logger.warning("session store unreachable while %s: answering 503", doing)
            raise StoreUnavailable(f"the session store is unreachable while {doing}")
        logger.warning("session store unreachable while %s: continuing without", doing)
        session._reset(self.clock())
        session._pending = None
        session.unavailable = True
        session.set_cookie = None

    # -- writing -------------------------------------------------------------------------

    async def persist(self, session: Session) -> None:
        """Write the session's changes, following the commit rules.

        Before the response starts, a cookie that must change is left in
        ``session.set_cookie``; after it, changes that would need a new cookie are dropped
        with a warning, because the client could never present it.
        """
        if not session._loaded or session.phase == ABANDONED or session.unavailable:
            return
        if self.client is not None:
            self._persist_in_cookie(session)
            return
        late = session.phase != OPEN
        changed, removed = session._changes()  # encodes first: a bad value writes nothing
        store: Store = self.store  # type: ignore[assignment]
        now = self.clock()

        if session._key is None:  # no record behind it: new, regenerated or invalidated
            if session._drop is not None:
                if late and session._regenerated:
                    logger.warning("regenerate() after the response started was ignored")
                    return
                dropped, regenerated = session._drop, session._regenerated
                existed = await store.delete(dropped)
                session._drop = None
                session._regenerated = False
                if regenerated and not existed:
                    # Deleted meanwhile (a logout, or another regenerate): never bring it back.
                    logger.warning(
                        "refused to recreate a session deleted by another request (%s)",
                        short_hash(dropped),
                    )
                    session._reset(now)
                    return
                if not changed and session._client_cookie and not late:
                    session.set_cookie = self.cookie.delete_cookie(session._secure)
            if changed:
                if late:
                    logger.warning(
                        "a new session written after the response started was dropped: "
                        "its cookie could not reach the client"
                    )
                    return
                await self._create(store, session, changed, now)
            return

        if changed or removed or session._expiry_changed:
            if session._expiry_changed:
                if late:  # safe: whichever of cookie and record expires first ends it
                    logger.warning(
                        "set_expiry() after the response started: the cookie keeps its old lifetime"
                    )
                session._resign = True  # the cookie's Max-Age (and signed deadline) changes
            session._touched_at = now
            ttl = session._expiry() - now
            if ttl <= 0:  # set_expiry() moved the deadline into the past
                await store.delete(session._key)
                self._expire_cookie(session, now, late)
                return
            if not await store.update(session._key, changed, removed, self._meta(session), ttl):
                logger.warning(
                    "refused to recreate a session deleted by another request (%s)",
                    short_hash(session._key),
                )
                session._reset(now)
                return
            session._written(changed)
        elif session._touch_due:
            session._touched_at = now
            session._touch_due = False
            await store.touch(session._key, self._meta(session), session._expiry() - now)
        if session._resign and not late:
            self._set_id_cookie(session, now)

    async def _create(
        self, store: Store, session: Session, data: dict[str, bytes], now: float
    ) -> None:
        session._touched_at = now
        ttl = session._expiry() - now
        record = Record(data, self._meta(session))
        for _ in range(3):  # a collision of 256-bit ids means a broken random source
            key = store_key(session.id)
            if await store.create(key, record, ttl):
                session._key = key
                session._written(data)
                self._set_id_cookie(session, now)
                return
            session._id = None
        raise RuntimeError("could not create a session: three fresh ids already existed")

    def _persist_in_cookie(self, session: Session) -> None:
        """The client-side store: every change rewrites the whole cookie."""
        client: ClientStore = self.client  # type: ignore[assignment]  # checked by the caller
        changed, removed = session._changes()
        if not (
            changed
            or removed
            or session._drop is not None
            or session._expiry_changed
            or session._resign
            or session._touch_due
        ):
            return
        now = self.clock()
        if session.phase != OPEN:
            logger.warning(
                "session changes after the response started were dropped: a cookie-store "
                "session travels in the response headers, which were already sent"
            )
            session._written(changed)  # what it would have been; the client keeps its cookie
            return
        if removed:
            data = {key: raw for key, raw in session._raw.items() if key not in removed}
            data.update(changed)
        else:
            data = session._raw | changed
        session._drop = None
        session._regenerated = False
        session._touched_at = now
        if not data or session._expiry() <= now:  # emptied, invalidated or expired: delete it
            session._written(changed)
            session._key = None
            self._expire_cookie(session, now, late=False)
            return
        record = Record(data, self._meta(session))
        try:
            self._set_cookie(session, now, client.seal(session.id, record))
        except SessionTooLarge:  # the store's compact form may fit; it costs more to make
            self._set_cookie(session, now, client.seal(session.id, record, compact=True))
        session._key = _IN_COOKIE
        session._written(changed)

    def _meta(self, session: Session) -> bytes:
        return pack_meta(
            session._created_at, session._deadline, session._touched_at, session._browser
        )

    def _set_id_cookie(self, session: Session, now: float) -> None:
        """The cookie of a server-side session: its (signed) id."""
        self._set_cookie(session, now, self.tokens.dump(session.id, session._deadline))

    def _set_cookie(self, session: Session, now: float, value: str) -> None:
        max_age = None if session._browser else max(0, math.ceil(session._deadline - now))
        header = self.cookie.set_cookie(value, max_age, session._secure)
        if len(header) > MAX_SET_COOKIE:
            raise SessionTooLarge(len(header), MAX_SET_COOKIE)
        session.set_cookie = header
        session._resign = False

    def _expire_cookie(self, session: Session, now: float, late: bool) -> None:
        had_cookie = session._client_cookie
        session._reset(now)
        if had_cookie and not late:
            session.set_cookie = self.cookie.delete_cookie(session._secure)


def _one_valid(values: list[bytes], check: Callable[..., T | None], *args: Any) -> T | None:
    """The one value under our name that passes ``check(value, *args)``; None if none does,
    or if two different ones do (cookie tossing: which one the browser meant is unknowable)."""
    found = found_value = None
    for value in values:
        verified = check(value, *args)
        if verified is None:
            _rejected(value)
        elif found is None or found == verified:
            found, found_value = verified, value
        else:
            logger.warning(
                "session cookie ignored: two different valid values were sent (%s, %s)",
                short_hash(found_value or b""),
                short_hash(value),
            )
            return None
    return found


def _rejected(value: bytes) -> None:
    """Log a cookie value that failed its check (by a hash: never the value itself)."""
    logger.info("session cookie rejected (%s)", short_hash(value))


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number of seconds or a timedelta: {value!r}")
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive: {value!r}")
    return float(value)
