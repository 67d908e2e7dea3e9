"""The demo that `make demo` serves, run under a real uvicorn on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from support.broker import BROKER_URL, broker_reachable, delete_queue
from support.servers import celery_worker, uvicorn

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo_url() -> Iterator[str]:
    with uvicorn(ROOT / "examples", "app:app") as url:
        yield url


def token(page: httpx.Response) -> dict[str, str]:
    """The CSRF token of a page's forms, as the form field every POST must carry."""
    return {"csrf_token": page.text.split('name="csrf_token" value="')[1].split('"')[0]}


def test_the_demo_counts_logs_in_and_out(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as browser:
        first = browser.get("/")
        assert first.status_code == 200
        assert "visited this page <strong>1</strong>" in first.text
        assert "Log in" in first.text
        cookie = first.headers["set-cookie"]
        assert "httponly" in cookie
        assert "samesite=lax" in cookie
        second = browser.get("/")
        assert "visited this page <strong>2</strong>" in second.text

        before = browser.cookies["session"]
        assert browser.post("/login", data={"name": "Ada"}).status_code == 403  # no token
        login = browser.post("/login", data={"name": "Ada <script>", **token(second)})
        assert login.status_code == 303
        assert "Max-Age" not in login.headers["set-cookie"]  # not remembered
        assert browser.cookies["session"] != before  # a new id at login
        page = browser.get("/")
        assert "Logged in as <strong>Ada &lt;script&gt;</strong>" in page.text
        assert "visited this page <strong>3</strong>" in page.text
        assert browser.post("/logout", data=token(second)).status_code == 403  # from before
        logged_in = browser.cookies["session"]
        assert browser.post("/logout", data=token(page)).status_code == 303
        # The old session is gone; a new one holds only the message for the next page.
        assert browser.cookies["session"] != logged_in
        home = browser.get("/").text
        assert '<p class="flash message">You are logged out.</p>' in home
        assert "visited this page <strong>1</strong>" in home
        assert "Log in" in home


def shown_id(page: str) -> str:
    return page.split('<code id="session-id">')[1].split("</code>")[0]


def test_the_demo_says_what_it_shows(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as browser:
        page = browser.get("/").text
        assert '<strong id="store">MemoryStore' in page
        for feature in ("Log in and out", "Remember me", "A background job", "A websocket"):
            assert feature in page
        second = browser.get("/")
        before = shown_id(second.text)
        assert len(before) == 8  # a hash of the id, never the id itself
        assert before not in browser.cookies["session"]
        browser.post("/login", data={"name": "Ada", **token(second)})
        after = shown_id(browser.get("/").text)
        assert after != before  # the id changed at login


def test_remember_me_makes_a_persistent_cookie(demo_url: str) -> None:
    with httpx.Client(base_url=demo_url) as browser:
        page = browser.get("/")
        login = browser.post("/login", data={"name": "Bob", "remember": "1", **token(page)})
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
        first = browser.get("/")
        assert '<strong id="store">SQLStore on sqlite' in first.text
        assert "visited this page <strong>1</strong>" in first.text
        browser.post("/login", data={"name": "Ada", **token(first)})
        page = browser.get("/").text
        assert "Logged in as <strong>Ada</strong>" in page
        assert "visited this page <strong>2</strong>" in page
        assert page.count('class="device current"') == 1  # the SQL store's index


def test_the_demo_runs_its_job_on_celery_when_given_a_broker(
    redis_url: str, redis_prefix: str
) -> None:
    broker_reachable()
    queue = f"{redis_prefix}demo-queue"
    env = {
        "SESH_REDIS_URL": redis_url,
        "SESH_BROKER_URL": BROKER_URL,
        "DEMO_REDIS_PREFIX": redis_prefix,
        "DEMO_CELERY_QUEUE": queue,
        "DEMO_JOB_STEP_SECONDS": "0",
    }
    try:
        with (
            celery_worker(ROOT / "examples", "jobs", env),
            uvicorn(ROOT / "examples", "app:app", env) as url,
            httpx.Client(base_url=url) as browser,
        ):
            page = browser.get("/")
            assert '<strong id="store">RedisStore' in page.text
            browser.post("/job", data=token(page))
            deadline = time.monotonic() + 60
            while (state := browser.get("/job").json())["running"]:
                assert time.monotonic() < deadline, f"the worker did not finish: {state}"
            assert state["job"] == "done (100%) on Celery"
    finally:
        delete_queue(queue)
