"""A quick in-process measure of what sesh adds to a request.

No server and no test client: a hand-built scope, ``receive`` and ``send`` awaited directly.
The systems are interleaved over several rounds (their order rotated) and every figure is a
median, reported as a ratio to the bare app measured in the same run. Absolute times on a
shared machine mean little; the ratios are what to compare.

    .venv/bin/python benchmarks/quick.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

from sesh.core import SessionMiddleware
from sesh.core.types import ASGIApp, Message, Receive, Scope, Send
from sesh.stores.memory import MemoryStore

SECRET = "benchmark-secret-benchmark-secret-0123456789"  # noqa: S105
START: Message = {"type": "http.response.start", "status": 200, "headers": []}
BODY: Message = {"type": "http.response.body", "body": b"ok"}


def scope_with(cookie: bytes | None) -> Scope:
    headers = [(b"host", b"localhost"), (b"user-agent", b"bench")]
    if cookie is not None:
        headers.append((b"cookie", b"theme=dark; session=" + cookie))
    return {"type": "http", "scheme": "http", "method": "GET", "path": "/", "headers": headers}


async def receive() -> Message:
    return {"type": "http.request", "body": b""}


def app_that(use: Callable[[Scope], Any]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        use(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app


def read_user(scope: Scope) -> Any:
    return scope["session"]["user"]


async def existing_cookie(store: MemoryStore) -> bytes:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    def login(scope: Scope) -> None:
        scope["session"].update(user="ada", theme="dark", visits=3)

    await SessionMiddleware(app_that(login), store=store, secret_key=SECRET)(
        scope_with(None), receive, send
    )
    [header] = [v for k, v in sent[0]["headers"] if k == b"set-cookie"]
    return bytes(header).split(b";")[0].split(b"=", 1)[1]


async def check(app: ASGIApp, scope: Scope, expect_cookie: bool) -> None:
    """Each scenario must be correct before it is timed."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(dict(scope), receive, send)
    assert sent[0]["status"] == 200, sent
    assert sent[1]["body"] == b"ok", sent
    got_cookie = any(k == b"set-cookie" for k, _ in sent[0].get("headers", []))
    assert got_cookie == expect_cookie, sent


async def per_request(app: ASGIApp, scope: Scope, requests: int) -> float:
    async def send(message: Message) -> None:
        pass

    copy = dict(scope).copy
    begin = time.perf_counter()
    for _ in range(requests):
        await app(copy(), receive, send)
    return (time.perf_counter() - begin) / requests


async def main(requests: int, rounds: int) -> None:
    store = MemoryStore()
    cookie = await existing_cookie(store)
    cells: dict[str, tuple[ASGIApp, Scope, bool]] = {
        "bare app, no cookie": (app_that(lambda s: None), scope_with(None), False),
        "s1 no cookie, untouched": (
            SessionMiddleware(app_that(lambda s: None), store=store, secret_key=SECRET),
            scope_with(None),
            False,
        ),
        "bare app, cookie header": (app_that(lambda s: None), scope_with(cookie), False),
        "s3 memory store, read": (
            SessionMiddleware(app_that(read_user), store=store, secret_key=SECRET),
            scope_with(cookie),
            False,
        ),
    }
    for app, scope, expect_cookie in cells.values():
        await check(app, scope, expect_cookie)
    timings: dict[str, list[float]] = {name: [] for name in cells}
    names = list(cells)
    for round_number in range(rounds):
        shift = round_number % len(names)
        for name in names[shift:] + names[:shift]:
            app, scope, _ = cells[name]
            timings[name].append(await per_request(app, scope, requests))
    median = {name: statistics.median(values) for name, values in timings.items()}
    baselines = {
        "s1 no cookie, untouched": "bare app, no cookie",
        "s3 memory store, read": "bare app, cookie header",
    }
    print(f"{requests} requests x {rounds} rounds, medians\n")
    print(f"{'cell':28} {'us/request':>10} {'added us':>9} {'x bare':>7}")
    for name in names:
        base = median[baselines.get(name, name)]
        added = (median[name] - base) * 1e6
        print(f"{name:28} {median[name] * 1e6:10.2f} {added:9.2f} {median[name] / base:7.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
