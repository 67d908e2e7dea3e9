"""A store wrapper around a real store: counts the calls, and can be switched off."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping

from sesh.core.errors import StoreUnavailable
from sesh.core.store import ForeignIds, Record, Store, UserIndexStore


class SpyStore:
    """Passes every call to ``inner`` and records it: which operations, which keys. While
    ``down`` is set, every call fails as an outage does (``StoreUnavailable``); so do the
    operations named in ``failing``. ``order`` lists the operations that went through."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.calls: Counter[str] = Counter()
        self.keys: list[str] = []
        self.down = False
        self.failing: set[str] = set()
        self.order: list[str] = []

    @property
    def writes(self) -> int:
        return sum(self.calls[name] for name in ("create", "update", "touch", "delete"))

    def _saw(self, name: str, key: str) -> None:
        if self.down or name in self.failing:
            raise StoreUnavailable("switched off by the test")
        self.order.append(name)
        self.calls[name] += 1
        self.keys.append(key)

    async def load(self, key: str) -> Record | None:
        self._saw("load", key)
        return await self.inner.load(key)

    async def create(self, key: str, record: Record, ttl: float) -> bool:
        self._saw("create", key)
        return await self.inner.create(key, record, ttl)

    async def update(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        meta: bytes,
        ttl: float,
    ) -> bool:
        self._saw("update", key)
        return await self.inner.update(key, changed, removed, meta, ttl)

    async def touch(self, key: str, meta: bytes, ttl: float) -> bool:
        self._saw("touch", key)
        return await self.inner.touch(key, meta, ttl)

    async def delete(self, key: str) -> bool:
        self._saw("delete", key)
        return await self.inner.delete(key)


class IndexSpyStore(SpyStore):
    """A :class:`SpyStore` around a store that keeps a per-user index, which it spies on
    and switches off too."""

    def __init__(self, inner: UserIndexStore) -> None:
        super().__init__(inner)
        self.index = inner

    async def index_add(self, user: str, key: str, ttl: float, limit: int) -> list[str]:
        self._saw("index_add", key)
        return await self.index.index_add(user, key, ttl, limit)

    async def index_members(self, user: str) -> list[str]:
        self._saw("index_members", user)
        return await self.index.index_members(user)

    async def index_remove(self, user: str, keys: Collection[str]) -> None:
        self._saw("index_remove", user)
        await self.index.index_remove(user, keys)


class ForeignIndexSpyStore(IndexSpyStore):
    """An :class:`IndexSpyStore` around a store whose ids another framework makes
    (DjangoStore): it passes on that framework's ids and cookie, so the engine treats it
    as it treats the store."""

    def __init__(self, inner: UserIndexStore) -> None:
        super().__init__(inner)
        assert isinstance(inner, ForeignIds)
        self.foreign = inner
        self.framework = inner.framework
        self.cookie_name = inner.cookie_name

    def new_id(self) -> str:
        return self.foreign.new_id()

    def is_id(self, value: str) -> bool:
        return self.foreign.is_id(value)
