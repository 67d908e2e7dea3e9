"""Where the instructions of one request go: sesh's request path, step by step.

The profile behind a target that is missed. Each step is counted by callgrind, as
``instructions.py`` counts a whole request: as the difference between the path up to and
including it and the path before it, so every step runs in the state the ones before it
left (the first read of a value decodes it, as in a real request). What the middleware
adds around the steps is the whole request less all of them. A few parts of the steps are
also counted alone, and two parts of the commit (decoding the record's values; the
snapshot and ``plan_commit``) where a cookie names a session. The app is a raw ASGI one,
as in ``instructions.py memory s3``; sesh has the settings of the benchmark's cells
(``scenarios.py``), so the ids are not signed.

    .venv/bin/python benchmarks/steps.py [memory|cookie] [s1|s3|s4]
"""

from __future__ import annotations

import asyncio
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from instructions import ACTIONS, callgrind, drop, receive, session_cookie
from scenarios import SECRET, SMALL

# The request path of SessionMiddleware, as the engine's entry points: each entry adds
# one step to the path before it. Statements run in an async loop (see run()).
PATH = {
    "engine.start: the Session, the cookie read and checked": "s = engine.start(scope)",
    "engine.load: the record fetched and decoded": "await engine.load(s)",
    "the app's use of the session": "action(s)",
    "engine.response_starts: the commit plan, carried out": (
        "await engine.response_starts(s, 200, [])"
    ),
    "engine.exchange_ends: the late save, if any": "await engine.exchange_ends(s)",
}
# Parts of the steps above, each counted alone.
PARTS = {
    "Session()": "attached(SessionState(engine))",
    "reading the cookie header (read_values)": "read_values(scope['headers'], pattern)",
}
SERVER_PARTS = {
    "checking the id (TokenCodec.load)": "engine.config.tokens.load(value, 0.0)",
    "the store key (store_key)": "store_key(session_id)",
    "MemoryStore.load": "await store.load(key)",
}
CLIENT_PARTS = {"CookieStore.unseal": "store.unseal(value)"}
# Where a cookie names a session: decoding its record's values, counted alone; and the
# commit's rules, counted on top of the path through the app's use of the session (so on
# a session the app read, or changed in s4).
RECORD_PARTS = {"the record's values decoded (decode_values)": "decode_values(record.data)"}
COMMIT_PARTS = {"the snapshot and plan_commit": "plan_commit(state_of(s).snapshot(s), 'start')"}
WHOLE = "await middleware(dict(scope), receive, drop)"
BARE = "await bare(dict(scope), receive, drop)"


