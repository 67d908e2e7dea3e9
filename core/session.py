"""The session object the application sees in ``scope["session"]``.

It is a mutable mapping that remembers what happened to it: which keys were set or removed,
which mutable values were handed out (so ``session["cart"].append(x)`` is noticed), and the
requests to regenerate, invalidate or change the expiry. Stored values are decoded when
first read: ``session["user"]`` decodes one value of fifty, and a key nobody reads is
written back, if it must be, as the bytes it was loaded as. The engine turns that into store
writes and cookies; the session itself never does I/O except through the engine.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator, KeysView, MutableMapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

import msgspec

from .cookies import MAX_LIFETIME
from .errors import SessionDataError, SessionNotLoaded, SessionUnavailable
from .tokens import new_id, short_hash

if TYPE_CHECKING:
    from .engine import SessionEngine

logger = logging.getLogger("sesh")
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder().decode
# Values of these types cannot change in place, so reading them never needs a re-check.
# Not bytes: a value not decoded yet is the bytes object it was stored as (see _stored).
_IMMUTABLE = frozenset({str, int, float, bool, type(None)})

# Where a response is in its life: before the response start, after it, or abandoned.
OPEN, STARTED, ABANDONED = 0, 1, 2


def encode_value(key: str, value: Any) -> bytes:
    """Encode one session value, or say which key holds what cannot be stored."""
    try:
        return _encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as error:
        raise SessionDataError(
            f"session[{key!r}] holds a {type(value).__name__} that cannot be stored ({error}); "
            "store plain data: str, int, float, bool, None, bytes, list, dict, datetime, ..."
        ) from None


class Session(MutableMapping[str, Any]):
    """A user's session: a ``MutableMapping[str, Any]`` with a few extras.

    Values must be plain data that MessagePack can carry (str, int, float, bool, None, bytes,
    list, dict, datetime, ...); tuples and sets come back as lists.
    """

    # Set in __init__, because every request reads them: reading a default that lives on
    # the class, through an instance, costs several times writing it.
    accessed: bool
    unavailable: bool
    """True when the store could not be reached (``on_store_error="continue"``): the
    session is then empty and read-only."""
    phase: int
    set_cookie: bytes | None  # a Set-Cookie value waiting for the response
    _loaded: bool  # False: no state yet, or a record is waiting to be loaded (_pending)
    _pending: str | None  # a verified id whose record is not loaded yet
    _drop: str | None  # store key of a record to delete at commit
    _resign: bool  # the client's cookie must be rewritten (rotation, new expiry)
    _touch_due: bool

    # Rarer state keeps its default on the class, and its containers are made on first
    # use (in _data()): a session nobody touches never writes them.
    _client_cookie = False  # the request carried a value under our cookie name
    _regenerated = False

    _id: str | None = None
    _key: str | None = None  # the store key of the record this session was loaded from

    # The state itself, set by _restore(): nothing reads it before the session is loaded.
    _raw: dict[str, bytes]  # the values as loaded, to detect in-place changes
    # The live values. One that is still the very object in _raw, under a key not set
    # since, has not been decoded yet.
    _values: dict[str, Any]
    _settled: bool  # every stored value decoded (or dropped as corrupt)
    # Ordered sets, as dicts: keys keep their order, and {} is made without a call.
    _changed: dict[str, None]
    _removed: dict[str, None]
    _read: dict[str, None]  # keys whose mutable values were handed out
    _expiry_changed: bool
    _created_at: float
    _deadline: float
    _touched_at: float
    _browser: bool  # the cookie ends with the browser

    def __init__(self, engine: SessionEngine, secure: bool = False) -> None:
        self._engine = engine
        self._secure = secure
        self.accessed = False
        self.unavailable = False
        self.phase = OPEN
        self.set_cookie = None
        self._loaded = False
        self._pending = None
        self._drop = None
        self._resign = False
        self._touch_due = False

    def _restore(
        self,
        session_id: str | None,
        key: str | None,
        raw: dict[str, bytes],
        created_at: float,
        deadline: float,
        touched_at: float,
        browser: bool,
    ) -> None:
        """Take on a state: this id and store key, these values (as encoded) and times."""
        self._loaded = True
        self._id = session_id
        self._key = key
        self._raw = raw
        self._values = raw.copy()  # values replace their encodings as they are read
        self._settled = not raw
        self._changed = {}
        self._removed = {}
        self._read = {}
        self._expiry_changed = False
        self._created_at = created_at
        self._deadline = deadline
        self._touched_at = touched_at
        self._browser = browser

    def _reset(self, now: float) -> None:
        """Become a new, empty session that has no record and no id yet."""
        engine = self._engine
        self._restore(None, None, {}, now, now + engine.max_age, now, engine.browser_session)
        self._touch_due = False

    # -- mapping -------------------------------------------------------------------------

    def _data(self) -> dict[str, Any]:
        if not self._loaded:
            if self._pending is not None:
                raise SessionNotLoaded(
                    "this session is not loaded yet (autoload=False): call "
                    "`await session.load()` before using it"
                )
            self._reset(self._engine.clock())  # read only now: most requests never need it
        self.accessed = True
        return self._values

    def _writable(self) -> dict[str, Any]:
        if self.unavailable:
            raise SessionUnavailable(
                "the session store is unreachable, so this session is read-only: check "
                "`session.unavailable` before writing"
            )
        return self._data()

    def __getitem__(self, key: str) -> Any:
        if self._loaded:  # _data(), inline: the most frequent call of all
            self.accessed = True
            value = self._values[key]
        else:
            value = self._data()[key]
        if type(value) not in _IMMUTABLE:
            if value is self._raw.get(key) and key not in self._changed:  # _undecoded, inline
                try:  # _stored(), inline: value is the stored bytes
                    value = self._values[key] = _decode(value)  # type: ignore[arg-type]
                except (msgspec.DecodeError, RecursionError):
                    self._corrupt(key)
                if type(value) in _IMMUTABLE:
                    return value
            self._read[key] = None
        return value

    def _undecoded(self, key: object, value: Any) -> bool:
        """Whether ``value`` under ``key`` is still the stored bytes object: loaded, not yet
        decoded, and not set since (a one-byte bytes the app sets may be that very object)."""
        return value is self._raw.get(key) and key not in self._changed  # type: ignore[call-overload]

    def _stored(self, key: str) -> Any:
        """Decode a stored value on its first read. A corrupt one (a damaged store; never
        what the engine wrote) is dropped: the key reads as absent, and goes at commit."""
        try:
            value = self._values[key] = _decode(self._raw[key])
        except (msgspec.DecodeError, RecursionError):
            self._corrupt(key)
        return value

    def _corrupt(self, key: str) -> NoReturn:
        """Drop a stored value that does not decode, and read it as absent."""
        logger.warning(
            "stored session value is corrupt; its key was dropped (%s)",
            short_hash(self._key or ""),
        )
        del self._values[key]
        self._removed[key] = None
        raise KeyError(key) from None

    def _settle(self) -> dict[str, Any]:
        """The values, every stored one decoded: iteration, ``len`` and ``in`` see the
        same keys as ``session[key]``, corrupt values included."""
        values = self._data()
        if not self._settled:
            for key, value in list(values.items()):
                if self._undecoded(key, value):
                    with contextlib.suppress(KeyError):  # dropped: corrupt
                        self._stored(key)
            self._settled = True
        return values

    def get(self, key: str, default: Any = None) -> Any:
        """``session[key]`` if present, else ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def __setitem__(self, key: str, value: Any) -> None:
        if not isinstance(key, str):
            raise TypeError(f"session keys must be str, not {type(key).__name__}")
        self._writable()[key] = value
        self._changed[key] = None
        self._removed.pop(key, None)

    def __delitem__(self, key: str) -> None:
        del self._writable()[key]
        self._changed.pop(key, None)
        self._read.pop(key, None)
        if key in self._raw:
            self._removed[key] = None

    def __contains__(self, key: object) -> bool:
        values = self._data()
        if key not in values:
            return False
        if self._undecoded(key, values[key]):  # decoded here: a corrupt value is absent everywhere
            try:
                self._stored(key)
            except KeyError:
                return False
        return True

    def __iter__(self) -> Iterator[str]:
        return iter(self._settle())

    def __len__(self) -> int:
        return len(self._settle())

    def clear(self) -> None:
        """Remove every key (the session itself stays; see ``invalidate()`` for logout)."""
        self._writable().clear()
        self._changed.clear()
        self._read.clear()
        self._removed.update(dict.fromkeys(self._raw))

    def __repr__(self) -> str:
        # Never the id or the data: reprs end up in logs and tracebacks.
        state = "new" if self.is_new else "stored"
        keys = len(self._values) if self._loaded else "?"
        return f"<Session {state}, {keys} keys>"

    # -- identity and lifetime -----------------------------------------------------------

    @property
    def id(self) -> str:
        """The session id. A new session gets one from the server when first asked."""
        if self._id is None:
            self._data()
            self._id = new_id()
        return self._id

    @property
    def is_new(self) -> bool:
        """True while the session has no stored record (none came with the request, or it
        was invalidated)."""
        return self._key is None and self._pending is None and not self._regenerated

    @property
    def modified(self) -> bool:
        """True when the next commit has something to write."""
        if not self._loaded:
            return False
        return bool(self._changes()[0] or self._removed or self._drop or self._expiry_changed)

    @property
    def created_at(self) -> float:
        """When the session was first created (epoch seconds); kept by ``regenerate()``."""
        self._data()
        return self._created_at

    @property
    def expires_at(self) -> float:
        """When the session expires unless used again (epoch seconds)."""
        self._data()
        return self._expiry()

    def _expiry(self) -> float:
        idle = self._engine.idle_timeout
        if idle is None:
            return self._deadline
        return min(self._deadline, self._touched_at + idle)

    def regenerate(self) -> None:
        """Give the session a new id and keep its data; the old record is deleted at commit.

        Call it whenever privileges change, above all at login (session fixation).
        """
        self._writable()
        if self._key is not None and self._drop is None:
            self._drop = self._key
            self._regenerated = True
        self._key = None
        self._id = None
        self._changed = dict.fromkeys(self._settle())  # the new record is written whole

    def invalidate(self) -> None:
        """Delete the session (logout): the record goes and the cookie is expired at commit.

        The object stays usable as a new, empty session; writing to it afterwards starts a
        fresh session with a new id.
        """
        self._writable()
        if self._key is not None and self._drop is None:
            self._drop = self._key
        self._regenerated = False
        self._reset(self._engine.clock())
        self.accessed = True

    def set_expiry(self, seconds: float | timedelta | None) -> None:
        """Override this session's lifetime ("remember me").

        ``seconds`` from now; ``0`` makes the cookie last until the browser closes (the
        server still enforces ``max_age``); ``None`` returns to the configured lifetime
        (``max_age`` from creation, and the ``browser_session`` option).
        """
        if isinstance(seconds, timedelta):
            seconds = seconds.total_seconds()
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or not 0 <= seconds <= MAX_LIFETIME
        ):
            raise ValueError(
                "set_expiry() takes seconds from 0 to 400 days (the longest a browser keeps a "
                f"cookie), a timedelta or None: {seconds!r}"
            )
        self._writable()
        if seconds is None:
            self._deadline = self._created_at + self._engine.max_age
            self._browser = self._engine.browser_session
        elif seconds == 0:
            self._deadline = self._created_at + self._engine.max_age
            self._browser = True
        else:
            self._deadline = self._engine.clock() + seconds
            self._browser = False
        self._expiry_changed = True

    # -- I/O, through the engine -----------------------------------------------------------

    async def load(self) -> None:
        """Load the stored data (only needed with ``autoload=False``; loading twice is free)."""
        if not self._loaded:
            await self._engine.load(self)

    async def save(self) -> None:
        """Persist the changes now instead of at the response start (also in websockets)."""
        await self._engine.persist(self)

    # -- for the engine ------------------------------------------------------------------

    def _dirty(self) -> bool:
        """Whether a commit could have anything to do (cheap: no encoding)."""
        if self._changed or self._removed or self._read:  # _read: mutable values handed
            return True  # out, which only encoding them can tell
        return self._drop is not None or self._expiry_changed or self._touch_due or self._resign

    def _changes(self) -> tuple[dict[str, bytes], KeysView[str]]:
        """The fields to write (encoded) and to remove, in-place changes included."""
        changed = {}
        for key in self._changed:
            changed[key] = encode_value(key, self._values[key])
        for key in self._read:
            if key not in self._changed and key in self._values:
                encoded = encode_value(key, self._values[key])
                if encoded != self._raw.get(key):
                    changed[key] = encoded
        return changed, self._removed.keys()

    def _written(self, changed: dict[str, bytes]) -> None:
        """Make the state just written the new baseline."""
        if self._removed:
            for key in self._removed:
                self._raw.pop(key, None)
            self._removed = {}
        self._raw.update(changed)
        self._changed.clear()
        self._expiry_changed = False
        self._touch_due = False
