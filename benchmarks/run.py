"""``make bench``: sesh against every peer, side by side; prints the tables and rewrites
benchmarks/RESULTS.md. Every ratio compares figures measured in the same run.

    .venv/bin/python benchmarks/run.py [--requests N] [--rounds R] [--http-seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

import footprint  # noqa: E402
import http_load  # noqa: E402
import inprocess  # noqa: E402
from scenarios import SCENARIOS, SMALL, systems  # noqa: E402

from support.redis_servers import RedisServer  # noqa: E402

ORDER = list(SCENARIOS)
Timings = dict[tuple[str, str], float]


def added(timings: Timings, by: dict[str, Any], system: str, scenario: str) -> float:
    """Seconds the system adds to its bare app, for one scenario."""
    return timings[system, scenario] - timings[by[system].baseline, scenario]


def table(rows: list[list[str]]) -> str:
    """A Markdown table (the first row is the header)."""
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def inprocess_table(timings: Timings, by: dict[str, Any]) -> str:
    rows = [["system", *(f"{s} ({SCENARIOS[s].title})" for s in ORDER)]]
    for name, system in by.items():
        cells = []
        for scenario in ORDER:
            total = timings[name, scenario] * 1e6
            if system.baseline:
                extra = added(timings, by, name, scenario) * 1e6
                cells.append(f"+{extra:.2f} µs")
            else:
                cells.append(f"{total:.2f} µs")
        rows.append([name, *cells])
    return table(rows)


def targets(timings: Timings, by: dict[str, Any], trips: dict[str, Any], http: dict[str, float],
            memory: float) -> list[list[str]]:  # fmt: skip
    def share(ours: str, peer: str, scenario: str) -> float:
        return added(timings, by, ours, scenario) / added(timings, by, peer, scenario)

    def check(met: bool) -> str:
        return "met" if met else "**missed**"

    rows = [["what", "target", "measured", ""]]
    s1 = added(timings, by, "sesh memory", "s1") * 1e6
    rows.append(["s1, added over the bare app", "<= 1 µs", f"{s1:.2f} µs", check(s1 <= 1)])
    for scenario, limit in (("s3", 0.40), ("s4", 0.40), ("s5m", 0.50)):
        value = share("sesh cookie", "Starlette SessionMiddleware", scenario)
        rows.append([f"CookieStore {scenario}, added cost vs Starlette's", f"<= {limit:.0%}",
                     f"{value:.0%}", check(value <= limit)])  # fmt: skip
    value = share("sesh memory", "starsessions memory", "s3")
    rows.append(["MemoryStore s3, added cost vs starsessions memory", "<= 25%", f"{value:.0%}",
                 check(value <= 0.25)])  # fmt: skip
    ours = trips["sesh redis"]
    wanted = {"s1": 0, "s2": 1, "s3": 1, "s4": 2}
    got = {s: sum(ours[s].values()) for s in wanted}
    rows.append(["RedisStore round trips s1/s2/s3/s4", "0/1/1/2",
                 "/".join(f"{got[s]:g}" for s in wanted), check(got == wanted)])  # fmt: skip
    for scenario, limit in (("s3", 0.50), ("s4", 0.85)):
        value = share("sesh redis", "starsessions redis", scenario)
        rows.append([f"RedisStore {scenario}, added cost vs starsessions redis", f"<= {limit:.0%}",
                     f"{value:.0%}", check(value <= limit)])  # fmt: skip
    value = http["sesh cookie"] / http["bare Starlette"]
    rows.append(["HTTP s3 with CookieStore, requests/s vs bare Starlette", ">= 0.80",
                 f"{value:.2f}", check(value >= 0.8)])  # fmt: skip
    rows.append(["MemoryStore footprint, ten-key session", "<= 400 bytes", f"{memory:.0f} bytes",
                 check(memory <= 400)])  # fmt: skip
    return rows


def commandstats(server: RedisServer) -> Callable[[], dict[str, int]]:
    observer = server.client()

    def calls() -> dict[str, int]:
        stats = observer.info("commandstats")
        return {name.removeprefix("cmdstat_"): value["calls"] for name, value in stats.items()}

    return calls


async def main(arguments: argparse.Namespace) -> str:
    with tempfile.TemporaryDirectory() as directory:
        redis = RedisServer(Path(directory))
        redis.start()
        try:
            every = systems(redis.url, "bench:")
            by = {system.name: system for system in every}
            print(f"in-process: {len(every)} systems x {len(ORDER)} scenarios ...", flush=True)
            timings = await inprocess.measure(every, ORDER, arguments.requests, arguments.rounds)
            trips = {
                name: await inprocess.commands_per_request(by[name], ORDER, commandstats(redis))
                for name in ("sesh redis", "starsessions redis")
            }
        finally:
            redis.stop()
    print("memory footprint ...", flush=True)
    memory = await footprint.bytes_per_session()
    print("over HTTP ...", flush=True)
    cookies = {"bare Starlette": "session=" + "x" * 120}
    for name in ("sesh cookie", "Starlette SessionMiddleware", "starsessions cookie"):
        cookies[name] = (await inprocess.session_cookie(by[name], SMALL)).decode()
    http = http_load.measure(cookies, arguments.http_rounds, arguments.http_seconds)

    command = (
        "make bench"
        if arguments.requests == 2000
        else "benchmarks/run.py " + " ".join(sys.argv[1:])
    )
    trip_rows = [["system", *ORDER]] + [
        [name, *(" + ".join(f"{n:g} {c}" for c, n in trips[name][s].items()) or "0" for s in ORDER)]
        for name in trips
    ]
    http_rows = [["system", "requests/s (median)", "x bare Starlette"]] + [
        [name, f"{rps:,.0f}", f"{rps / http['bare Starlette']:.2f}"] for name, rps in http.items()
    ]
    return "\n\n".join(
        [
            "# Benchmark results",
            f"Measured {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC with `{command}` "
            f"({arguments.requests} requests per cell, {arguments.rounds} rounds interleaved, "
            "medians), on a shared 2-core machine: compare the ratios, not the microseconds.",
            "## Targets",
            table(targets(timings, by, trips, http, memory)),
            "## In-process cost per request",
            "The bare apps show their own time; every other cell shows what the session "
            "library adds to its bare app (Starlette, FastAPI or bareASGI) in the same run.",
            inprocess_table(timings, by),
            "## Redis commands per request (sent by the client; `INFO commandstats`)",
            table(trip_rows),
            "## Over HTTP (uvicorn, one worker; wrk on loopback; scenario s3)",
            table(http_rows),
            f"## Memory\n\nMemoryStore holds a ten-key session in {memory:.0f} bytes "
            "(100,000 sessions, measured with tracemalloc, keys included).",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="sesh against its peers")
    parser.add_argument("--requests", type=int, default=2000, help="per cell and round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--http-seconds", type=int, default=3)
    parser.add_argument("--http-rounds", type=int, default=3)
    report = asyncio.run(main(parser.parse_args()))
    (HERE / "RESULTS.md").write_text(report + "\n")
    print(report)