async def namespace(kind: str, scenario: str) -> dict[str, Any]:
    """What the statements use: the middleware, its engine, a scope with the cookie of an
    existing three-key session (s3, s4) or none (s1)."""
    from sesh.core import SessionMiddleware
    from sesh.core.codec import decode_values
    from sesh.core.commit import plan_commit
    from sesh.core.cookies import read_values
    from sesh.core.session import Session, state_of
    from sesh.core.state import SessionState
    from sesh.core.tokens import store_key
    from sesh.stores.cookie import CookieStore
    from sesh.stores.memory import MemoryStore

    store = MemoryStore() if kind == "memory" else CookieStore(SECRET)
    action = ACTIONS[scenario]

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:  # bare, and the action
        action(scope["session"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def login(scope: Any, receive: Any, send: Any) -> Any:
        scope["session"].update(SMALL)
        return bare(scope, receive, send)

    middleware = SessionMiddleware(endpoint, store=store)
    headers = [(b"host", b"localhost")]
    value = b""
    if scenario != "s1":
        cookie = await session_cookie(SessionMiddleware(login, store=store))
        value = cookie.partition(b"=")[2]
        headers.append((b"cookie", b"theme=dark; " + cookie))
    session_id = value.decode()
    record = None
    if scenario != "s1":
        key = store_key(session_id)
        if isinstance(store, MemoryStore):
            record = await store.load(key)
        else:
            unsealed = store.unseal(value)
            record = unsealed.record if unsealed is not None else None
    return {
        "action": action,
        "decode_values": decode_values,
        "plan_commit": plan_commit,
        "record": record,
        "state_of": state_of,
        "bare": bare,
        "drop": drop,
        "engine": middleware.engine,
        "key": store_key(session_id) if session_id else "",
        "middleware": middleware,
        "pattern": middleware.engine.config.cookie.pattern,
        "read_values": read_values,
        "receive": receive,
        "scope": {"type": "http", "scheme": "http", "headers": headers},
        "Session": Session,
        "SessionState": SessionState,
        "session_id": session_id,
        "store": store,
        "store_key": store_key,
        "value": value,
    }


def programs(kind: str, scenario: str) -> dict[str, str]:
    """Every statement to count, by what it measures: the path's prefixes, the parts, the
    whole request, the bare app and the empty loop (to subtract)."""
    found = {"": "pass", "bare": BARE, "whole": WHOLE}
    for index, step in enumerate(PATH):
        found[step] = "\n    ".join(list(PATH.values())[: index + 1])
    found |= PARTS
    if scenario != "s1":  # with no cookie, nothing is checked nor fetched
        found |= SERVER_PARTS if kind == "memory" else CLIENT_PARTS
        found |= RECORD_PARTS
        used = "\n    ".join(list(PATH.values())[:3])  # the path through the app's use
        found["used"] = used
        for part, statement in COMMIT_PARTS.items():
            found[part] = f"{used}\n    {statement}"
    return found


async def run(kind: str, scenario: str, statement: str, times: int) -> None:
    names = await namespace(kind, scenario)
    exec(f"async def loop():\n  for _ in range({times}):\n    {statement}\n", names)  # noqa: S102
    await names["loop"]()


def per_run(kind: str, scenario: str, statement: str, times: int = 900) -> int:
    """Instructions per execution of ``statement``: the difference of two counts."""
    low = callgrind(__file__, "--run", kind, scenario, statement, str(times // 3))
    high = callgrind(__file__, "--run", kind, scenario, statement, str(times))
    return (high - low) // (times - times // 3)


def profile(kind: str, scenario: str) -> tuple[list[tuple[str, int]], list[tuple[str, int]]]:
    """(what, instructions) rows: the whole request over the bare app, each step and the
    middleware's own share; and the parts, alone."""
    found = programs(kind, scenario)
    with ThreadPoolExecutor(max_workers=2) as pool:  # one valgrind per core
        counted = pool.map(lambda statement: per_run(kind, scenario, statement), found.values())
        counts = dict(zip(found, counted, strict=True))
    empty = counts.pop("")
    bare = counts.pop("bare") - empty
    whole = counts.pop("whole") - empty - bare
    rows = [("the whole request, over the bare app", whole)]
    before = 0
    for step in PATH:
        rows.append((step, counts[step] - empty - before))
        before = counts[step] - empty
    rows.append(("the middleware around them (the whole less the steps)", whole - before))
    used = counts.pop("used", empty)
    parts = [
        (part, counted - (used if part in COMMIT_PARTS else empty))
        for part, counted in counts.items()
        if part not in PATH
    ]
    return rows, parts


if __name__ == "__main__":
    if sys.argv[1] == "--run":
        asyncio.run(run(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])))
    else:
        kind, scenario = sys.argv[1:3] if len(sys.argv) == 3 else ("", "")
        if kind not in ("memory", "cookie") or scenario not in ("s1", "s3", "s4"):
            sys.exit("usage: benchmarks/steps.py [memory|cookie] [s1|s3|s4]")
        steps, parts = profile(kind, scenario)
        for title, rows in ((f"sesh {kind} {scenario}: step", steps), ("part", parts)):
            print(f"| {title} | instructions |\n|---|---|")
            for what, counted in rows:
                print(f"| {what} | {counted:,} |")
