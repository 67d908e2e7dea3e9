"""In-process timing: a hand-built scope, ``receive`` and ``send`` awaited directly.

No server, no test client. Every cell is checked for correctness (status, body, whether a
Set-Cookie was sent) before it is timed; the cells are interleaved round by round with
their order rotated. Many short rounds beat a few long ones on a shared machine: what a
system adds is taken within each round, against its bare app timed in that same round,
and the median over rounds then sheds the slow stretches.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass
from typing import Any

from scenarios import SCENARIOS, Scenario, System, setup_app

from sesh.core.types import Message, Scope

_BARE_COOKIE = b"x" * 120  # what a bare app receives in the cookie scenarios


def scope_for(cookie: bytes | None) -> Scope:
    headers = [(b"host", b"localhost"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
    if cookie is not None:
        headers.append((b"cookie", b"theme=dark; " + cookie))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": headers, "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }  # fmt: skip


async def call(app: Any, scope: Scope) -> list[Message]:
    sent: list[Message] = []
    incoming = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> Message:
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        sent.append(message)

    await app(dict(scope), receive, send)
    return sent


def set_cookies(sent: list[Message]) -> list[bytes]:
    start = next(m for m in sent if m["type"] == "http.response.start")
    return [bytes(v) for k, v in start.get("headers", []) if bytes(k).lower() == b"set-cookie"]


async def session_cookie(system: System, data: dict[str, Any]) -> bytes:
    """``name=value`` of a cookie for a session holding ``data``, made by the system."""
    [header] = set_cookies(await call(setup_app(system, data), scope_for(None)))
    return header.split(b";")[0]


@dataclass
class Cell:
    system: System
    scenario: Scenario
    app: Any
    scope: Scope

    @property
    def key(self) -> tuple[str, str]:
        return self.system.name, self.scenario.name

    async def check(self) -> None:
        """The cell must be correct before it is timed."""
        sent = await call(self.app, self.scope)
        start = next(m for m in sent if m["type"] == "http.response.start")
        body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
        bare = not self.system.baseline
        expected = "ok" if bare else self.scenario.act(dict(self.scenario.data or {}))
        assert start["status"] == 200, (self.key, start)
        assert body.decode() == expected, (self.key, body)
        sends = bool(set_cookies(sent))
        assert sends == (False if bare else self.system.sends_cookie(self.scenario)), self.key

    async def time(self, requests: int) -> float:
        """Seconds per request."""
        app, scope = self.app, self.scope
        incoming = {"type": "http.request", "body": b"", "more_body": False}
        done = {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            pass

        gc.collect()  # nobody pays for the garbage of the cell timed before
        begin = time.perf_counter()
        for _ in range(requests):

            async def receive(pending: list[Message] = [incoming]) -> Message:  # noqa: B006
                # A fresh list per request (the default is evaluated at each definition).
                return pending.pop() if pending else done

            await app(dict(scope), receive, send)
        return (time.perf_counter() - begin) / requests


async def cells(systems: list[System], scenarios: list[str]) -> list[Cell]:
    built = []
    for system in systems:
        for name in scenarios:
            scenario = SCENARIOS[name]
            if not system.baseline:
                cookie = None if scenario.data is None else b"session=" + _BARE_COOKIE
                app = system.build(None)
            else:
                cookie = (
                    None if scenario.data is None else await session_cookie(system, scenario.data)
                )
                app = system.build(scenario.act)
            built.append(Cell(system, scenario, app, scope_for(cookie)))
    return built


async def measure(
    systems: list[System], scenarios: list[str], requests: int, rounds: int
) -> dict[tuple[str, str], list[float]]:
    """Seconds per request of every (system, scenario), one sample per round, in round
    order: compare samples of the same round (see ``run.added``), never whole medians."""
    every = await cells(systems, scenarios)
    for cell in every:
        await cell.check()
    samples: dict[tuple[str, str], list[float]] = {cell.key: [] for cell in every}
    for round_number in range(rounds):
        shift = round_number * 7 % len(every)
        for cell in every[shift:] + every[:shift]:
            samples[cell.key].append(await cell.time(requests))
    return samples


async def commands_per_request(
    system: System, scenarios: list[str], calls: Any, requests: int = 200
) -> dict[str, dict[str, float]]:
    """Redis commands the client sent per request, by scenario, from INFO commandstats
    (``calls()`` reads it). What scripts run inside Redis is not a round trip."""
    sent_by_client = {"get", "set", "setex", "del", "hgetall", "evalsha", "eval", "expire"}
    found: dict[str, dict[str, float]] = {}
    for cell in await cells([system], scenarios):
        await cell.check()  # the first call of a script may load it: not part of the count
        before = calls()
        for _ in range(requests):
            await call(cell.app, cell.scope)
        after = calls()
        found[cell.scenario.name] = {
            name: (after[name] - before.get(name, 0)) / requests
            for name in after
            if name in sent_by_client and after[name] != before.get(name, 0)
        }
    return found
