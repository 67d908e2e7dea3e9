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

import hashlib
import logging
import math
import re
from collections.abc import Awaitable, Collection, Mapping
from typing import Any, NamedTuple, TypeVar, cast

from redis import exceptions as redis_errors
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.sentinel import SentinelConnectionPool

from sesh.core.errors import ConfigurationError, StoreUnavailable
from sesh.core.store import Record

from ._deadline import deadline

logger = logging.getLogger("sesh.redis")

META = b"\xff"  # the metadata field: never valid UTF-8, so never a session key
MAX_CONNECTIONS = 100
"""The pool size of a store built from a URL, per process (redis-py's own default)."""
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
# A user's index is a sorted set of session keys under a key of its own, each scored by
# its expiry in ms by the server's clock. KEYS[1] the index; ARGV[1] = TTL in ms, ARGV[2] =
# the limit, ARGV[3] = the session key. The key itself expires with its last entry.
_INDEX_ADD = _script("""
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREM', KEYS[1], ARGV[3])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2]) + 1
local dropped = {}
if over > 0 then
  dropped = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[3])
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], math.ceil(tonumber(last[2])))
return dropped
""")
_INDEX_MEMBERS = _script("""
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf')
""")

# What an outage looks like from redis-py: the server cannot be reached or cannot serve.
_OUTAGES = (
    redis_errors.ConnectionError,  # includes BusyLoadingError and MaxConnectionsError
    redis_errors.TimeoutError,
    redis_errors.ClusterDownError,  # includes MasterDownError
    redis_errors.ReadOnlyError,  # a replica answering during a failover
    redis_errors.TryAgainError,
    redis_errors.OutOfMemoryError,
    OSError,
)
# Replies by which a server that is up refuses to serve now. redis-py gives some of them a
# class of their own (above) but not all; a refusal from inside a script arrives as a plain
# ResponseError, its code first (Redis 7) or after a "-" (Redis 6), and one in a pipeline
# after "caused error: " (quoted in a tuple's repr by redis-py 5.0).
_REFUSAL = re.compile(
    r"(?:^|-|error: (?:\(['\"])?)"
    r"(OOM|NOREPLICAS|BUSY|LOADING|MASTERDOWN|READONLY|TRYAGAIN|CLUSTERDOWN)\b"
)


def refusal(error: redis_errors.ResponseError) -> str | None:
    """The code of a reply by which the server refuses to serve now, if it is one."""
    found = _REFUSAL.search(str(error))
    return None if found is None else found.group(1)


