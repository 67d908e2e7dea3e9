"""The demo that `make demo` serves, run under a real uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.servers import uvicorn

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    with uvicorn(ROOT / "examples", "app:app") as url:
        yield url


def test_the_demo_counts_logs_in_and_out(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as browser:
        first = browser.get("/")
        assert first.status_code == 200
        assert "visited this page <strong>1</strong>" in first.text
        assert "Log in" in first.text
        cookie = first.headers["set-cookie"]
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        assert "visited this page <strong>2</strong>" in browser.get("/").text

        before = browser.cookies["session"]
        login = browser.post("/login", data={"name": "Ada <script>"})
        assert login.status_code == 303
        assert "Max-Age" not in login.headers["set-cookie"]  # not remembered
        assert browser.cookies["session"] != before  # a new id at login
        page = browser.get("/")
        assert "Logged in as <strong>Ada &lt;script&gt;</strong>" in page.text
        assert "visited this page <strong>3</strong>" in page.text

        logout = browser.post("/logout")
        assert "Max-Age=0" in logout.headers["set-cookie"]
        assert "session" not in browser.cookies
        assert "visited this page <strong>1</strong>" in browser.get("/").text


def shown_id(page: str) -> str:
    return page.split('<code id="session-id">')[1].split("</code>")[0]


def test_the_demo_says_what_it_shows(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as browser:
        page = browser.get("/").text
        assert '<strong id="store">MemoryStore' in page
        for feature in ("Log in and out", "Remember me", "A background job", "A websocket"):
            assert feature in page
        before = shown_id(browser.get("/").text)
        assert len(before) == 8  # a hash of the id, never the id itself
        assert before not in browser.cookies["session"]
        browser.post("/login", data={"name": "Ada"})
        after = shown_id(browser.get("/").text)
        assert after != before  # the id changed at login


def test_remember_me_makes_a_persistent_cookie(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as browser:
        login = browser.post("/login", data={"name": "Bob", "remember": "1"})
        assert f"Max-Age={30 * 24 * 60 * 60}" in login.headers["set-cookie"]


def test_unknown_pages_are_404(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as browser:
        assert browser.get("/nope").status_code == 404


def test_the_demo_runs_on_sqlite_when_given_a_database(tmp_path: Path) -> None:
    env = {"SESH_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'demo.db'}"}
    with (
        uvicorn(ROOT / "examples", "app:app", env, workers=2) as url,
        httpx.Client(base_url=url) as browser,
    ):
        page = browser.get("/").text
        assert '<strong id="store">SQLStore on sqlite' in page
        assert "visited this page <strong>1</strong>" in page
        browser.post("/login", data={"name": "Ada"})
        page = browser.get("/").text
        assert "Logged in as <strong>Ada</strong>" in page
        assert "visited this page <strong>2</strong>" in page
