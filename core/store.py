"""For store authors: the contract between the session engine and a store.

Implement the five coroutines of :class:`Store` and every sesh integration can use your
store; implement a capability protocol as well (:class:`PurgeableStore`,
:class:`ClosableStore`, :class:`UserIndexStore`) and the engine and helpers use it where
it helps. A store that keeps the whole session in its cookie implements
:class:`ClientStore` instead. The engine
does all session logic (ids, expiry, change tracking, cookies); a store only keeps records.

A record is the session's fields, each value already encoded to bytes by the engine, plus a
small opaque ``meta`` blob that the engine owns. Records are addressed by ``key``, a hash of
the session id (never the id itself): a store may add its own prefix.

Every operation must be atomic on its own, and in a networked store should be one round trip:

* ``create`` writes only if the key is absent (a new session never overwrites another);
* ``update`` writes only if the key is present (a concurrent logout is never undone), and
  changes only the fields it names, so two requests that change different keys both win;
* ``touch`` refreshes ``meta`` and the TTL without rewriting data;
* every write sets the record's time to live to ``ttl`` seconds (always > 0): no record is
  ever kept without one. A store without native expiry (SQL) keeps an absolute
  ``expires_at = now + ttl`` by its own clock, and ``load`` ignores rows past it.

An operation that cannot reach its backend in time raises :class:`StoreUnavailable`, and
nothing else: the engine applies the app's outage policy.

Two conditional writes are the whole concurrency story: ``update`` and ``touch`` report
whether the record was there (a relational store counts the rows its ``UPDATE ... WHERE``
matched), and changing only the named fields (a hash per session, a JSON merge, or a
version column with a bounded compare-and-set retry) lets two requests that change
different keys both win.

``sesh.core.testing.StoreContract`` checks all of this; run it against a new store.
"""

from __future__ import annotations

import struct
from collections.abc import Collection, Mapping
from math import isfinite
from typing import Protocol, runtime_checkable

import msgspec

from .errors import StoreUnavailable

__all__ = [
    "USER_INDEX_LIMIT",
    "ClientStore",
    "ClosableStore",
    "CookieNameBinding",
    "ForeignIds",
    "Meta",
    "PurgeableStore",
    "Record",
    "Store",
    "StoreUnavailable",
    "Unsealed",
    "UserIndexStore",
    "ValuesOnlyFormat",
    "encode_meta",
]

# Record, Meta and Unsealed are frozen msgspec structs, not NamedTuples: one is built for
# every request that carries a session, and a struct is built in C where a NamedTuple
# runs a Python-level __new__ (a third of the cost; the attributes read faster too).


class Record(msgspec.Struct, frozen=True):
    """One stored session: ``Record(data, meta)``.

    A record passed to or returned from a store changes hands: the receiver may keep it,
    and neither side changes it afterwards (the engine keeps a loaded record's ``data`` as
    the baseline it compares changes with, without copying it).
    """

    data: dict[str, bytes]
    """The session's keys and their encoded values."""
    meta: bytes
    """The engine's bookkeeping (creation time, deadlines); store it as given."""


@runtime_checkable
class Store(Protocol):
    """A server-side session store. See the module docstring for the full contract."""

    async def load(self, key: str) -> Record | None:
        """The record under ``key``, or ``None`` if there is none (or it has expired)."""
        ...

    async def create(self, key: str, record: Record, ttl: float) -> bool:
        """Store ``record`` under ``key`` if the key is absent. True if it was stored."""
        ...

    async def update(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        meta: bytes,
        ttl: float,
    ) -> bool:
        """If ``key`` exists: set the ``changed`` fields, drop the ``removed`` ones, replace
        ``meta`` and the TTL, leaving every other field as it is. True if the key existed."""
        ...

    async def touch(self, key: str, meta: bytes, ttl: float) -> bool:
        """If ``key`` exists: replace ``meta`` and the TTL only. True if the key existed."""
        ...

    async def delete(self, key: str) -> bool:
        """Remove ``key``. True if it existed."""
        ...


@runtime_checkable
class ForeignIds(Protocol):
    """A :class:`Store` whose sessions another framework shares (Django's
    ``django_session``), so its ids are that framework's: the store makes and recognises
    them, the cookie carries the bare id under :attr:`cookie_name`, and the id is the
    record's key as it is (the other framework finds rows by it: there is no hash to hide
    it behind).

    The engine then refuses ``secret_key`` (the other framework reads the bare id, not a
    signed one), a ``cookie_name`` other than the store's, and ``idle_timeout`` (the rows
    keep no time of the last visit).
    """

    framework: str
    """Who else uses these sessions, for errors: "Django"."""
    cookie_name: str
    """The name of that framework's session cookie."""

    def new_id(self) -> str:
        """A fresh id, as that framework makes them."""
        ...

    def is_id(self, value: str) -> bool:
        """Whether ``value`` has the shape of an id that framework makes."""
        ...


@runtime_checkable
class PurgeableStore(Protocol):
    """A store whose expired records linger until removed (a SQL table, say)."""

    async def purge_expired(self) -> int:
        """Remove expired records, in batches that never hold a long lock; how many went."""
        ...


@runtime_checkable
class ClosableStore(Protocol):
    """A store holding connections that the app should close at shutdown."""

    async def aclose(self) -> None:
        """Release the store's connections; the store is not used afterwards."""
        ...


