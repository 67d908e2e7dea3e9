"""A session's state: everything about it but the values the app sees.

:class:`SessionState` is one private record per session. The app changes it only through
:class:`~sesh.core.session.Session`'s public methods, which call the intents below
(``rotate``, ``end``, ``set_expiry`` ...); the engine changes it only when it loads a record
and when a commit plan has been carried out (``adopt``, ``committed`` ...). No other module
reads or writes its fields: the commit rules see it through a frozen
:class:`~sesh.core.commit.Snapshot`.

The values themselves live in the ``Session`` (a ``dict``); methods that need them take
that dict as an argument, so no reference cycle ties a request's objects together.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import msgspec

from .codec import IMMUTABLE, check_key, decode_values, encode_value
from .commit import Cookie, Moment, Plan, Snapshot, plan_unchanged
from .config import SessionConfig
from .cookies import MAX_LIFETIME
from .errors import (
    CookieAlreadySent,
    InvalidExpiry,
    NotInThisFormat,
    SessionError,
    SessionNotLoaded,
    SessionUnavailable,
)
from .store import unpack_meta
from .tokens import new_id, short_hash

if TYPE_CHECKING:
    from .engine import SessionEngine
    from .store import Record

logger = logging.getLogger("sesh")

# A value of an IMMUTABLE type cannot change in place: while it is the very object that was
# loaded (or last written), it needs no encoding to know it is unchanged, and a session
# holding only such values changes only through its methods.
_ABSENT = object()
_NOTHING_STORED: Mapping[str, Any] = MappingProxyType({})
_DETACHED_CONFIG = SessionConfig()  # the defaults, for the times of a detached session

SEEN_INTERVAL = 300.0
"""Without an idle timeout, how stale a logged-in session's last-use time may grow before a
request refreshes it (a touch: metadata and TTL only), for the list of a user's sessions."""

# The values live in the Session, a dict subclass whose own methods mark it accessed or
# modified; this module reads and writes them with dict's methods, which do neither.
_items, _keys, _clear, _update = dict.items, dict.keys, dict.clear, dict.update


class Lifetime(msgspec.Struct):
    """A session's times, as its record's metadata keeps them (epoch seconds)."""

    created_at: float
    deadline: float  # when it ends whatever happens
    touched_at: float  # last written or touched, for the idle timeout
    browser: bool  # its cookie has no Max-Age: it lasts until the browser closes


