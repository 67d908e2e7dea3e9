"""What a logged-in request costs over an anonymous one, per store.

Both requests go through the middleware to an app that asks for the current user
(``Users.current``, as ``CurrentUser``/``OptionalUser`` do; the loader answers from a dict,
so only sesh's work is timed) and then reads or changes one key. The anonymous session
holds the same other keys. Each figure is the median over interleaved rounds of the time
per request and its ratio to the anonymous request in the same round; then the store
calls (one round trip each for Redis; SQL statements counted apart) of each kind of
request, and of the two a logged-in user adds now and then: the login itself, and the
touch that keeps "last seen" (at most every five minutes without an idle timeout).

Every store: memory, cookie, Redis, SQLStore on PostgreSQL, MariaDB and SQLite, and
DjangoStore on PostgreSQL, in the django_session table Django's own migration makes.

    .venv/bin/python benchmarks/logged_in.py [--requests N] [--rounds R]

Uses a key prefix of its own on the machine's Redis, a schema of its own on its
PostgreSQL and a database of its own on its MariaDB (all removed at the end), and a
temporary SQLite file. Django's settings are global, so ``make bench`` runs this in a
process of its own (after benchmarks/sql_stores.py has configured Django in its own).
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from tables import table  # noqa: E402

from sesh.core import Session, SessionConfig, SessionMiddleware  # noqa: E402
from sesh.core.identity import Users, login  # noqa: E402
from sesh.core.state import SEEN_INTERVAL  # noqa: E402
from sesh.core.store import ClientStore, ForeignIds, Store, UserIndexStore  # noqa: E402
from sesh.core.testing import Client, FakeClock, login_as, make_session  # noqa: E402
from sesh.core.types import Receive, Scope, Send  # noqa: E402
from sesh.stores.cookie import CookieStore  # noqa: E402
from sesh.stores.django import DjangoStore  # noqa: E402
from sesh.stores.memory import MemoryStore  # noqa: E402
from sesh.stores.redis import RedisStore  # noqa: E402
from sesh.stores.sql import SQLStore  # noqa: E402

from support import django_project  # noqa: E402
from support.databases import Databases, counting_statements  # noqa: E402
from support.redis_keys import remove_own_keys  # noqa: E402
from support.spy import ForeignIndexSpyStore, IndexSpyStore  # noqa: E402

SECRET = "a-benchmark-secret-that-is-long-enough-0123456789"  # noqa: S105
KINDS: dict[str, Callable[[Session], Any]] = {
    "read one key": lambda session: session.get("visits"),
    "change one key": lambda session: session.update(visits=session.get("visits", 0) + 1),
}
DATA = {"visits": 1, "cart": [1, 2, 3], "theme": "dark"}


async def load_user(user_id: str) -> dict[str, str]:
    return {"id": user_id, "password": "hash"}


users = Users(load_user, auth_hash=lambda user: user["password"])


def app(kind: Callable[[Session], Any]) -> Any:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        await users.current(scope)
        kind(scope["session"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    return answer


Options = dict[str, Any]
"""The SessionConfig options a store needs beside the clock."""
SIGNED: Options = {"secret_key": SECRET}


@asynccontextmanager
async def stores(
    databases: Databases, folder: Path
) -> AsyncIterator[dict[str, tuple[Store | ClientStore, Options]]]:
    """Every store, each with the options its app would use: DjangoStore shares Django's
    cookie, which carries Django's bare id (no secret_key) under Django's name."""
    redis = RedisStore("redis://127.0.0.1:6379", prefix=f"sesh-bench-{secrets.token_hex(4)}:")
    for server in ("postgresql", "mariadb"):
        databases.make(server)
    sql = {
        "PostgreSQL": SQLStore(databases.engine("postgresql"), table="bench_identity"),
        "MariaDB": SQLStore(databases.engine("mariadb"), table="bench_identity"),
        "SQLite": SQLStore(f"sqlite+aiosqlite:///{folder / 'bench.db'}", table="bench_identity"),
    }
    # Django's own migration makes django_session, on the schema of this run.
    django_project.configure(
        {name: databases.django_settings(name, folder) for name in ("sqlite", "postgresql")}, []
    )
    await django_project.use("postgresql")
    django = DjangoStore(databases.engine("postgresql"), secret_key=django_project.SECRET_KEY)
    databased: list[SQLStore | DjangoStore] = [*sql.values(), django]
    for store in databased:
        await store.create_table()
    try:
        yield {
            "MemoryStore": (MemoryStore(), SIGNED),
            "CookieStore": (CookieStore(SECRET), SIGNED),
            "RedisStore": (redis, SIGNED),
            **{f"SQLStore, {name}": (store, SIGNED) for name, store in sql.items()},
            "DjangoStore, PostgreSQL": (django, {"cookie_name": django.cookie_name}),
        }
    finally:
        await remove_own_keys(redis)  # every one with a TTL, or this fails
        await redis.aclose()
        for store in databased:
            await store.aclose()
            await store.database.engine.dispose()  # aclose leaves an engine it was given
        django_project.close()
        databases.drop()


async def browsers(
    store: Store | ClientStore, config: SessionConfig, count: int, user: bool
) -> list[Client]:
    """``count`` clients, each with a stored session holding DATA (and a login)."""
    clients = []
    for n in range(count):
        client = Client(None)
        if user:
            await login_as(client, store, f"user-{n}", config=config, auth_hash="hash", data=DATA)
        else:
            client.jar.update([await make_session(store, DATA, config=config)])
        clients.append(client)
    return clients


async def timed(
    store: Store | ClientStore, config: SessionConfig, clients: list[Client], kind: str
) -> float:
    middleware = SessionMiddleware(app(KINDS[kind]), store=store, config=config)
    begin = time.perf_counter()
    for client in clients:
        client.app = middleware
        await client.request()
    return (time.perf_counter() - begin) / len(clients)


async def calls(
    store: Store | ClientStore, config: SessionConfig, user: bool, kind: str
) -> tuple[int, int]:
    """Store calls, and SQL statements (0 for other stores), of one request of ``kind``."""
    [client] = await browsers(store, config, 1, user)
    return await counted(store, config, client, app(KINDS[kind]))


async def counted(
    store: Store | ClientStore, config: SessionConfig, client: Client, answer: Any
) -> tuple[int, int]:
    """The store calls and SQL statements of one request by ``client`` to ``answer``. A
    cookie store makes none: its session travels in the cookie."""
    if isinstance(store, ClientStore):
        client.app = SessionMiddleware(answer, store=store, config=config)
        await client.request()
        return 0, 0
    assert isinstance(store, UserIndexStore)
    spy = ForeignIndexSpyStore(store) if isinstance(store, ForeignIds) else IndexSpyStore(store)
    client.app = SessionMiddleware(answer, store=spy, config=config)
    if not isinstance(store, SQLStore | DjangoStore):
        await client.request()
        return sum(spy.calls.values()), 0
    with counting_statements(store.database) as counting:
        await client.request()
    return sum(spy.calls.values()), counting.sent


async def occasional(
    store: Store | ClientStore, options: Options, clock: FakeClock
) -> dict[str, tuple[int, int]]:
    """The calls of a login (from an anonymous session with data), and of the first
    request after ``SEEN_INTERVAL``."""
    config = SessionConfig(**options, clock=clock)
    client = Client(None)
    client.jar.update([await make_session(store, DATA, config=config)])

    async def log_in(scope: Scope, receive: Receive, send: Send) -> None:
        login(scope["session"], "someone", auth_hash="hash")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    found = {"login": await counted(store, config, client, log_in)}
    clock.advance(SEEN_INTERVAL)
    found["first read after five minutes"] = await counted(
        store, config, client, app(KINDS["read one key"])
    )
    return found


async def report(requests: int = 300, rounds: int = 5) -> str:
    databases = Databases()
    clock = FakeClock(time.time())
    rows = [
        [
            "store",
            "request",
            "anonymous (µs)",
            "logged in (µs)",
            "logged in / anonymous",
            "store calls: anonymous, logged in",
        ]
    ]
    extra_rows = [["store", "login: store calls (SQL statements)", "touch for last seen"]]
    with tempfile.TemporaryDirectory() as directory:
        async with stores(databases, Path(directory)) as by_name:
            for name, (store, options) in by_name.items():
                config = SessionConfig(**options, clock=clock)
                anonymous = await browsers(store, config, requests, False)
                logged_in = await browsers(store, config, requests, True)
                samples: dict[tuple[str, bool], list[float]] = {}
                for _ in range(rounds):
                    for kind in KINDS:
                        for user, clients in ((False, anonymous), (True, logged_in)):
                            seconds = await timed(store, config, clients, kind)
                            samples.setdefault((kind, user), []).append(seconds)
                for kind in KINDS:
                    ratios = [
                        b / a
                        for a, b in zip(samples[kind, False], samples[kind, True], strict=True)
                    ]
                    counts = [await calls(store, config, user, kind) for user in (False, True)]
                    rows.append(
                        [
                            name,
                            kind,
                            f"{statistics.median(samples[kind, False]) * 1e6:,.0f}",
                            f"{statistics.median(samples[kind, True]) * 1e6:,.0f}",
                            f"{statistics.median(ratios):.2f}x",
                            ", ".join(_calls(c) for c in counts),
                        ]
                    )
                extra = await occasional(store, options, FakeClock(time.time()))
                extra_rows.append(
                    [name, _calls(extra["login"]), _calls(extra["first read after five minutes"])]
                )
                print(f"  {name}: done", file=sys.stderr, flush=True)
    return "\n\n".join(
        [
            "## A logged-in request beside an anonymous one",
            f"Median time per request over {rounds} interleaved rounds of {requests}, each "
            "through the middleware to an app that asks for the current user, and the ratio "
            "of logged-in to anonymous in the same round. Store calls are one round trip each "
            "on Redis; on SQL the statements follow in brackets.",
            table(rows),
            "What a logged-in user adds now and then: the login (rotation and the per-user "
            "index), and the first request after five minutes (a touch, for last seen; "
            "with an idle timeout that touch happens anyway).",
            table(extra_rows),
        ]
    )


def _calls(counted: tuple[int, int]) -> str:
    calls, statements = counted
    return f"{calls}" if not statements else f"{calls} ({statements})"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    print(asyncio.run(report(options.requests, options.rounds)))
