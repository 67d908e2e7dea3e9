"""RedisStore: server-side sessions in Redis or Valkey (standalone, Sentinel or Cluster).

Each session is one hash under ``<prefix><hash of the id>``: one field per session key, plus
the engine's metadata under a field name that no session key can have (``\\xff`` is never
valid UTF-8). Two requests changing different keys therefore both win. Every operation is
one atomic round trip: a read is ``HGETALL``, a delete ``DEL``, and the writes are Lua
scripts called by hash (``EVALSHA``, loaded again if the server lost them) that create only
if absent, update only if present, and set the TTL in the same step. Each script touches
one key, so all of it works unchanged on a Redis Cluster.

Every call runs under a deadline (``timeout``), whatever the client's own retry settings
(a client built from a URL gets no read or write timeout of its own: the deadline is the
one bound); an unreachable server raises :class:`~sesh.core.errors.StoreUnavailable`, and
the engine applies the outage policy.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import sys
from collections.abc import AsyncIterator, Awaitable, Collection, Mapping
from contextlib import asynccontextmanager
from typing import Any, NamedTuple, TypeVar, cast

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from sesh.core.errors import ConfigurationError, StoreUnavailable
from sesh.core.store import Record

logger = logging.getLogger("sesh.redis")

META = b"\xff"  # the metadata field: never valid UTF-8, so never a session key
T = TypeVar("T")


class _Script(NamedTuple):
    text: str
    sha: str  # the name Redis files it under: EVALSHA calls it by this


def _script(text: str) -> _Script:
    return _Script(text, hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest())


# Both scripts take the key, then ARGV[1] = TTL in ms. HSET and HDEL go in chunks so that
# Lua's unpack() never meets its stack limit, however large the session.
_CREATE = _script("""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
""")
# ARGV[2] = how many fields to remove; they follow, then field/value pairs to set.
_UPDATE = _script("""
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local removed = tonumber(ARGV[2])
for i = 3, 2 + removed, 1000 do
  redis.call('HDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, 2 + removed)))
end
for i = 3 + removed, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
""")

# What an outage looks like from redis-py: the server cannot be reached or cannot serve.
_OUTAGES = (
    redis_errors.ConnectionError,  # includes BusyLoadingError
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,
    redis_errors.MasterDownError,
    redis_errors.ReadOnlyError,  # a replica answering during a failover
    redis_errors.TryAgainError,
    OSError,
)

if sys.version_info >= (3, 11):
    _deadline = asyncio.timeout
else:  # pragma: no cover - Python 3.10

    @asynccontextmanager
    async def _deadline(seconds: float) -> AsyncIterator[None]:
        task = asyncio.current_task()
        assert task is not None
        handle = asyncio.get_running_loop().call_later(seconds, task.cancel)
        try:
            yield
        except asyncio.CancelledError:
            raise TimeoutError from None
        finally:
            handle.cancel()


class RedisStore:
    """Sessions in Redis. ``client`` is a URL (``redis://``, ``rediss://``, ``unix://``) or a
    ``redis.asyncio`` client the app already has: ``Redis``, a master from
    ``Sentinel.master_for(...)``, or a ``RedisCluster``. It must not decode responses.

    ``prefix`` names this app's keys; ``timeout`` is the deadline of every call, in seconds.
    """

    def __init__(
        self,
        client: str | Redis | RedisCluster,
        *,
        prefix: str = "sesh:",
        timeout: float = 0.5,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds: {timeout!r}")
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a str: {prefix!r}")
        if isinstance(client, str):
            # Our deadline bounds every call, so redis-py's own read and write timeouts
            # (a timer each, and a task per write) would only repeat it.
            client = Redis.from_url(client, socket_timeout=None, socket_connect_timeout=timeout)
        elif not isinstance(client, Redis | RedisCluster):
            raise ConfigurationError(
                "client must be a redis:// URL or a redis.asyncio Redis or RedisCluster, "
                f"not {type(client).__name__}"
            )
        if client.get_encoder().decode_responses:
            raise ConfigurationError(
                "the Redis client decodes responses, but sessions are binary: create it with "
                "decode_responses=False, or pass a URL"
            )
        self.client = client
        self.prefix = prefix
        self.timeout = float(timeout)

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            async with _deadline(self.timeout):
                return await awaitable
        except _OUTAGES as error:
            raise StoreUnavailable(f"redis: {type(error).__name__}") from None

    async def _run(self, script: _Script, key: str, args: list[Any]) -> Any:
        """Run a script on ``key`` by its hash, loading it first if the server lost it (a
        restart). Not redis-py's registered ``Script``: it imports a module on every call."""
        try:
            return await self.client.evalsha(script.sha, 1, key, *args)
        except redis_errors.NoScriptError:
            await self.client.script_load(script.text)
            return await self.client.evalsha(script.sha, 1, key, *args)

    async def load(self, key: str) -> Record | None:
        try:
            # Responses are bytes: __init__ refused a decoding client.
            fields = cast(
                "dict[bytes, bytes]", await self._call(self.client.hgetall(self.prefix + key))
            )
        except redis_errors.ResponseError as error:  # WRONGTYPE: not one of ours
            logger.warning("a non-session value sits under a session key (%s)", error)
            return None
        meta = fields.pop(META, None)
        if meta is None:  # absent, or a hash that is not one of ours
            return None
        try:
            data = {field.decode(): value for field, value in fields.items()}
        except UnicodeDecodeError:
            logger.warning("a session hash holds a field that is not UTF-8")
            return None
        return Record(data, meta)

    async def create(self, key: str, record: Record, ttl: float) -> bool:
        args: list[Any] = [_milliseconds(ttl), META, record.meta]
        for field, value in record.data.items():
            args += (field, value)
        return bool(await self._call(self._run(_CREATE, self.prefix + key, args)))

    async def update(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        meta: bytes,
        ttl: float,
    ) -> bool:
        args: list[Any] = [_milliseconds(ttl), len(removed), *removed, META, meta]
        for field, value in changed.items():
            args += (field, value)
        return bool(await self._call(self._run(_UPDATE, self.prefix + key, args)))

    async def touch(self, key: str, meta: bytes, ttl: float) -> bool:
        return await self.update(key, {}, (), meta, ttl)

    async def delete(self, key: str) -> bool:
        return bool(await self._call(self.client.delete(self.prefix + key)))

    async def aclose(self) -> None:
        """Close the client's connections (only needed for a client built from a URL)."""
        await self.client.aclose()


def _milliseconds(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))
