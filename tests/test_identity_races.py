"""Logging a user out everywhere while requests write to, and rotate, that user's sessions:
on real Redis and real SQL databases, no session of the user is left alive.

Each round logs a user in on three browsers, then runs at once ``logout_everywhere`` and a
request on each browser: one writes a key, one rotates its id (``regenerate()``), one logs
in again (a login whose request still found its session: one that found it ended is a
new login, and may live on). Every task first yields a random number of times, so that the
order in which their store calls interleave differs from round to round.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

import pytest

from sesh.core import Session, SessionMiddleware
from sesh.core.identity import login, logout_everywhere, user_id
from sesh.core.store import Store
from sesh.core.testing import Client, FakeClock
from sesh.core.types import Receive, Scope, Send
from sesh.stores.redis import RedisStore
from sesh.stores.sql import SQLStore

from conftest import SECRET, SQL_SERVERS

pytestmark = pytest.mark.anyio
ROUNDS = 150
MAX_ROUNDS = 1500
COMMITTED_ROTATIONS = 5  # rounds go on until this many rotations won their race


async def race_app(scope: Scope, receive: Receive, send: Send) -> None:
    session: Session = scope["session"]
    path, _, user = scope["path"].partition("/as/")
    answer = b""
    if path == "/login":
        # Whether the request still had its session: if not, this login came after the
        # logout had ended it, and is a new login, which lives on as it should.
        answer = b"new" if session.is_new else b"stored"
        login(session, user)
    elif path == "/write":
        session["n"] = session.get("n", 0) + 1
    elif path == "/rotate":
        session.regenerate()
    elif path == "/me":
        answer = (user_id(session) or "").encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": answer})


async def after_yields(work: Any, most: int = 12) -> Any:
    for _ in range(random.randrange(most)):
        await asyncio.sleep(0)  # a yield to the event loop, not a wait
    return await work


async def race(store: Store, clock: FakeClock) -> Counter[str]:
    """Run the rounds; what happened, counted. Fails on any session left alive."""
    app = SessionMiddleware(race_app, store=store, secret_key=SECRET, clock=clock)
    seen: Counter[str] = Counter()
    round_ = 0
    while round_ < ROUNDS or seen["rotate committed"] < COMMITTED_ROTATIONS:
        assert round_ < MAX_ROUNDS, f"too few rotations won their race: {dict(seen)}"
        round_ += 1
        user = f"racer-{round_}"
        writer, rotator, again = Client(app), Client(app), Client(app)
        for client in (writer, rotator, again):
            await client.request(f"/login/as/{user}")
        results = await asyncio.gather(
            # Sometimes late, so that on a fast database rotations win some races too.
            after_yields(logout_everywhere(app.engine, user), random.choice([12, 200, 800])),
            after_yields(writer.request("/write")),
            after_yields(rotator.request("/rotate")),
            after_yields(again.request(f"/login/as/{user}")),
        )
        for name, response in zip(("rotate", "login"), results[2:], strict=True):
            # A new cookie: the rotation was committed, and must have ended all the same.
            seen[f"{name} committed" if response.set_cookies else f"{name} refused"] += 1
        seen["rounds"] += 1
        if results[3].text == "new":  # its own fate does not matter: it is not checked
            seen["login after the logout"] += 1
            again.jar.clear()
        for name, client in (("writer", writer), ("rotator", rotator), ("again", again)):
            response = await client.request("/me")
            assert response.text == "", f"round {round_}: {name}'s session of {user} survived"
    return seen


async def test_no_session_survives_on_redis(redis_store: RedisStore, clock: FakeClock) -> None:
    print(dict(await race(redis_store, clock)))  # the figures for the closing note: `pytest -s`


@pytest.mark.parametrize("sql_server", SQL_SERVERS, indirect=True)
async def test_no_session_survives_on_sql(sql_store: SQLStore, clock: FakeClock) -> None:
    print(dict(await race(sql_store, clock)))
