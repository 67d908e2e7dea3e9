"""The session the application sees in ``scope["session"]``: a ``dict``.

Like Starlette's and Flask's sessions it is a ``dict`` subclass holding the decoded values,
so ``JSONResponse(session)``, ``json.dumps(session)``, ``dict(session)``, ``{**session}``
and ``session == {...}`` all work as they do on a dict. Every change through a dict method
is seen, and so is an in-place change to a value (``session["cart"].append(x)``): the
commit compares each value that could have changed with what was stored.

Everything else about the session (its id, record, times, what the app asked for) is kept
in a private :class:`~sesh.core.state.SessionState`; the methods here only pass the app's
requests on to it.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Any

from .codec import IMMUTABLE, check_key, encode_value
from .state import SessionState

_MISSING: Any = object()


class Session(dict[str, Any]):
    """A user's session: a ``dict[str, Any]`` with an id, a lifetime and a few verbs.

    Values must be data sesh can store (see the README's "What a session can hold"); one
    that cannot be stored raises :class:`~sesh.core.errors.SessionDataError` at the
    assignment, naming the key.
    """

    __slots__ = ("_state",)

    def __init__(self, data: Any = (), /, **kwargs: Any) -> None:
        """A session of its own, tied to no request and no store, holding ``data`` as if
        loaded (so it starts unmodified), as Starlette's ``Session(data)``: for tests and
        code written against Starlette's class. ``load()`` and ``save()`` refuse it. The
        engine makes the sessions of requests with :func:`attached`."""
        values = dict(data, **kwargs)
        self._state = SessionState.detached(values)  # refuses a value it cannot store
        dict.update(self, values)

    # -- reading: marks the session accessed (for Vary: Cookie) ------------------------------

    # A value of a mutable type that the app is handed may be changed in place; the state
    # notes which, so that a commit compares those alone (a 50-key session holding lists
    # is not re-encoded whole because one key was read).

    def __getitem__(self, key: str) -> Any:
        self._state.read()
        value = super().__getitem__(key)
        if type(value) not in IMMUTABLE:
            self._state.handed_out(key)
        return value

    def get(self, key: str, default: Any = None, /) -> Any:
        self._state.read()
        value = super().get(key, _MISSING)
        if value is _MISSING:
            return default
        if type(value) not in IMMUTABLE:
            self._state.handed_out(key)
        return value

    def __contains__(self, key: object) -> bool:
        self._state.read()
        return super().__contains__(key)

    def __iter__(self) -> Iterator[str]:
        self._state.read()
        return super().__iter__()

    def __len__(self) -> int:
        self._state.read()
        return super().__len__()

    def keys(self) -> Any:
        self._state.read()
        return super().keys()

    def values(self) -> Any:
        self._state.read_all()
        return super().values()

    def items(self) -> Any:
        self._state.read_all()
        return super().items()

    def mark_accessed(self) -> None:
        """Starlette's hook: ``request.session`` calls it, as for Starlette's own session."""
        self._state.read()

    # -- writing ------------------------------------------------------------------------------

    def __setitem__(self, key: str, value: Any) -> None:
        encode_value(check_key(key), value)  # refused here, so the traceback is the app's line
        self._state.assign(key, value)
        super().__setitem__(key, value)

    def __delitem__(self, key: str) -> None:
        self._state.write()
        super().__delitem__(key)
        self._state.emptied(self)

    def pop(self, key: str, default: Any = _MISSING, /) -> Any:
        if default is not _MISSING and not super().__contains__(key):
            # Nothing to remove: neither a read nor a write, as in Starlette's session.
            self._state.ensure_loaded()
            return default
        self._state.write()
        value = super().pop(key) if default is _MISSING else super().pop(key, default)
        self._state.emptied(self)
        return value

    def popitem(self) -> tuple[str, Any]:
        self._state.write()
        item = super().popitem()
        self._state.emptied(self)
        return item

    def setdefault(self, key: str, default: Any = None, /) -> Any:
        if super().__contains__(key):
            return self[key]
        self[key] = default
        return default

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Session:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        """Remove every key. A stored session then ends, as with ``invalidate()``."""
        self._state.write()
        super().clear()
        self._state.emptied(self)

    # -- copies are plain dicts: a copy is data, not a second handle on the session -----------

    def copy(self) -> dict[str, Any]:
        self._state.read_all()  # the copy shares the values
        return dict(super().items())

    def __copy__(self) -> dict[str, Any]:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> dict[str, Any]:
        return copy.deepcopy(self.copy(), memo)

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self.copy(),))

    @classmethod
    def fromkeys(cls, iterable: Iterable[str], value: Any = None, /) -> dict[str, Any]:  # type: ignore[override]
        return dict.fromkeys(iterable, value)

    def __repr__(self) -> str:
        # Never the id or the data: reprs end up in logs and tracebacks.
        state = "new" if self._state.is_new() else "stored"
        return f"<Session {state}, {super().__len__()} keys>"

    # -- identity and lifetime ----------------------------------------------------------------

    @property
    def id(self) -> str:
        """The session id. A new session gets one from the server when first asked."""
        return self._state.ensure_id()

    @property
    def is_new(self) -> bool:
        """True while the session has no stored record (none came with the request, or it
        was invalidated)."""
        return self._state.is_new()

    @property
    def accessed(self) -> bool:
        """True once the session was read or written in this request."""
        return self._state.accessed()

    @property
    def modified(self) -> bool:
        """True when the next commit has something to write (in-place changes included)."""
        return self._state.modified(self)

    @property
    def unavailable(self) -> bool:
        """True when the store could not be reached (``on_store_error="continue"``): the
        session is then empty and read-only."""
        return self._state.unavailable()

    @property
    def created_at(self) -> float:
        """When the session was first created (epoch seconds); kept by ``regenerate()``."""
        self._state.read()
        return self._state.created_at()

    @property
    def expires_at(self) -> float:
        """When the session expires unless used again (epoch seconds)."""
        self._state.read()
        return self._state.expires_at()

    def regenerate(self) -> None:
        """Give the session a new id and keep its data (at login: session fixation).

        The new record is created before the old one is deleted, so a failure leaves the
        old session as it was. Only before the response starts: the new id needs a cookie.
        """
        self._state.rotate()

    def invalidate(self) -> None:
        """End the session (logout): the record is deleted and the cookie expired at commit.

        The object stays usable as a new, empty session; writing to it afterwards starts a
        fresh session with a new id.
        """
        self._state.end(self)

    def set_expiry(self, seconds: float | timedelta | None) -> None:
        """Override this session's lifetime ("remember me").

        ``seconds`` from now, at most 400 days; ``0`` makes the cookie last until the
        browser closes (the server still enforces ``max_age``); ``None`` returns to the
        configured lifetime. Only before the response starts: the cookie changes.
        """
        self._state.set_expiry(seconds)

    # -- I/O ----------------------------------------------------------------------------------

    async def load(self) -> None:
        """Load the stored data (only needed with ``autoload=False``; loading twice is free)."""
        await self._state.engine.load(self)

    async def save(self) -> None:
        """Write the changes now instead of at the response start (in a websocket, say)."""
        await self._state.engine.save(self)


_new_dict = dict.__new__


def attached(state: SessionState) -> Session:
    """The session of a request, empty, driven by ``state`` (the engine's constructor)."""
    session: Session = _new_dict(Session)
    session._state = state
    return session


def state_of(session: Session) -> SessionState:
    """The state behind a session: for the engine, which drives it."""
    return session._state
