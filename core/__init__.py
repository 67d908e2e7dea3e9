"""sesh.core: HTTP sessions for any ASGI application, with no framework imports."""

from .cookies import CookieSpec
from .engine import EngineOptions, SessionEngine, SessionOptions
from .errors import (
    ConfigurationError,
    NoSessionMiddleware,
    SessionDataError,
    SessionError,
    SessionNotLoaded,
)
from .middleware import SessionMiddleware, open_session, session_data
from .session import Session
from .store import Record, Store

__all__ = [
    "ConfigurationError",
    "CookieSpec",
    "EngineOptions",
    "NoSessionMiddleware",
    "Record",
    "Session",
    "SessionDataError",
    "SessionEngine",
    "SessionError",
    "SessionMiddleware",
    "SessionNotLoaded",
    "SessionOptions",
    "Store",
    "open_session",
    "session_data",
]
