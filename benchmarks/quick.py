"""A quick in-process measure of what sesh adds to a request, next to Starlette's middleware.

No server and no test client: a hand-built scope, ``receive`` and ``send`` awaited directly.
The cells are interleaved over several rounds (their order rotated), every figure is a
median, and every added cost is measured against the bare app in the same round. Absolute
times on a shared machine mean little; compare the ratios.

    .venv/bin/python benchmarks/quick.py [--requests N] [--rounds R]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.middleware.sessions import SessionMiddleware as StarletteSessions

from sesh.adapters.starlette import SessionMiddleware as DropIn
from sesh.core import SessionMiddleware
from sesh.core.types import ASGIApp, Message, Receive, Scope, Send
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

SECRET = "benchmark-secret-benchmark-secret-0123456789"  # noqa: S105
SMALL = {"user": "ada", "theme": "dark", "visits": 3}


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


def untouched(scope: Scope) -> None:
    pass


def read_one(scope: Scope) -> Any:
    return scope["session"]["user"]


def change_one(scope: Scope) -> None:
    session = scope["session"]
    session["visits"] = session["visits"] + 1


def write_small(scope: Scope) -> None:
    scope["session"].update(SMALL)


async def call(app: ASGIApp, scope: Scope) -> list[Message]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(dict(scope), receive, send)
    return sent


async def cookie_from(wrap: Callable[[ASGIApp], ASGIApp]) -> bytes:
    """The cookie a system sets for the small session."""
    start = (await call(wrap(app_that(write_small)), scope_with(None)))[0]
    [header] = [bytes(v) for k, v in start["headers"] if k.lower() == b"set-cookie"]
    return header.split(b";")[0].split(b"=", 1)[1]


@dataclass
class Cell:
    name: str
    app: ASGIApp
    scope: Scope
    expect_cookie: bool
    baseline: str = ""

    async def check(self) -> None:
        """Each cell must be correct before it is timed."""
        sent = await call(self.app, self.scope)
        assert sent[0]["status"] == 200, sent
        assert sent[1]["body"] == b"ok", sent
        got_cookie = any(k.lower() == b"set-cookie" for k, _ in sent[0].get("headers", []))
        assert got_cookie == self.expect_cookie, (self.name, sent)

    async def per_request(self, requests: int) -> float:
        async def send(message: Message) -> None:
            pass

        app, copy = self.app, dict(self.scope).copy
        begin = time.perf_counter()
        for _ in range(requests):
            await app(copy(), receive, send)
        return (time.perf_counter() - begin) / requests


async def build() -> list[Cell]:
    memory = MemoryStore()
    systems: dict[str, Callable[[ASGIApp], ASGIApp]] = {
        "starlette": lambda app: StarletteSessions(app, secret_key=SECRET),
        "sesh memory": lambda app: SessionMiddleware(app, store=memory, secret_key=SECRET),
        "sesh cookie": lambda app: SessionMiddleware(app, store=CookieStore(SECRET)),
        "sesh drop-in": lambda app: DropIn(app, secret_key=SECRET),
    }
    cells = [
        Cell("bare, no cookie", app_that(untouched), scope_with(None), False),
        Cell("bare, cookie", app_that(untouched), scope_with(b"x" * 120), False),
    ]
    for system, wrap in systems.items():
        cookie = await cookie_from(wrap)
        in_cookie = not system.startswith("sesh memory")  # a change rewrites the cookie
        none, some = scope_with(None), scope_with(cookie)
        cells += [
            Cell(f"{system} s1", wrap(app_that(untouched)), none, False, "bare, no cookie"),
            Cell(f"{system} s3 read", wrap(app_that(read_one)), some, False, "bare, cookie"),
            Cell(
                f"{system} s4 change", wrap(app_that(change_one)), some, in_cookie, "bare, cookie"
            ),
        ]
    return cells


async def main(requests: int, rounds: int) -> None:
    cells = await build()
    for cell in cells:
        await cell.check()
    timings: dict[str, list[float]] = {cell.name: [] for cell in cells}
    for round_number in range(rounds):
        shift = round_number % len(cells)
        for cell in cells[shift:] + cells[:shift]:
            timings[cell.name].append(await cell.per_request(requests))
    median = {name: statistics.median(values) for name, values in timings.items()}
    added = {c.name: median[c.name] - median[c.baseline] for c in cells if c.baseline}

    print(f"{requests} requests x {rounds} rounds; medians; added = minus the bare app\n")
    print(f"{'cell':24} {'us/request':>10} {'added us':>9} {'x bare':>7} {'added / starlette':>18}")
    for cell in cells:
        line = f"{cell.name:24} {median[cell.name] * 1e6:10.2f}"
        if cell.baseline:
            scenario = cell.name.rsplit(" ", 2 if cell.name.endswith(("read", "change")) else 1)
            peer = f"starlette {' '.join(scenario[1:])}"
            ratio = added[cell.name] / added[peer] if added.get(peer) else float("nan")
            line += (
                f" {added[cell.name] * 1e6:9.2f} {median[cell.name] / median[cell.baseline]:7.2f}"
            )
            line += f" {ratio:18.2f}"
        print(line)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.rounds))
