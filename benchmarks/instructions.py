"""Instructions per request, counted by callgrind: repeatable where timings are not.

Runs the same workload with two request counts under ``valgrind --tool=callgrind`` and
divides the difference, so start-up and warm-up cancel out and other tenants of the
machine cannot move the figure. Needs valgrind (Debian's package). Two workloads: a raw
ASGI app around sesh alone, or one cell of the benchmark (a system of scenarios.py, in its
framework, exactly as inprocess.py times it).

    .venv/bin/python benchmarks/instructions.py [bare|floor|skipped|memory|cookie] [s1|s3|s4]
    .venv/bin/python benchmarks/instructions.py --cell "sesh memory" s3
    .venv/bin/python benchmarks/instructions.py --cell "sesh redis" s4 redis://127.0.0.1:6379

``floor`` is the least a session middleware can be: it wraps ``send`` and puts an empty
dict in ``scope["session"]``, nothing more. What it adds to ``bare`` is spent before any
session logic runs (the s1 target's budget has to cover it). ``skipped`` is the memory
store's middleware asked for a path in its ``skip_paths``: what a static file pays for
passing through sesh.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from typing import Any

from redis.asyncio import Redis
from scenarios import SECRET, SMALL

from sesh.core import SessionMiddleware
from sesh.core.types import Message, Scope
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

NO_REDIS = "redis://127.0.0.1:1"  # where the cells that use no Redis point their clients
ACTIONS: dict[str, Any] = {
    "s1": lambda session: None,
    "s3": lambda session: session["user"],
    "s4": lambda session: session.__setitem__("visits", (session["visits"] + 1) % 1000),
}


async def receive() -> Message:
    return {"type": "http.request", "body": b""}


async def drop(message: Message) -> None:
    pass


async def session_cookie(app: Any) -> bytes:
    """``name=value`` of the cookie that ``app`` sets in answer to a request without one."""
    sent: list[Message] = []

    async def keep(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "headers": []}, receive, keep)
    [value] = [v for k, v in sent[0]["headers"] if k == b"set-cookie"]
    cookie: bytes = value.split(b";")[0]
    return cookie


async def workload(system: str, scenario: str, requests: int) -> None:
    store = MemoryStore() if system == "memory" else CookieStore(SECRET)

    def app(action: Any) -> Any:
        async def endpoint(scope: Scope, receive: Any, send: Any) -> None:
            if system not in ("bare", "skipped"):
                action(scope["session"])
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        if system == "bare":
            return endpoint
        if system == "floor":
            return floor(endpoint)
        if system == "skipped":
            return SessionMiddleware(endpoint, store=store, skip_paths=["/static"])
        return SessionMiddleware(endpoint, store=store, secret_key=SECRET)

    def floor(inner: Any) -> Any:
        async def middleware(scope: Scope, receive: Any, send: Any) -> None:
            scope["session"] = {}

            def send_through(message: Message) -> Any:
                return send(message)

            await inner(scope, receive, send_through)

        return middleware

    headers = [(b"host", b"localhost")]
    if scenario != "s1":
        cookie = b"session=" + b"x" * 100
        if system not in ("bare", "floor", "skipped"):
            cookie = await session_cookie(app(lambda s: s.update(SMALL)))
        headers.append((b"cookie", b"theme=dark; " + cookie))
    measured = app(ACTIONS[scenario])
    scope: Scope = {"type": "http", "scheme": "http", "path": "/static/app.css", "headers": headers}
    for _ in range(requests):
        await measured(dict(scope), receive, drop)


async def cell_workload(system: str, scenario: str, requests: int, redis_url: str) -> None:
    import inprocess
    from scenarios import systems

    # Only a Redis cell connects: the clients of every other system stay unused. Its keys
    # are this process's own, and go when it is done.
    prefix = f"bench:counted:{os.getpid()}:"
    [chosen] = [s for s in systems(redis_url, prefix) if s.name == system]
    [cell] = await inprocess.cells([chosen], [scenario])
    await cell.check()
    await cell.time(requests)
    if chosen.redis:
        client = Redis.from_url(redis_url)
        async for key in client.scan_iter(match=prefix + "*"):
            await client.delete(key)
        await client.aclose()


def callgrind(*arguments: str) -> int:
    """Instructions that ``python ARGUMENTS`` executes in all, counted by callgrind."""
    result = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, *arguments],
        capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONHASHSEED": "0"},  # the same dict layouts every run
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", result.stderr)
    assert found is not None, result.stderr
    return int(found[1])


def count(mode: str, system: str, scenario: str, requests: int, redis_url: str) -> int:
    return callgrind(__file__, mode, system, scenario, str(requests), redis_url)


def per_request(
    system: str,
    scenario: str,
    cell: bool = False,
    requests: int = 600,
    redis_url: str = NO_REDIS,
) -> int:
    """Instructions per request, from the difference of two runs (a third and all). Only
    this process is counted: for a Redis cell, what the client spends, not the server."""
    mode = "--run-cell" if cell else "--run"
    low = count(mode, system, scenario, requests // 3, redis_url)
    return (count(mode, system, scenario, requests, redis_url) - low) // (requests - requests // 3)


if __name__ == "__main__":
    if sys.argv[1] == "--run":
        asyncio.run(workload(sys.argv[2], sys.argv[3], int(sys.argv[4])))
    elif sys.argv[1] == "--run-cell":
        asyncio.run(cell_workload(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]))
    elif sys.argv[1] == "--cell":
        system, scenario, *url = sys.argv[2:]
        counted = per_request(system, scenario, cell=True, redis_url=url[0] if url else NO_REDIS)
        print(f"{system} {scenario}: {counted} instructions")
    else:
        system, scenario = sys.argv[1], sys.argv[2]
        print(f"{system} {scenario}: {per_request(system, scenario)} instructions per request")
