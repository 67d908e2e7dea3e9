"""Round trip of single Redis commands from redis-py's asyncio client: what one session
store operation costs at the least, on this machine, against its own Redis.

    .venv/bin/python benchmarks/redis_commands.py [redis://127.0.0.1:6379]

Uses (and deletes) two keys under a prefix of its own; each figure is the median of
rounds of 1000 awaits. A session library can only add to these.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis

# RedisStore's own update script, called as the store calls it: what Redis spends on it
# is part of what is measured.
from sesh.stores.redis import _UPDATE, META


async def median_round_trip(call: Callable[[], Awaitable[Any]], rounds: int = 7) -> float:
    samples = []
    for _ in range(rounds):
        begin = time.perf_counter()
        for _ in range(1000):
            await call()
        samples.append((time.perf_counter() - begin) / 1000)
    return statistics.median(samples)


async def main(url: str) -> None:
    client = Redis.from_url(url)
    prefix = f"sesh-bench-{secrets.token_hex(4)}:"
    string, hashed = prefix + "string", prefix + "hash"
    try:
        await client.set(string, b"x" * 120, ex=600)
        fields = {"user": b"\xa3ada", "visits": b"\x03", META: b"m" * 26}
        await client.hset(hashed, mapping=fields)  # type: ignore[arg-type]
        await client.expire(hashed, 600)
        sha = await client.script_load(_UPDATE.text)
        # one field changed, none removed, the metadata rewritten, the TTL renewed
        changed = (600_000, 0, META, b"m" * 26, "visits", b"\x04")
        calls: dict[str, Callable[[], Awaitable[Any]]] = {
            "GET": lambda: client.get(string),
            "SET": lambda: client.set(string, b"y" * 120, ex=600),
            "HGETALL": lambda: client.hgetall(hashed),
            "EVALSHA (update)": lambda: client.evalsha(sha, 1, hashed, *changed),
        }
        for name, call in calls.items():
            print(f"{name:18} {await median_round_trip(call) * 1e6:7.1f} µs", flush=True)
    finally:
        await client.delete(string, hashed)
        await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "redis://127.0.0.1:6379"))
