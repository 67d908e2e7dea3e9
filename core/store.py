"""The contract between the session engine and a server-side store.

Implement these five coroutines and every sesh integration can use your store. The engine
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
  ever kept without one.

The test suite in ``tests/stores/contract.py`` checks all of this; run it against a new store.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import NamedTuple, Protocol, runtime_checkable


class Record(NamedTuple):
    """One stored session."""

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
