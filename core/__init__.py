"""sesh.core: HTTP sessions for any ASGI application, with no framework imports.

What applications use is here. Store authors find their contract in :mod:`sesh.core.store`,
and tests their helpers (and the store contract suite) in :mod:`sesh.core.testing`.
"""

from .config import OutageAnswer, SessionConfig, SessionOptions
from .engine import SessionEngine
from .errors import (
    ConfigurationError,
    CookieAlreadySent,
    InvalidExpiry,
    NoSessionMiddleware,
    NotInThisFormat,
    SessionDataError,
    SessionError,
    SessionNotFound,
    SessionNotLoaded,
    SessionTooLarge,
    SessionUnavailable,
    StoreUnavailable,
)
from .middleware import SessionMiddleware, open_session, session_data
from .session import Session

__all__ = [
    "ConfigurationError",
    "CookieAlreadySent",
    "InvalidExpiry",
    "NoSessionMiddleware",
    "NotInThisFormat",
    "OutageAnswer",
    "Session",
    "SessionConfig",
    "SessionDataError",
    "SessionEngine",
    "SessionError",
    "SessionMiddleware",
    "SessionNotFound",
    "SessionNotLoaded",
    "SessionOptions",
    "SessionTooLarge",
    "SessionUnavailable",
    "StoreUnavailable",
    "open_session",
    "session_data",
]