class RedisStore:
    """Sessions in Redis. ``client`` is a URL (``redis://``, ``rediss://``, ``unix://``) or a
    ``redis.asyncio`` client the app already has: ``Redis``, a master from
    ``Sentinel.master_for(...)``, or a ``RedisCluster``. It must not decode responses.

    ``prefix`` names this app's keys; ``timeout`` is the deadline of every call, in seconds.
    A store built from a URL holds at most ``max_connections`` connections; a call that
    finds them all busy waits for one within its deadline (a client you build yourself
    keeps its own pool: give it a ``BlockingConnectionPool`` for the same behaviour).

    ``wait_replicas``: a logout (``invalidate()``, the old record of ``regenerate()``)
    is acknowledged only once that many replicas have it (Redis ``WAIT``, within the
    deadline); otherwise it is an outage, so a failover cannot bring the session back.
    Not on a Cluster, where ``WAIT`` cannot follow the key: set ``min-replicas-to-write``
    on its masters instead (see the README).
    """

    def __init__(
        self,
        client: str | Redis | RedisCluster,
        *,
        prefix: str = "sesh:",
        timeout: float = 0.5,
        max_connections: int = MAX_CONNECTIONS,
        wait_replicas: int = 0,
    ) -> None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds: {timeout!r}")
        if not isinstance(prefix, str):
            raise ConfigurationError(f"prefix must be a str: {prefix!r}")
        for name, count in (("max_connections", max_connections), ("wait_replicas", wait_replicas)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ConfigurationError(f"{name} must be a whole number >= 0: {count!r}")
        if max_connections < 1:
            raise ConfigurationError("max_connections must be at least 1")
        if isinstance(client, str):
            # Our deadline bounds every call, waiting for a free connection included, so
            # redis-py's own timeouts (a timer each, and a task per write) would only repeat it.
            pool = BlockingConnectionPool.from_url(
                client,
                max_connections=max_connections,
                timeout=None,
                socket_timeout=None,
                socket_connect_timeout=timeout,
            )
            client = Redis.from_pool(pool)
        elif not isinstance(client, Redis | RedisCluster):
            raise ConfigurationError(
                "client must be a redis:// URL or a redis.asyncio Redis or RedisCluster, "
                f"not {type(client).__name__}"
            )
        elif max_connections != MAX_CONNECTIONS:
            raise ConfigurationError(
                "max_connections sizes the pool of a store built from a URL; a client you "
                "built keeps its own pool: size that one"
            )
        if client.get_encoder().decode_responses:
            raise ConfigurationError(
                "the Redis client decodes responses, but sessions are binary: create it with "
                "decode_responses=False, or pass a URL"
            )
        if wait_replicas and isinstance(client, RedisCluster):
            raise ConfigurationError(
                "wait_replicas needs WAIT on the connection that wrote, which a Cluster client "
                "cannot promise: set min-replicas-to-write on the masters instead"
            )
        self.client = client
        self.prefix = prefix
        self.timeout = float(timeout)
        self.wait_replicas = wait_replicas
        self.endpoint = _endpoint(client)
        """Where the store's Redis is, for logs: host and port, never credentials."""

    async def _call(self, awaitable: Awaitable[T]) -> T:
        try:
            async with deadline(self.timeout):
                return await awaitable
        except _OUTAGES as error:
            raise StoreUnavailable(f"redis at {self.endpoint}: {type(error).__name__}") from None
        except redis_errors.ResponseError as error:
            code = refusal(error)
            if code is None:
                raise
            raise StoreUnavailable(f"redis at {self.endpoint}: refused with {code}") from None

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
        if not self.wait_replicas:
            return bool(await self._call(self.client.delete(self.prefix + key)))
        deleted, replicas = await self._call(self._delete_and_wait(self.prefix + key))
        if replicas < self.wait_replicas:
            raise StoreUnavailable(
                f"redis at {self.endpoint}: a delete reached {replicas} of the "
                f"{self.wait_replicas} replicas wait_replicas asks for"
            )
        return bool(deleted)

    async def _delete_and_wait(self, key: str) -> list[Any]:
        """DEL, then WAIT on the same connection (WAIT counts that connection's writes),
        with WAIT's own timeout inside the deadline so that Redis answers before it."""
        assert isinstance(self.client, Redis)  # __init__ refused a Cluster
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.delete(key)
            pipe.execute_command("WAIT", self.wait_replicas, max(1, int(self.timeout * 800)))
            return await pipe.execute()

    # -- the per-user index (UserIndexStore): a sorted set per user --------------------------

    def _user_key(self, user: str) -> str:
        return f"{self.prefix}user:{user}"

    async def index_add(self, user: str, key: str, ttl: float, limit: int) -> list[str]:
        args = [_milliseconds(ttl), limit, key]
        dropped = await self._call(self._run(_INDEX_ADD, self._user_key(user), args))
        return [member.decode() for member in dropped]

    async def index_members(self, user: str) -> list[str]:
        members = await self._call(self._run(_INDEX_MEMBERS, self._user_key(user), []))
        return [member.decode() for member in members]

    async def index_remove(self, user: str, keys: Collection[str]) -> None:
        if keys:
            await self._call(self.client.zrem(self._user_key(user), *keys))

    async def ping(self) -> None:
        """Check that Redis answers, within the deadline (at start-up, from the lifespan):
        :class:`~sesh.core.errors.StoreUnavailable` names the endpoint if it does not."""
        await self._call(self.client.ping())

    async def aclose(self) -> None:
        """Close the client and every connection of its pool, at the app's shutdown (a
        client from ``Sentinel.master_for`` keeps its pool open on a plain ``aclose()``)."""
        if isinstance(self.client, Redis):
            await self.client.aclose(close_connection_pool=True)
        else:
            await self.client.aclose()


def _milliseconds(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


def _endpoint(client: Redis | RedisCluster) -> str:
    """Host and port (or socket path, or Sentinel service) of ``client``, for logs."""
    if isinstance(client, RedisCluster):
        # Before its first command a cluster client knows only the nodes it was given.
        nodes = client.get_nodes() or list(client.nodes_manager.startup_nodes.values())
        first = f"{nodes[0].host}:{nodes[0].port}" if nodes else "?"
        return f"cluster {first}"
    pool = client.connection_pool
    if isinstance(pool, SentinelConnectionPool):
        return f"sentinel service {pool.service_name}"
    settings = pool.connection_kwargs
    if "path" in settings:
        return f"unix:{settings['path']}"
    return f"{settings.get('host', 'localhost')}:{settings.get('port', 6379)}"
