"""The session engine: one implementation of the request flow, driven by every integration.

An integration calls: ``start`` when a request arrives, ``load`` if the session must be
loaded, ``begin_response`` and (if it says so) ``commit`` at the response start, and
``finish`` when the app has returned without error.
The pure-ASGI middleware is a few lines around them; the framework adapters are too.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import msgspec

from .cookies import CookieSpec, SameSite, Secure, cookie_values
from .errors import ConfigurationError
from .session import ABANDONED, OPEN, STARTED, Session
from .store import Record, Store
from .tokens import SecretKeys, TokenCodec, short_hash, store_key
from .types import Clock, Scope

logger = logging.getLogger("sesh")

DEFAULT_MAX_AGE = 14 * 24 * 60 * 60  # two weeks, as Starlette's middleware

_META_VERSION = 1
_encode = msgspec.msgpack.Encoder().encode
_decode_value = msgspec.msgpack.Decoder().decode
# (version, created_at, deadline, touched_at, browser_session)
_decode_meta = msgspec.msgpack.Decoder(tuple[int, float, float, float, bool]).decode
_SECURE_SCHEMES = frozenset({"https", "wss"})
_VARY_COOKIE = (b"vary", b"Cookie")


class SessionEngine:
    """Reads the session cookie, loads and commits sessions through a store.

    Every option is validated here, when the middleware is built.
    """

    def __init__(
        self,
        store: Store,
        *,
        secret_key: SecretKeys | None = None,
        cookie_name: str = "session",
        max_age: float | timedelta = DEFAULT_MAX_AGE,
        idle_timeout: float | timedelta | None = None,
        touch_interval: float | timedelta | None = None,
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
        if not isinstance(store, Store):
            raise ConfigurationError(
                f"store must implement sesh.core.Store (load, create, update, touch, delete); "
                f"got {type(store).__name__}"
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
        if not isinstance(scope_key, str) or not scope_key:
            raise ConfigurationError("scope_key must be a non-empty str")
        self.autoload = autoload
        self.scope_key = scope_key
        self.clock = clock

    # -- a request arrives -------------------------------------------------------------------

    def start(self, scope: Scope) -> Session:
        """The session for this request, before any store I/O.

        A session that came with a valid cookie still needs ``await load(session)`` (the
        middleware does it unless ``autoload=False``).
        """
        now = self.clock()
        session = Session(self, now, scope.get("scheme") in _SECURE_SCHEMES)
        values = cookie_values(scope.get("headers", ()), self.cookie.name_bytes)
        if values:
            self._adopt(session, values, now)
        elif values is None:
            logger.info("session cookie ignored: the cookie headers exceed the size limit")
        return session

    def _adopt(self, session: Session, values: Iterable[bytes], now: float) -> None:
        session._client_cookie = True
        found = None
        for value in values:
            verified = self.tokens.load(value, now)
            if verified is None:
                logger.info("session cookie rejected (%s)", short_hash(value))
            elif found is None or found.session_id == verified.session_id:
                found = verified
            else:
                logger.warning("session cookie ignored: two different valid values were sent")
                return
        if found is not None:
            session._pending = found.session_id
            session._resign = found.resign
            session._loaded = False

    async def load(self, session: Session) -> None:
        """Fetch the record of a session that came with a valid cookie."""
        session_id = session._pending
        if session_id is None:
            return
        key = store_key(session_id)
        record = await self.store.load(key)
        now = self.clock()
        session._pending = None
        session._reset(now)  # what the session is unless the record proves usable
        if record is None:
            logger.info("session cookie names no live session (%s)", short_hash(session_id))
            return
        try:
            version, created_at, deadline, touched_at, browser = _decode_meta(record.meta)
            values = {field: _decode_value(raw) for field, raw in record.data.items()}
        except (msgspec.DecodeError, TypeError, ValueError):
            logger.warning("stored session is corrupt; treated as none (%s)", short_hash(key))
            return
        if version != _META_VERSION:
            logger.warning("stored session has unknown format %r (%s)", version, short_hash(key))
            return
        idle = self.idle_timeout
        if deadline <= now or (idle is not None and touched_at + idle <= now):
            return  # expired: the store's TTL may lag our clock
        session._id = session_id
        session._key = key
        session._raw = dict(record.data)
        session._values = values
        session._created_at = created_at
        session._deadline = deadline
        session._touched_at = touched_at
        session._browser = browser
        session._touch_due = idle is not None and now - touched_at >= self.touch_interval

    # -- the response starts -------------------------------------------------------------------

    @staticmethod
    def begin_response(session: Session, status: int) -> bool:
        """The response is starting. True if ``await commit(session, ...)`` must follow.

        Synchronous, so that the common case (a session nobody touched) costs no coroutine.
        ``status`` >= 500 abandons the session: nothing is saved, now or later. A websocket
        accept passes status 0.
        """
        if status >= 500:
            session.phase = ABANDONED
            return False
        if session.accessed or session._touch_due or session._resign:
            return True
        session.phase = STARTED
        return False

    async def commit(self, session: Session, vary: bool) -> list[tuple[bytes, bytes]]:
        """Persist what changed (after ``begin_response`` said so); the headers to add to
        the response that is starting. ``vary`` asks for ``Vary: Cookie`` when the session
        was read (http, not a websocket accept)."""
        await self.persist(session)
        session.phase = STARTED
        headers = []
        if session.set_cookie is not None:
            headers.append((b"set-cookie", session.set_cookie))
            session.set_cookie = None
        if vary and session.accessed:
            headers.append(_VARY_COOKIE)
        return headers

    async def finish(self, session: Session) -> None:
        """The app returned without error: save what changed after the response started."""
        if session.phase == STARTED and session.accessed:
            await self.persist(session)

    # -- writing -------------------------------------------------------------------------

    async def persist(self, session: Session) -> None:
        """Write the session's changes to the store, following the commit rules.

        Before the response starts, a cookie that must change is left in
        ``session.set_cookie``; after it, changes that would need a new cookie are dropped
        with a warning, because the client could never present it.
        """
        if not session._loaded or session.phase == ABANDONED:
            return
        late = session.phase != OPEN
        changed, removed = session._changes()  # encodes first: a bad value writes nothing
        store = self.store
        now = self.clock()

        if session._key is None:  # no record behind it: new, regenerated or invalidated
            if session._drop is not None:
                if late and session._regenerated:
                    logger.warning("regenerate() after the response started was ignored")
                    return
                existed = await store.delete(session._drop)
                regenerated = session._regenerated
                session._drop = None
                session._regenerated = False
                if regenerated and not existed:
                    # Deleted meanwhile (a logout, or another regenerate): never bring it back.
                    logger.warning("refused to recreate a session deleted by another request")
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
                await self._create(session, changed, now)
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
                session._reset(now)
                if not late:
                    session.set_cookie = self.cookie.delete_cookie(session._secure)
                return
            if not await store.update(session._key, changed, removed, self._meta(session), ttl):
                logger.warning("refused to recreate a session deleted by another request")
                session._reset(now)
                return
            session._written(changed)
        elif session._touch_due:
            session._touched_at = now
            session._touch_due = False
            await store.touch(session._key, self._meta(session), session._expiry() - now)
        if session._resign and not late:
            self._set_cookie(session, now)

    async def _create(self, session: Session, data: dict[str, bytes], now: float) -> None:
        session._touched_at = now
        ttl = session._expiry() - now
        record = Record(data, self._meta(session))
        for _ in range(3):  # a collision of 256-bit ids means a broken random source
            key = store_key(session.id)
            if await self.store.create(key, record, ttl):
                session._key = key
                session._written(data)
                self._set_cookie(session, now)
                return
            session._id = None
        raise RuntimeError("could not create a session: three fresh ids already existed")

    def _meta(self, session: Session) -> bytes:
        return _encode(
            (
                _META_VERSION,
                session._created_at,
                session._deadline,
                session._touched_at,
                session._browser,
            )
        )

    def _set_cookie(self, session: Session, now: float) -> None:
        value = self.tokens.dump(session.id, session._deadline)
        max_age = None if session._browser else max(0, math.ceil(session._deadline - now))
        session.set_cookie = self.cookie.set_cookie(value, max_age, session._secure)
        session._resign = False


def _seconds(name: str, value: Any) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number of seconds or a timedelta: {value!r}")
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive: {value!r}")
    return float(value)
