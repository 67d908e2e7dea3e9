"""The exceptions sesh raises. Each message says what to change."""

from __future__ import annotations


class SessionError(Exception):
    """Base class of every error sesh raises."""


class ConfigurationError(SessionError, ValueError):
    """The middleware or a store was built with settings that cannot work."""


class SessionNotLoaded(SessionError, RuntimeError):
    """Session data was used before ``await session.load()`` (with ``autoload=False``)."""


class SessionDataError(SessionError, TypeError):
    """A session value cannot be stored, or does not fit the type declared for it
    (:mod:`sesh.core.typed`); the message names the key."""


class NoSessionMiddleware(SessionError, LookupError):
    """``session_data()`` found no session: no session middleware wraps this app."""


class SessionTooLarge(SessionError, ValueError):
    """The session's cookie would exceed what browsers keep; nothing was sent."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the session cookie would be {size} bytes, over the {limit} bytes browsers keep: "
            "store less in the session, or use a server-side store (MemoryStore, RedisStore)"
        )
        self.size = size
        self.limit = limit


class StoreUnavailable(SessionError, ConnectionError):
    """A store could not be reached in time. Stores raise it; the engine applies the
    outage policy (``on_store_error``)."""


class SessionUnavailable(SessionError, RuntimeError):
    """The session store was unreachable (``on_store_error="continue"``): this request's
    session is empty and read-only."""


class SessionNotFound(SessionError, LookupError):
    """``open_session()`` found no live session under that id (it ended, or never existed)."""


class CookieAlreadySent(SessionError, RuntimeError):
    """The session's id or lifetime was changed where no cookie can carry the change: after
    the response started, or in ``open_session()``."""


class InvalidExpiry(SessionError, ValueError):
    """``set_expiry()`` was given something that is not a lifetime it can keep."""


class NotInThisFormat(SessionError, RuntimeError):
    """The store's cookie format (another library's) cannot carry what was asked for: a
    session id, a rotation or an expiry of the session's own."""


class LoginTooOld(SessionError, PermissionError):
    """A sensitive action needs a login younger than the session's
    (:func:`sesh.core.identity.require_recent_login`): ask the user to log in again."""

    def __init__(self, max_age: float, age: float | None) -> None:
        held = "no login" if age is None else f"a login {age:.0f}s old"
        super().__init__(
            f"this needs a login in the last {max_age:g}s, and the session holds {held}"
        )
        self.max_age = max_age
        self.age = age