USER_INDEX_LIMIT = 1000
"""The most sessions one user keeps: a login past it ends the user's session that expires
first (a session the index forgot could not be logged out everywhere)."""


@runtime_checkable
class UserIndexStore(Store, Protocol):
    """A store that can list the sessions of one user ("log out everywhere").

    The engine notes a session in its user's index right after writing it, so the index
    is an upper bound, never the truth: the identity helpers check every key it returns
    against the live sessions. Every entry expires with its session (``ttl``), and a user's
    entries are bounded (``limit``). Keep the index under a key of its own per user (on
    Redis Cluster, a script may touch one key only). ``user`` is an opaque string the
    engine derives from the user id (:func:`sesh.core.tokens.user_ref`).
    """

    async def index_add(self, user: str, key: str, ttl: float, limit: int) -> list[str]:
        """Note that the session under ``key`` belongs to ``user`` for ``ttl`` seconds
        (noted already: its time is replaced), and drop ``user``'s expired entries. Past
        ``limit`` entries, drop those that expire first, never ``key``, and return their
        keys: the engine ends those sessions."""
        ...

    async def index_members(self, user: str) -> list[str]:
        """The keys noted for ``user`` (some may have ended since)."""
        ...

    async def index_remove(self, user: str, keys: Collection[str]) -> None:
        """Forget ``keys`` for ``user``."""
        ...


class Meta(msgspec.Struct, frozen=True):
    """What the engine keeps in ``Record.meta``. Server stores never look inside; a client
    store that writes a foreign cookie format builds one with :func:`encode_meta`."""

    created_at: float
    """When the session was created (epoch seconds)."""
    deadline: float
    """When it ends whatever happens (epoch seconds)."""
    touched_at: float
    """When it was last written or touched, for the idle timeout (epoch seconds)."""
    browser: bool
    """Its cookie has no Max-Age: it lasts until the browser closes."""


# Fixed-size binary: one C call to read. Version 3 came with values that keep their type
# (sesh.core.codec); records of older versions read as corrupt, so they end as no session.
_META_VERSION = 3
_META = struct.Struct("<Bddd?")


def encode_meta(meta: Meta) -> bytes:
    """``meta`` as the bytes the engine stores."""
    return pack_meta(meta.created_at, meta.deadline, meta.touched_at, meta.browser)


def pack_meta(created_at: float, deadline: float, touched_at: float, browser: bool) -> bytes:
    """:func:`encode_meta` from the fields, for the engine's hot path."""
    return _META.pack(_META_VERSION, created_at, deadline, touched_at, browser)


def unpack_meta(data: bytes) -> tuple[float, float, float, bool]:
    """The fields of :class:`Meta` in ``data``, in its order: the inverse of
    :func:`pack_meta`. A plain tuple, because the engine unpacks it at once on every load.
    ``ValueError`` if ``data`` is not metadata the engine wrote."""
    try:
        version, created_at, deadline, touched_at, browser = _META.unpack(data)
    except struct.error as error:
        raise ValueError(f"not session metadata: {error}") from None
    if version != _META_VERSION:
        raise ValueError(f"unknown session metadata version {version!r}")
    if not isfinite(created_at + deadline + touched_at):  # NaN and inf both propagate
        raise ValueError("session metadata holds a time that is not a finite number")
    return created_at, deadline, touched_at, browser


class Unsealed(msgspec.Struct, frozen=True):
    """A cookie value a client store accepted."""

    session_id: str
    """The session's id; empty for a format that carries none (one is made when asked)."""
    record: Record
    resign: bool
    """True when an older key verified it: the next response rewrites the cookie."""


@runtime_checkable
class ClientStore(Protocol):
    """A store that keeps the whole session in the cookie itself (client-side).

    There is no I/O: the engine hands over the complete record at every write and takes it
    back from the cookie value. The store owns the format (encoding, signing, encryption);
    the engine owns everything else, including expiry (inside ``meta``) and the 4096-byte
    limit on the ``Set-Cookie`` header.
    """

    def seal(self, session_id: str, record: Record, *, compact: bool = False) -> str:
        """The cookie value that carries ``record``: cookie-safe ASCII, tamper-evident.

        ``compact=True`` asks for a shorter value made at a cost (compression, say), if the
        store has one: the engine asks for it only when the first value did not fit in the
        browser's limit.
        """
        ...

    def unseal(self, value: bytes) -> Unsealed | None:
        """What ``value`` carries, or ``None`` if it is not a value this store sealed.

        Must check authenticity before decoding anything, and never raise on bad input.
        """
        ...


@runtime_checkable
class ValuesOnlyFormat(Protocol):
    """A :class:`ClientStore` whose cookie format is another library's and carries only the
    session's values (Starlette's): no id, no creation time, no expiry of its own.

    The engine then refuses what such a cookie cannot keep, loudly: ``idle_timeout`` when
    it is built, and ``session.id``, ``regenerate()`` and ``set_expiry()`` when called,
    each with :class:`~sesh.core.errors.NotInThisFormat` naming the fix.
    """

    format_name: str
    """What the format is called in those errors: "Starlette's cookie format"."""


@runtime_checkable
class CookieNameBinding(Protocol):
    """A :class:`ClientStore` whose signatures can cover the cookie's name: the engine
    uses ``for_cookie(name)`` in its place, so that a value sealed under one cookie name
    is refused under another configured with the same secret."""

    def for_cookie(self, name: str) -> ClientStore:
        """This store, sealing and unsealing only values made under cookie ``name``."""
        ...
