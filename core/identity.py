"""Who is logged in: helpers over the session, not a user model.

The session holds the user's id under ``SessionConfig.user_key`` (Django's
``_auth_user_id`` by default, so that a login on a Django-shared session is a login on
both sides), and beside it what :func:`login` records: an auth hash, the login time and,
if the app passes them, the device's address and user agent.

* :func:`login`, :func:`logout`, :func:`user_id`: one session, in a request.
* :class:`Users`: the app's user loader; ``await users.current(request)`` gives the user of
  a request, ending the session when its auth hash no longer matches (a password change
  logs every device out on its next request, with no store round trip of its own).
* :func:`login_age`, :func:`require_recent_login`: gates for sensitive actions.
* :func:`list_sessions`, :func:`revoke`, :func:`logout_everywhere`: a user's sessions,
  through the store's per-user index (:class:`~sesh.core.store.UserIndexStore`).

CSRF tokens tied to the session are in :mod:`sesh.core.csrf`; :func:`login` replaces them.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Generic, TypeVar

import msgspec

from .codec import decode_values
from .csrf import CSRF_KEY
from .engine import SessionEngine
from .errors import ConfigurationError, LoginTooOld, NotInThisFormat, SessionError
from .middleware import session_data
from .session import Session, state_of
from .store import UserIndexStore, unpack_meta
from .tokens import as_user_id, handle_of, user_ref

__all__ = [
    "AUTH_HASH_KEY",
    "DEVICE_KEY",
    "LOGIN_AT_KEY",
    "SessionInfo",
    "Users",
    "list_sessions",
    "login",
    "login_age",
    "logout",
    "logout_everywhere",
    "require_recent_login",
    "revoke",
    "user_id",
]

AUTH_HASH_KEY = "_auth_user_hash"
"""The session key of the auth hash (Django's name: Django checks it too)."""
LOGIN_AT_KEY = "_auth_login_at"
"""When the user logged in, epoch seconds by the session's clock."""
DEVICE_KEY = "_auth_device"
"""``{"ip": ..., "user_agent": ...}`` when the app passed them to :func:`login`."""

MAX_USER_AGENT = 256
"""Characters of a user agent kept for the list of a user's sessions."""
_MAX_ROUNDS = 16  # logout_everywhere: each round ends what the index named since the last
U = TypeVar("U")
Where = Session | SessionEngine
"""A request's session (its engine is used), or the engine itself (``middleware.engine``,
``SessionEngine(store, config)``) outside a request."""


# -- one session ------------------------------------------------------------------------------


def login(
    session: Session,
    user_id: str | int,
    *,
    auth_hash: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> None:
    """Log ``user_id`` in to ``session``, as ``django.contrib.auth.login`` does.

    The session gets a new id at commit, keeping its data (a cart survives the login);
    when another user was logged in, or the same user with another ``auth_hash``, it
    starts empty instead. ``auth_hash`` is a value derived from the user's credentials
    (:class:`Users` ends the session when it no longer matches). ``ip`` and
    ``user_agent``, if given, show in :func:`list_sessions`. The CSRF token is replaced.
    Call it before the response starts: the cookie changes.
    """
    uid = _user_id_text(user_id)
    key = state_of(session).config.user_key
    current = session.get(key)
    if current is not None and (
        str(current) != uid or not _same(session.get(AUTH_HASH_KEY), auth_hash)
    ):
        session.clear()  # another user's data goes with its id (Django's flush)
    # Starlette's cookie format carries no id to fix: its whole content is re-signed anyway.
    with suppress(NotInThisFormat):
        session.regenerate()
    session[key] = uid
    if auth_hash is None:
        session.pop(AUTH_HASH_KEY, None)
    else:
        session[AUTH_HASH_KEY] = auth_hash
    session[LOGIN_AT_KEY] = state_of(session).config.clock()
    if ip is None and user_agent is None:
        session.pop(DEVICE_KEY, None)
    else:
        session[DEVICE_KEY] = {"ip": ip, "user_agent": (user_agent or "")[:MAX_USER_AGENT]}
    session.pop(CSRF_KEY, None)


def logout(session: Session) -> None:
    """End the session (``invalidate()``): its record goes, its cookie is expired."""
    session.invalidate()


def user_id(session: Session) -> str | None:
    """The id of the user logged in to ``session``, as a str, or None. Not checked against
    the user's credentials: :meth:`Users.current` does that."""
    return as_user_id(session.get(state_of(session).config.user_key))


def login_age(session: Session) -> float | None:
    """Seconds since :func:`login`, or None when the session records no login time."""
    at = session.get(LOGIN_AT_KEY)
    if user_id(session) is None or isinstance(at, bool) or not isinstance(at, int | float):
        return None
    return max(0.0, state_of(session).config.clock() - at)


def require_recent_login(session: Session, max_age: float) -> None:
    """Raise :class:`~sesh.core.errors.LoginTooOld` unless the user logged in within
    ``max_age`` seconds: before changing a password or an email, say."""
    age = login_age(session)
    if age is None or age > max_age:
        raise LoginTooOld(max_age, age)


class Users(Generic[U]):
    """The app's users, as the session knows them.

    ``load(user_id)`` gives the user with that id (a str), or None if there is none.
    ``auth_hash(user)``, if given, gives the value :func:`login` was passed for that user
    (derived from the password hash, say): a session holding another value is ended.
    Framework integrations (the FastAPI dependencies, the Starlette authentication
    backend) are built on one ``Users``.
    """

    def __init__(
        self,
        load: Callable[[str], Awaitable[U | None]],
        *,
        auth_hash: Callable[[U], str | None] | None = None,
    ) -> None:
        if not callable(load):
            raise ConfigurationError("load must be an async function: user id -> user or None")
        if auth_hash is not None and not callable(auth_hash):
            raise ConfigurationError("auth_hash must be a function: user -> str or None")
        self.load = load
        self.auth_hash = auth_hash

    async def current(self, request: Any) -> U | None:
        """The user logged in to the request's session (pass the request, or its scope), or
        None. Loaded once per request. A user who no longer exists, or whose auth hash
        changed, is logged out: the session ends at this response."""
        scope = request if isinstance(request, dict) else request.scope
        cached = scope.get("sesh.user")
        if cached is not None and cached[0] is self:
            return cached[1]  # type: ignore[no-any-return]
        session = session_data(scope)
        user = await self._check(session)
        scope["sesh.user"] = (self, user)
        return user

    async def _check(self, session: Session) -> U | None:
        uid = user_id(session)
        if uid is None:
            return None
        user = await self.load(uid)
        if user is None:
            logout(session)
            return None
        if self.auth_hash is not None:
            expected = self.auth_hash(user)
            if expected is not None and not _same(session.get(AUTH_HASH_KEY), expected):
                logout(session)  # the credentials changed since this login
                return None
        return user


# -- a user's sessions ------------------------------------------------------------------------


class SessionInfo(msgspec.Struct, frozen=True):
    """One of a user's live sessions, for a "your devices" page."""

    handle: str
    """Names the session to :func:`revoke`; never its id or cookie."""
    created_at: float
    """When the session began (epoch seconds)."""
    last_seen: float
    """When a request last used it, to within a few minutes (epoch seconds)."""
    login_at: float | None
    current: bool
    """It is the session passed as ``current``."""
    ip: str | None = None
    user_agent: str | None = None


async def list_sessions(
    where: Where, user_id: str | int, *, current: Session | None = None
) -> list[SessionInfo]:
    """The live sessions of ``user_id``, the most recently used first."""
    engine, index = _engine_and_index(where)
    user = _user_ref(user_id)
    current_key = None if current is None else state_of(current).live_key()
    found = []
    for key, values, meta in await _live(engine, index, user):
        created_at, _, touched_at, _ = meta
        device = values.get(DEVICE_KEY)
        device = device if isinstance(device, dict) else {}
        login_at = values.get(LOGIN_AT_KEY)
        found.append(
            SessionInfo(
                handle=handle_of(key),
                created_at=created_at,
                last_seen=touched_at,
                login_at=login_at if isinstance(login_at, int | float) else None,
                current=key == current_key,
                ip=_text(device.get("ip")),
                user_agent=_text(device.get("user_agent")),
            )
        )
    found.sort(key=lambda info: info.last_seen, reverse=True)
    return found


async def revoke(where: Where, user_id: str | int, handle: str) -> bool:
    """End the session of ``user_id`` named by ``handle`` (from :func:`list_sessions`).
    False, and nothing changes, when no live session of that user has this handle."""
    engine, index = _engine_and_index(where)
    user = _user_ref(user_id)
    for key, _, _ in await _live(engine, index, user):
        if isinstance(handle, str) and hmac.compare_digest(
            handle_of(key).encode(), handle.encode("utf-8", "replace")
        ):
            ended = await index.delete(key)
            await index.index_remove(user, [key])
            return ended
    return False


async def logout_everywhere(
    where: Where, user_id: str | int, *, keep: Session | None = None
) -> int:
    """End every session of ``user_id`` but ``keep`` (the request's own, after a password
    change, say); how many ended.

    A request that rotates one of these sessions meanwhile writes the new record, then
    notes it in the index, then deletes the old one; so when a round finds a session
    already gone, the next round finds its successor, and the rounds go on until one
    finds nothing new. A session written meanwhile is never kept alive: a write updates
    only a record that still exists.
    """
    _, index = _engine_and_index(where)
    user = _user_ref(user_id)
    kept = None if keep is None else state_of(keep).live_key()
    done: set[str] = set()
    ended = 0
    for _ in range(_MAX_ROUNDS):
        keys = [key for key in await index.index_members(user) if key not in done and key != kept]
        if not keys:
            return ended
        for key in keys:
            ended += await index.delete(key)
        done.update(keys)
        await index.index_remove(user, keys)
    raise SessionError(
        f"the sessions of this user kept being renewed through {_MAX_ROUNDS} rounds of "
        "logging them out: try again"
    )


async def _live(
    engine: SessionEngine, index: UserIndexStore, user: str
) -> list[tuple[str, dict[str, Any], tuple[float, float, float, bool]]]:
    """The live sessions the index names for ``user``: key, values and metadata of each.
    Entries whose session ended, or now belongs to someone else, are dropped."""
    now = engine.config.clock()
    live, stale = [], []
    for key in await index.index_members(user):
        record = await index.load(key)
        if record is None:
            stale.append(key)
            continue
        values = decode_values(record.data)[0]
        try:
            meta = unpack_meta(record.meta)
        except ValueError:
            stale.append(key)
            continue
        owner = as_user_id(values.get(engine.config.user_key))
        if meta[1] <= now or owner is None or user_ref(owner) != user:
            stale.append(key)
            continue
        live.append((key, values, meta))
    if stale:
        await index.index_remove(user, stale)
    return live


def _engine_and_index(where: Where) -> tuple[SessionEngine, UserIndexStore]:
    engine = state_of(where).engine if isinstance(where, Session) else where
    if not isinstance(engine, SessionEngine):
        raise TypeError(f"pass a request's session or a SessionEngine, not {type(where).__name__}")
    if engine.index is None:
        raise ConfigurationError(
            f"{type(engine.store).__name__} keeps no index of each user's sessions (a cookie "
            "store keeps them in the browsers), so it cannot list or end them: use "
            "MemoryStore, RedisStore, SQLStore or DjangoStore"
        )
    return engine, engine.index


# -- small checks -----------------------------------------------------------------------------


def _user_id_text(user_id: object) -> str:
    text = as_user_id(user_id)
    if text is None:
        raise SessionError(f"a user id is a non-empty str or an int, not {user_id!r}")
    return text


def _user_ref(user_id: object) -> str:
    return user_ref(_user_id_text(user_id))


def _same(stored: object, expected: str | None) -> bool:
    if expected is None:
        return stored is None
    return isinstance(stored, str) and hmac.compare_digest(
        stored.encode("utf-8", "replace"), expected.encode("utf-8", "replace")
    )


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
