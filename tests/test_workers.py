"""Several uvicorn workers on one machine share sessions through one SQLite file in WAL
mode (SQLStore): a visit counter counts every visit, whichever worker serves it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx

from support.servers import uvicorn

SUPPORT = Path(__file__).resolve().parent / "support"


def test_two_workers_share_sessions_through_sqlite(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    env = {"SESH_DATABASE_URL": f"sqlite+aiosqlite:///{database}"}
    with uvicorn(SUPPORT, "workers_app:app", env, workers=2) as url:
        cookies: dict[str, str] = {}
        pids: set[int] = set()
        counted = []
        # A new connection for every request, so that either worker may accept it; go on
        # until both have served (the kernel decides who accepts).
        for _ in range(400):
            response = httpx.get(url, cookies=cookies)
            assert response.status_code == 200
            cookies.update(response.cookies)
            pids.add(response.json()["pid"])
            counted.append(response.json()["visits"])
            if len(pids) == 2 and len(counted) >= 40:
                break
    assert len(pids) == 2, "one worker served every request"
    assert counted == list(range(1, len(counted) + 1))
    with sqlite3.connect(database) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
