"""MemoryStore: sessions kept in this process (the default store).

Good for development, tests and single-process deployments; sessions vanish on restart and
are not shared between workers (use RedisStore for that).
"""

from __future__ import annotations

import math
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Collection, Mapping

import msgspec

from sesh.core.errors import ConfigurationError
from sesh.core.store import Record
from sesh.core.types import Clock

# A record is one bytes object, MessagePack of (expiry time, meta, data). One object per
# session keeps the footprint small, and holding bytes, never the live objects the app
# mutates, means a request sees its changes stored only when it commits them. A load is one
# decoder call; the sweep reads the expiry alone, where MessagePack always puts a float:
# after the array's header byte, a float 64 marker, then the big-endian double.
_EXPIRY = struct.Struct(">d")
_EXPIRY_AT = 2
_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(tuple[float, bytes, dict[str, bytes]]).decode


def _prune(entries: dict[str, float], now: float) -> None:
    for key in [key for key, expires in entries.items() if expires <= now]:
        del entries[key]


def _expiry(blob: bytes) -> float:
    return _EXPIRY.unpack_from(blob, _EXPIRY_AT)[0]  # type: ignore[no-any-return]


_SWEEP_STEPS = 2  # records examined per write: expired ones are reclaimed as fast as new arrive
_EVICTION_SAMPLE = 5


class MemoryStore:
    """Sessions in a dict in this process.

    ``max_entries`` bounds the number of sessions. Past it, the oldest session that no
    request has come back with since it was created goes first (a visitor seen once: a
    flood of anonymous requests that write evicts its own sessions, never the users who
    came back); only when every session has been used again does the one closest to expiry
    go, of a small sample (as Redis's ``volatile-ttl`` policy). Expired records are
    reclaimed a few at a time on each write, never by a full scan. ``clock`` is a monotonic
    time source, injectable for tests.

    Each operation holds a lock for its few dict operations, so one store serves several
    threads and event loops at once (``open_session`` in a worker thread, say) without
    losing an update or undoing a logout.
    """

    def __init__(self, *, max_entries: int = 100_000, clock: Clock = time.monotonic) -> None:
        if isinstance(max_entries, bool) or not isinstance(max_entries, int) or max_entries < 1:
            raise ConfigurationError(f"max_entries must be a positive int, not {max_entries!r}")
        self.max_entries = max_entries
        self._clock = clock
        self._records: dict[str, bytes] = {}
        # Keys in creation order, rotated by the sweep. It may hold keys already deleted;
        # those are dropped when the sweep reaches them.
        self._order: deque[str] = deque()
        # Sessions created and not loaded since, oldest first: the first to be evicted.
        self._unreturned: OrderedDict[str, None] = OrderedDict()
        # The per-user index: user -> {session key: expiry}. Users in the order the sweep
        # visits them, so that a user who never comes back does not keep entries forever.
        self._users: dict[str, dict[str, float]] = {}
        self._user_order: deque[str] = deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """The number of records held, expired ones not yet reclaimed included."""
        return len(self._records)

    def _live(self, key: str, now: float) -> bytes | None:
        blob = self._records.get(key)
        if blob is None:
            return None
        if _expiry(blob) <= now:
            self._drop(key)
            return None
        return blob

    def _live_record(self, key: str, now: float) -> tuple[bytes, dict[str, bytes]] | None:
        """``(meta, data)`` of the live record under ``key``; an expired one is dropped.
        Decoding the whole record gives its expiry too, so no second read of it."""
        blob = self._records.get(key)
        if blob is None:
            return None
        expires, meta, data = _decode(blob)
        if expires <= now:
            self._drop(key)
            return None
        return meta, data

    def _drop(self, key: str) -> None:
        self._records.pop(key, None)
        self._unreturned.pop(key, None)

    def _put(self, key: str, meta: bytes, data: Mapping[str, bytes], expires: float) -> None:
        self._records[key] = _encode((float(expires), meta, data))

    async def load(self, key: str) -> Record | None:
        with self._lock:
            found = self._live_record(key, self._clock())
            if found is not None:
                self._unreturned.pop(key, None)  # a request came back with it
        return None if found is None else Record(found[1], found[0])

    async def create(self, key: str, record: Record, ttl: float) -> bool:
        with self._lock:
            now = self._clock()
            self._sweep(now)
            if self._live(key, now) is not None:
                return False
            while len(self._records) >= self.max_entries and self._order:
                self._evict(now)
            self._put(key, record.meta, record.data, now + ttl)
            self._order.append(key)
            self._unreturned[key] = None
            return True

    async def update(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        meta: bytes,
        ttl: float,
    ) -> bool:
        with self._lock:
            now = self._clock()
            found = self._live_record(key, now)
            if found is None:
                return False
            data = found[1]
            for field in removed:
                data.pop(field, None)
            data.update(changed)
            self._put(key, meta, data, now + ttl)
            return True

    async def touch(self, key: str, meta: bytes, ttl: float) -> bool:
        return await self.update(key, {}, (), meta, ttl)

    async def delete(self, key: str) -> bool:
        with self._lock:
            found = self._live(key, self._clock()) is not None
            self._drop(key)
            return found

    async def purge_expired(self) -> int:
        """Remove every expired record now (writes reclaim them a few at a time anyway)."""
        with self._lock:
            now = self._clock()
            expired = [key for key, blob in self._records.items() if _expiry(blob) <= now]
            for key in expired:
                self._drop(key)
            return len(expired)

    # -- the per-user index (UserIndexStore) ----------------------------------------------

    async def index_add(self, user: str, key: str, ttl: float, limit: int) -> list[str]:
        with self._lock:
            now = self._clock()
            self._sweep_users(now)
            entries = self._users.get(user)
            if entries is None:
                entries = self._users[user] = {}
                self._user_order.append(user)
            _prune(entries, now)
            entries.pop(key, None)
            dropped = sorted(entries, key=entries.__getitem__)[: max(0, len(entries) - limit + 1)]
            for old in dropped:
                del entries[old]
            entries[key] = now + ttl
            return dropped

    async def index_members(self, user: str) -> list[str]:
        with self._lock:
            entries = self._users.get(user, {})
            _prune(entries, self._clock())
            return list(entries)

    async def index_remove(self, user: str, keys: Collection[str]) -> None:
        with self._lock:
            entries = self._users.get(user, {})
            for key in keys:
                entries.pop(key, None)

    def _sweep_users(self, now: float) -> None:
        order = self._user_order
        for _ in range(min(_SWEEP_STEPS, len(order))):
            user = order.popleft()
            entries = self._users.get(user, {})
            _prune(entries, now)
            if entries:
                order.append(user)
            else:
                self._users.pop(user, None)

    def _evict(self, now: float) -> None:
        unreturned, records = self._unreturned, self._records
        while unreturned:
            key, _ = unreturned.popitem(last=False)
            if records.pop(key, None) is not None:
                return
        # Every session was used again: sampled, as Redis's volatile-ttl, of a few
        # records the one closest to expiry goes.
        order = self._order
        victim, soonest = None, math.inf
        for _ in range(min(_EVICTION_SAMPLE, len(order))):
            key = order.popleft()
            blob = records.get(key)
            if blob is None:
                continue
            expires = _expiry(blob)
            if expires <= now:
                self._drop(key)
                return
            order.append(key)
            if expires < soonest:
                victim, soonest = key, expires
        if victim is not None:
            self._drop(victim)

    def _sweep(self, now: float) -> None:
        order = self._order
        for _ in range(min(_SWEEP_STEPS, len(order))):
            key = order.popleft()
            if self._live(key, now) is not None:
                order.append(key)