class SessionState:
    """One session's id, record, times and lifecycle. See the module docstring."""

    __slots__ = (
        "_abandoned",
        "_accessed",
        "_baseline",
        "_changed",
        "_config",
        "_cookie_due",
        "_decoded",
        "_disconnected",
        "_ended",
        "_engine",
        "_expiry_changed",
        "_had_cookie",
        "_handed",
        "_handed_all",
        "_lifetime",
        "_mutable",
        "_pending",
        "_record",
        "_resign",
        "_rotated_from",
        "_secure",
        "_session_id",
        "_started",
        "_touch_due",
        "_unavailable",
    )

    def __init__(
        self, engine: SessionEngine | None, secure: bool = False, had_cookie: bool = False
    ) -> None:
        self._engine = engine  # for Session.load() and save(); None: a detached session
        self._config = engine.config if engine is not None else _DETACHED_CONFIG
        self._secure = secure  # the request came over https or wss
        self._had_cookie = had_cookie  # the request carried a value under our cookie name
        self._pending: str | None = None  # a verified id whose record is not loaded yet
        self._resign = False  # the client's cookie is out of date (an older secret signed it)
        self._accessed = False
        self._unavailable = False
        self._started = False  # the client's cookie can no longer change
        self._abandoned = False
        self._disconnected = False
        self._cookie_due: Cookie = "keep"  # decided by an earlier save(), sent at the start
        self._touch_due = False
        self._new()

    def _new(self) -> None:
        """No record behind the session, no values, no id, no times yet."""
        self._session_id: str | None = None
        self._record: str | None = None  # the store key of the record behind the session
        self._ended: str | None = None  # the store key of a record the app ended
        self._rotated_from: str | None = None  # the store key regenerate() replaces
        self._baseline: Mapping[str, bytes] = _NOTHING_STORED  # the values as stored, encoded
        self._decoded: Mapping[str, Any] = _NOTHING_STORED  # the same, decoded
        # How a commit knows, without encoding anything, that no value changed: every
        # change but one made in place goes through the session's methods, which set
        # _changed; one in place needs a value of a mutable type that the app was handed
        # (read, or set by it). A commit compares those alone.
        self._changed = False  # a value set or removed since the last commit
        self._mutable = False  # some value held is of a type that can change in place
        self._handed: set[str] | None = None  # the keys of such values handed out, if any
        self._handed_all = False  # every value was (items(), values(), a copy)
        self._expiry_changed = False
        # A new session's clock starts when something first needs its times: a request that
        # never writes never asks, and one that loads a record replaces them at once.
        # Starting it here cost 1.7k instructions per request on s1, 2.1k on s3
        # (benchmarks/instructions.py memory).
        self._lifetime: Lifetime | None = None

    def _life(self) -> Lifetime:
        """The session's times, starting a new session's clock if it has none yet."""
        if self._lifetime is None:
            now = self._config.clock()
            max_age, browser = self._config.max_age, self._config.browser_session
            self._lifetime = Lifetime(now, now + max_age, now, browser)
        return self._lifetime

    # -- the engine: a request arrives --------------------------------------------------------

    @classmethod
    def detached(cls, values: dict[str, Any]) -> SessionState:
        """The state of a session tied to no request (``Session(data)``): ``values`` count
        as loaded, so the session starts unmodified."""
        state = cls(None)
        state._baseline = {
            key: encode_value(check_key(key), value) for key, value in values.items()
        }
        state._decoded = dict(values)
        state._mutable = any(type(value) not in IMMUTABLE for value in values.values())
        return state

    @property
    def engine(self) -> SessionEngine:
        if self._engine is None:
            raise SessionError(
                "this session belongs to no request and no store (it was made with "
                "Session(data)): it cannot be loaded or saved"
            )
        return self._engine

    @property
    def config(self) -> SessionConfig:
        return self._config

    @property
    def secure(self) -> bool:
        return self._secure

    def expect(self, session_id: str, resign: bool) -> None:
        """The cookie named this stored session: its record is to be loaded."""
        self._pending = session_id
        self._resign = resign

    def pending(self) -> str | None:
        """The id whose record must be loaded before the session can be used, if any."""
        return self._pending

    def adopt(
        self,
        values: dict[str, Any],
        session_id: str,
        key: str,
        record: Record,
        now: float,
        resign: bool = False,
    ) -> bool:
        """Take on a stored record if it is intact and unexpired, decoding its values into
        ``values``; False (and the session stays new and empty) if it is not."""
        self._pending = None
        try:
            created_at, deadline, touched_at, browser = unpack_meta(record.meta)
        except ValueError:
            logger.warning("stored session is corrupt; treated as none (%s)", short_hash(key))
            return False
        idle = self._config.idle_timeout
        lenient = now - self._config.leeway  # a store's TTL may lag our clock
        if deadline <= lenient or (idle is not None and touched_at + idle <= lenient):
            return False
        decoded, corrupt, mutable = decode_values(record.data)
        if corrupt:  # those keys are dropped, and removed at the next commit
            logger.warning(
                "stored session value is corrupt; %d keys dropped (%s)", corrupt, short_hash(key)
            )
            self._changed = True
        self._mutable = mutable
        _update(values, decoded)
        self._session_id = session_id or None
        self._record = key
        self._baseline = record.data  # the store handed it over (see Record); never changed
        self._decoded = decoded
        self._lifetime = Lifetime(created_at, deadline, touched_at, browser)
        self._resign = self._resign or resign
        if idle is not None:
            self._touch_due = now - touched_at >= self._config.touch_interval
        elif self._config.user_key in decoded:  # for the last-used time in a user's list
            self._touch_due = now - touched_at >= SEEN_INTERVAL
        return True

    def reset(self, values: dict[str, Any]) -> None:
        """Become a new, empty session (the record named by the cookie is gone, say)."""
        self._pending = None
        _clear(values)
        self._new()

    def go_unavailable(self, values: dict[str, Any]) -> None:
        """The store is unreachable and the policy is "continue": empty and read-only."""
        self.reset(values)
        self._unavailable = True
        self._cookie_due = "keep"

    # -- the app, through Session -------------------------------------------------------------

    def ensure_loaded(self) -> None:
        if self._pending is not None:
            raise SessionNotLoaded(
                "this session is not loaded yet (autoload=False): call "
                "`await session.load()` before using it"
            )

    def read(self) -> None:
        self.ensure_loaded()
        self._accessed = True

    def write(self) -> None:
        """A value is about to be removed (or set: :meth:`assign`)."""
        self.read()
        if self._unavailable:
            raise SessionUnavailable(
                "the session store is unreachable, so this session is read-only: check "
                "`session.unavailable` before writing"
            )
        self._changed = True

    def assign(self, key: str, value: Any) -> None:
        """``value`` is about to be set under ``key``."""
        self.write()
        if type(value) not in IMMUTABLE:
            self._mutable = True
            self.handed_out(key)

    def handed_out(self, key: str) -> None:
        """The app was handed the value under ``key``, of a mutable type."""
        if self._handed is None:
            self._handed = set()
        self._handed.add(key)

    def read_all(self) -> None:
        """The app was handed every value (``items()``, ``values()``, a copy)."""
        self.read()
        self._handed_all = True

    def emptied(self, values: dict[str, Any]) -> None:
        """A removal left ``values`` empty: a stored session then ends, as on logout."""
        if not dict.__len__(values) and (
            self._record is not None or self._rotated_from is not None
        ):
            self.end(values)

    def end(self, values: dict[str, Any]) -> None:
        """``invalidate()``: the record goes at commit and the cookie is expired; what is
        written afterwards starts a new session with a new id."""
        self.write()
        ended = self._rotated_from or self._record or self._ended
        _clear(values)
        self._new()
        self._ended = ended

    def _format_can(self, what: str) -> None:
        """Refuse what the store's cookie format cannot carry (another library's format)."""
        if self._engine is not None and self._engine.values_only is not None:
            raise NotInThisFormat(
                f"{what} needs a session id and times in the cookie, and "
                f"{self._engine.values_only} carries only the values: pass "
                "store=CookieStore(secret_key) for sesh's own cookie, or a server-side store"
            )

    def rotate(self) -> None:
        """``regenerate()``: a new id for the same values."""
        self._format_can("regenerate()")
        self.write()
        self._cookie_can_change("regenerate()")
        if self._record is not None:
            self._rotated_from = self._record
            self._record = None
            self._baseline = self._decoded = _NOTHING_STORED  # the new record is written whole
        self._session_id = None

    def set_expiry(self, seconds: float | timedelta | None) -> None:
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or not 0 <= seconds <= MAX_LIFETIME
        ):
            raise InvalidExpiry(
                "set_expiry() takes seconds from 0 to 400 days (the longest a browser keeps a "
                f"cookie), a timedelta or None: {seconds!r}"
            )
        self._format_can("set_expiry()")
        self.write()
        self._cookie_can_change("set_expiry()")
        life = self._life()
        if seconds is None:
            life.deadline = life.created_at + self._config.max_age
            life.browser = self._config.browser_session
        elif seconds == 0:
            life.deadline = life.created_at + self._config.max_age
            life.browser = True
        else:
            life.deadline = self._config.clock() + seconds
            life.browser = False
        self._expiry_changed = True

    def _cookie_can_change(self, what: str) -> None:
        if self._started:
            raise CookieAlreadySent(
                f"{what} needs a new cookie, and the response has already started (or this "
                "is a worker): call it before the response starts"
            )

    def ensure_id(self) -> str:
        self._format_can("session.id")
        self.read()
        return self.cookie_id()

    def new_id(self) -> str:
        """A fresh id for a record about to be created (another, after a collision)."""
        self._session_id = self._new_id()
        return self._session_id

    def _new_id(self) -> str:
        return new_id() if self._engine is None else self._engine.ids.new_id()

    def accessed(self) -> bool:
        return self._accessed

    def unavailable(self) -> bool:
        return self._unavailable

    def created_at(self) -> float:
        return self._life().created_at

    def is_new(self) -> bool:
        return self._record is None and self._pending is None and self._rotated_from is None

    def expires_at(self) -> float:
        life = self._life()
        idle = self._config.idle_timeout
        return life.deadline if idle is None else min(life.deadline, life.touched_at + idle)

    # -- the engine: committing ------------------------------------------------------------

    def needs_plan(self) -> bool:
        """Whether a commit now could do more than :func:`~sesh.core.commit.plan_unchanged`
        says: something is due, the app called a verb, or a value may have changed. Cheap
        (no encoding, no snapshot): most requests only read their session."""
        if (
            self._touch_due
            or self._resign
            or self._cookie_due != "keep"
            or self._ended is not None
            or self._rotated_from is not None
            or self._expiry_changed
        ):
            return True
        return self._accessed and (
            self._changed or self._handed is not None or (self._handed_all and self._mutable)
        )

    def starts_unchanged(self, status: int) -> Plan | None:
        """The response starts with ``status``: None when a commit must run first
        (:meth:`needs_plan`); otherwise the response has started with nothing to commit,
        and this is its plan (:func:`~sesh.core.commit.plan_unchanged`)."""
        if status >= 500:  # nothing is saved, now or later, for an error answer
            self._abandoned = True
        if self._started:  # no cookie could go with this start (see the engine's websocket
            return plan_unchanged(False, "late")  # checks): what changed is saved late
        if self.needs_plan():
            return None
        self._started = True
        return plan_unchanged(self._accessed, "start")

    def exchange_ended(self) -> bool:
        """The app returned: the client's cookie can no longer change (if the app never
        started a response, none can go out now). Whether a late commit is due."""
        self._started = True
        return self._accessed and not self._abandoned and self.needs_plan()

    def moment(self) -> Moment:
        """When a commit now happens: before or after the cookie can no longer change."""
        return "late" if self._started else "early"

    def snapshot(self, values: dict[str, Any]) -> Snapshot:
        """The state as the commit rules read it. Encodes what may have changed, so a value
        that cannot be stored raises :class:`SessionDataError` here, naming its key."""
        changed: dict[str, bytes] = {}
        removed: tuple[str, ...] = ()
        if self._accessed:
            baseline, decoded = self._baseline, self._decoded
            handed = None if self._handed_all else (self._handed or ())  # None: all were
            for key, value in _items(values):
                if value is decoded.get(key, _ABSENT) and (
                    type(value) in IMMUTABLE or (handed is not None and key not in handed)
                ):
                    continue  # the very object stored, and the app cannot have changed it
                encoded = encode_value(key, value)
                if encoded != baseline.get(key):
                    changed[key] = encoded
            present, gone = _keys(values), []
            for key in baseline:  # a loop: a set difference costs 3.4k instructions more
                if key not in present:
                    gone.append(key)
            removed = tuple(gone)
        life = self._life()
        return Snapshot(  # positional, in the order of Snapshot's fields: see its note
            self._config.clock(),  # now
            self._engine is not None and self._engine.client is not None,  # client_side
            self._had_cookie,
            self._accessed,
            self._unavailable,
            self._abandoned,
            self._record,
            self._ended,
            self._rotated_from,
            self._baseline,
            changed,
            removed,
            not dict.__len__(values),  # empty
            life.created_at,
            life.deadline,
            life.touched_at,
            life.browser,
            self._config.idle_timeout,
            self._expiry_changed,
            self._touch_due,
            self._resign,
            self._cookie_due,
            self._config.user_key,
        )

    def modified(self, values: dict[str, Any]) -> bool:
        if self._ended or self._rotated_from or self._expiry_changed:
            return True
        snapshot = self.snapshot(values)
        return bool(snapshot.changed or snapshot.removed)

    def committed(
        self, values: dict[str, Any], plan: Plan, moment: Moment, key: str | None
    ) -> None:
        """``plan`` was carried out at ``moment``; ``key`` names the record now behind the
        session (None: there is none)."""
        self._record = key
        self._ended = self._rotated_from = None
        self._baseline = plan.data
        self._decoded = dict(_items(values))
        self._life().touched_at = plan.touched_at
        self._expiry_changed = self._touch_due = self._changed = False
        if plan.cookie != "keep":
            self._resign = False
        # A save() before the response start decides a cookie that the start then sends.
        self._cookie_due = plan.cookie if moment == "early" else "keep"
        if moment == "start":
            self._started = True

    def vanished(self, values: dict[str, Any], moment: Moment) -> None:
        """A conditional write found no record: another request ended the session. It is
        never recreated; this one goes on as a new, empty session."""
        logger.warning(
            "refused to recreate a session deleted by another request (%s)",
            short_hash(self._record or self._rotated_from or ""),
        )
        self.reset(values)
        self._cookie_due = "keep"
        if moment == "start":
            self._started = True

    def live_key(self) -> str | None:
        """The store key of the record this session stands on now (before a rotation's
        commit, the old one), if any."""
        return self._record or self._rotated_from

    def cookie_id(self) -> str:
        """The id the cookie carries, drawn now if the session has none yet."""
        if self._session_id is None:
            self._session_id = self._new_id()
        return self._session_id

    def abandon(self) -> None:
        """A 5xx answer, or an app error: nothing is saved, now or later."""
        self._abandoned = self._started = True

    def response_started(self) -> None:
        self._started = True

    def saw_disconnect(self) -> None:
        self._disconnected = True

    def client_went_away(self) -> bool:
        return self._disconnected
