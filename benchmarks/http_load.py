"""Over HTTP: each app under uvicorn (one worker, loopback), loaded by wrk, scenario s3."""

from __future__ import annotations

import re
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
from support.servers import uvicorn  # noqa: E402  (the launcher the tests use)


def requests_per_second(url: str, cookie: str, seconds: int) -> float:
    result = subprocess.run(
        ["wrk", "-t1", "-c16", f"-d{seconds}s", "-H", f"Cookie: theme=dark; {cookie}", url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    )  # fmt: skip
    found = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
    assert found is not None, result.stdout
    assert errors is None, result.stdout  # every request was answered correctly
    return float(found[1])


def measure(cookies: dict[str, str], rounds: int, seconds: int) -> dict[str, list[float]]:
    """Requests per second of each system (name -> its session cookie), one sample per
    round, in round order: compare samples of the same round."""
    samples: dict[str, list[float]] = {name: [] for name in cookies}
    with ExitStack() as servers:
        urls = {
            name: servers.enter_context(
                uvicorn(HERE, "http_apps:create", {"BENCH_SYSTEM": name}, factory=True)
            )
            for name in cookies
        }
        names = list(cookies)
        for round_number in range(rounds):
            shift = round_number % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(requests_per_second(urls[name], cookies[name], seconds))
    return samples
