"""SQLStore and DjangoStore beside Django's own ``db`` session backend, on the same database
(SQLite and PostgreSQL), doing the same three operations: load a session, create one, and
change one key of one. Each figure is the median over interleaved rounds of the time per
operation, and its ratio to Django's backend measured in the same round; then the
statements each operation sends, and what a request through the middleware sends.

    .venv/bin/python benchmarks/sql_stores.py [--operations N] [--rounds R]

``make bench`` runs it too and adds its tables to RESULTS.md. Django runs as it does in a
Django view: synchronously, on a thread of its own, timed there. Uses a schema of its own
on the machine's PostgreSQL (dropped at the end) and a temporary SQLite file.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from tables import table  # noqa: E402

from sesh.core import SessionMiddleware  # noqa: E402
from sesh.core.store import Record, Store  # noqa: E402
from sesh.core.testing import Client, responder  # noqa: E402
from sesh.stores.django import DjangoStore  # noqa: E402
from sesh.stores.sql import SQLStore  # noqa: E402

from support import django_project  # noqa: E402
from support.databases import Databases, counting_statements  # noqa: E402

SERVERS = ("sqlite", "postgresql")
OPERATIONS = ("load", "create", "update one key")  # the last: load, change one key, save


async def load_and_update(store: Store, key: str, n: int, meta: bytes) -> None:
    """What a request that changes one key does: load, then write the change."""
    await store.load(key)
    await store.update(key, {"visits": bytes([n % 100])}, (), meta, 600)


def sesh_operations(
    store: Store, keys: list[str], meta: bytes
) -> dict[str, Callable[[int], Awaitable[Any]]]:
    data = {"user": b"\xa3ada", "visits": b"\x03", "cart": b"\x92\x01\x02"}
    return {
        "load": lambda n: store.load(keys[n]),
        "create": lambda n: store.create(secrets.token_hex(16), Record({"a": b"\x01"}, meta), 600),
        "update one key": lambda n: load_and_update(store, keys[n], n, meta),
        "setup": lambda n: store.create(keys[n], Record(dict(data), meta), 600),
    }


def django_operations(keys: list[str]) -> dict[str, Callable[[int], Any]]:
    from django.contrib.sessions.backends.db import SessionStore

    def load(n: int) -> Any:
        return SessionStore(keys[n]).load()

    def create(n: int) -> None:
        session = SessionStore()
        session["a"] = 1
        session.create()

    def update(n: int) -> None:
        session = SessionStore(keys[n])
        session["visits"] = n % 100
        session.save()

    def setup(n: int) -> None:
        session = SessionStore()
        session.update({"user": "ada", "visits": 3, "cart": [1, 2]})
        session.create()
        keys[n] = session.session_key or ""

    return {"load": load, "create": create, "update one key": update, "setup": setup}


async def measure(
    server: str, databases: Databases, folder: Path, operations: int, rounds: int
) -> dict[str, Any]:
    await django_project.use(server)
    engine = databases.engine(server, folder)
    secret = django_project.SECRET_KEY
    from sesh.core.store import Meta, encode_meta

    meta = encode_meta(Meta(time.time(), time.time() + 600, time.time(), False))
    sql = SQLStore(engine, table="bench_sessions")
    await sql.create_table()
    stores: dict[str, Any] = {
        "SQLStore": sql,
        "DjangoStore": DjangoStore(engine, secret_key=secret),
    }
    samples: dict[tuple[str, str], list[float]] = {}
    statements: dict[tuple[str, str], float] = {}
    for round_ in range(rounds):
        # Django first, sesh's stores after, in every round: the same machine state for all.
        keys = [""] * operations
        ops = django_operations(keys)

        def run_django(ops: dict[str, Callable[[int], Any]] = ops) -> dict[str, float]:
            from django.db import connections
            from django.test.utils import CaptureQueriesContext

            for n in range(operations):
                ops["setup"](n)
            timing = {}
            for name in OPERATIONS:
                with CaptureQueriesContext(connections[server]) as queries:
                    begin = time.perf_counter()
                    for n in range(operations):
                        ops[name](n)
                    timing[name] = (time.perf_counter() - begin) / operations
                timing["statements " + name] = len(queries) / operations
            return timing

        timing = await django_project.call(run_django)
        for name in OPERATIONS:
            samples.setdefault(("Django db backend", name), []).append(timing[name])
            statements["Django db backend", name] = timing["statements " + name]
        for label, store in stores.items():
            key_length = 32 if label == "DjangoStore" else 48
            keys = [
                secrets.token_hex(key_length // 2) if label != "DjangoStore" else store.new_id()
                for _ in range(operations)
            ]
            sesh_ops = sesh_operations(store, keys, meta)
            for n in range(operations):
                await sesh_ops["setup"](n)
            with counting_statements(store.database) as counting:
                for name in OPERATIONS:
                    counting.sent = 0
                    begin = time.perf_counter()
                    for n in range(operations):
                        await sesh_ops[name](n)
                    samples.setdefault((label, name), []).append(
                        (time.perf_counter() - begin) / operations
                    )
                    statements[label, name] = counting.sent / operations
        print(f"  {server}: round {round_ + 1} of {rounds}", flush=True)
    per_request = await statements_per_request(sql)
    async with engine.begin() as conn:
        await conn.run_sync(sql.table.drop)
    await engine.dispose()
    return {"samples": samples, "statements": statements, "per_request": per_request}


async def statements_per_request(store: SQLStore) -> dict[str, int]:
    """What a request through the middleware sends: a new session written, a stored one
    read, a stored one with one key changed."""
    secret = "a-benchmark-secret-that-is-long-enough-0123456789"  # noqa: S105
    client = Client(
        SessionMiddleware(responder(lambda s: s.update(a=1)), store=store, secret_key=secret)
    )
    counts = {}
    with counting_statements(store.database) as counting:
        for name, action in (
            ("new session, one key written", lambda s: s.update(a=1, b=2)),
            ("stored session, one key read", lambda s: s["a"]),
            ("stored session, one key changed", lambda s: s.update(a=s["a"] + 1)),
        ):
            client.app = SessionMiddleware(responder(action), store=store, secret_key=secret)
            counting.sent = 0
            await client.request()
            counts[name] = counting.sent
    return counts


async def report(operations: int = 200, rounds: int = 5) -> str:
    databases = Databases()
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        django_project.configure(
            {name: databases.django_settings(name, folder) for name in SERVERS}, []
        )
        databases.make("postgresql")
        try:
            results = {
                server: await measure(server, databases, folder, operations, rounds)
                for server in SERVERS
            }
        finally:
            django_project.close()
            databases.drop()
    systems = ("Django db backend", "SQLStore", "DjangoStore")
    rows = [
        [
            "database",
            "system",
            *(f"{op} (µs, x Django)" for op in OPERATIONS),
            *(f"statements: {op}" for op in OPERATIONS),
        ]
    ]
    for server, result in results.items():
        samples, statements = result["samples"], result["statements"]
        for system in systems:
            cells = []
            for op in OPERATIONS:
                ours = samples[system, op]
                ratios = [
                    o / d for o, d in zip(ours, samples["Django db backend", op], strict=True)
                ]
                cells.append(
                    f"{statistics.median(ours) * 1e6:,.0f} ({statistics.median(ratios):.2f}x)"
                )
            counts = [f"{statements[system, op]:g}" for op in OPERATIONS]
            rows.append([server, system, *cells, *counts])
    request_rows = [["request through the middleware (SQLStore)", *SERVERS]]
    for name in results[SERVERS[0]]["per_request"]:
        request_rows.append([name, *(f"{results[s]['per_request'][name]:g}" for s in SERVERS)])
    return "\n\n".join(
        [
            "## SQL stores beside Django's db backend (same database, same operations)",
            f"Median time per operation over {rounds} interleaved rounds of {operations}, "
            "and its ratio to Django's `db` backend in the same round (Django called "
            "synchronously, as in a view). Statements are those each sends per operation "
            "(Django's as its connection logs them; its transaction control is not logged). "
            '"update one key" is what a request changing one key does on each side: '
            "load the session, then save the change. sesh's write names the version it "
            "loaded, so that two requests changing different keys both win.",
            table(rows),
            table(request_rows),
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    print(asyncio.run(report(options.operations, options.rounds)))
