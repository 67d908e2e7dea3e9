"""What ``instrument()`` (sesh.adapters.opentelemetry) adds to a request, per store.

The same sessions, through three middlewares over the same store, timed in interleaved
rounds: the store itself; ``instrument(store)`` with no SDK set up (OpenTelemetry's API
alone, whose spans and instruments do nothing); and ``instrument(store)`` with the SDK
keeping every span (a BatchSpanProcessor, as production uses, into an in-memory
exporter) and every
measurement (an in-memory metric reader). Each figure is the median over the rounds of
the time per request, and of its ratio to the bare store's in the same round.

    .venv/bin/python benchmarks/observability.py [--requests N] [--rounds R]

Uses a key prefix of its own on the machine's Redis, removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from logged_in import DATA, KINDS, SECRET, timed  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (  # noqa: E402
    InMemorySpanExporter,
)
from tables import table  # noqa: E402

from sesh.adapters.opentelemetry import instrument  # noqa: E402
from sesh.core import SessionConfig  # noqa: E402
from sesh.core.store import Store  # noqa: E402
from sesh.core.testing import Client, make_session  # noqa: E402
from sesh.stores.memory import MemoryStore  # noqa: E402
from sesh.stores.redis import RedisStore  # noqa: E402

from support.redis_keys import remove_own_keys  # noqa: E402

VARIANTS = ("store", "instrumented, no SDK", "instrumented, SDK recording")


def variants(store: Store) -> dict[str, Store]:
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(BatchSpanProcessor(spans))
    metering = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return {
        "store": store,
        "instrumented, no SDK": instrument(store),
        "instrumented, SDK recording": instrument(
            store, tracer_provider=tracing, meter_provider=metering
        ),
    }


async def report(requests: int = 300, rounds: int = 5) -> str:
    config = SessionConfig(secret_key=SECRET)
    redis = RedisStore("redis://127.0.0.1:6379", prefix=f"sesh-bench-{secrets.token_hex(4)}:")
    rows = [["store", "request", *(f"{name} (µs)" for name in VARIANTS), "ratios to the store"]]
    try:
        stores: dict[str, Store] = {"MemoryStore": MemoryStore(), "RedisStore": redis}
        for name, store in stores.items():
            clients = []
            for _ in range(requests):
                client = Client(None)
                client.jar.update([await make_session(store, DATA, config=config)])
                clients.append(client)
            wrapped = variants(store)
            samples: dict[tuple[str, str], list[float]] = {}
            for _ in range(rounds):
                for kind in KINDS:
                    for variant, used in wrapped.items():
                        seconds = await timed(used, config, clients, kind)
                        samples.setdefault((kind, variant), []).append(seconds)
            for kind in KINDS:
                bare = samples[kind, "store"]
                medians = [statistics.median(samples[kind, v]) * 1e6 for v in VARIANTS]
                ratios = [
                    statistics.median(t / b for t, b in zip(samples[kind, v], bare, strict=True))
                    for v in VARIANTS[1:]
                ]
                rows.append(
                    [
                        name,
                        kind,
                        *(f"{m:,.0f}" for m in medians),
                        ", ".join(f"{r:.2f}x" for r in ratios),
                    ]
                )
    finally:
        await remove_own_keys(redis)
        await redis.aclose()
    return "\n\n".join(
        [
            "## What instrument() adds (OpenTelemetry)",
            f"Median time per request over {rounds} interleaved rounds of {requests}, the same "
            "sessions through the store itself, through `instrument(store)` with no SDK set "
            "up, and through `instrument(store)` with the SDK recording every span (batched "
            "into an in-memory exporter) and every measurement; the ratios are to the store "
            "itself in the same round. With the SDK, the time is the SDK's own (its span and "
            "attribute handling): one span and two measurements per store call.",
            table(rows),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    print(asyncio.run(report(options.requests, options.rounds)))


if __name__ == "__main__":
    main()
