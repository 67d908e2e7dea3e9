"""What the Redis tests read of a store's keys, on any server the store talks to."""

from __future__ import annotations

from sesh.core.store import Store, UserIndexStore
from sesh.stores.redis import RedisStore


async def remaining_ttl(store: Store, key: str) -> float | None:
    """Seconds left of ``key``'s record (the contract suites' ``remaining_ttl``)."""
    assert isinstance(store, RedisStore)
    left = await store.client.pttl(store.prefix + key)
    return None if left < 0 else left / 1000


async def remove_own_keys(store: RedisStore) -> None:
    """Delete every key under the store's prefix, checking first that each has a TTL: for
    servers of a test's own, which the shared server's ``redis_prefix`` check never sees."""
    client = store.client
    async for key in client.scan_iter(match=store.prefix + "*"):
        assert await client.pttl(key) > 0, key
        await client.delete(key)


# Redis scores index entries by its own clock, which no test can move: the entries are made
# older instead, which is the same to the index's pruning.
_AGE = """
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('ZINCRBY', KEYS[1], -tonumber(ARGV[1]), member)
end
"""


async def let_index_age(store: UserIndexStore, seconds: float) -> None:
    """Make every user index under the store's prefix ``seconds`` older."""
    assert isinstance(store, RedisStore)
    async for key in store.client.scan_iter(match=store.prefix + "user:*"):
        await store.client.eval(_AGE, 1, key, int(seconds * 1000))
