"""The demo in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import need_service
from support.servers import uvicorn

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
# As this machine's probe runs it: no sandbox as root, and no background traffic that the
# closed network would refuse.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev extra installs it
    sync_playwright = None  # type: ignore[assignment]


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    with uvicorn(ROOT / "examples", "app:app", {"DEMO_JOB_STEP_SECONDS": "0.05"}) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    need_service(sync_playwright is not None and shutil.which(CHROMIUM) is not None, "chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context()
    yield context.new_page()
    context.close()


def session_cookie(page: Page) -> dict[str, object]:
    [cookie] = [c for c in page.context.cookies() if c["name"] == "session"]
    return dict(cookie)


def test_the_cookie_is_invisible_to_page_scripts(page: Page, demo: str) -> None:
    page.goto(demo)
    cookie = session_cookie(page)
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert "session=" not in page.evaluate("document.cookie")


def test_the_session_survives_navigation_and_reload(page: Page, demo: str) -> None:
    page.goto(demo)
    expect(page.locator("#visits")).to_contain_text("visited this page 1 times")
    page.reload()
    expect(page.locator("#visits")).to_contain_text("visited this page 2 times")
    page.goto(demo + "/job")  # elsewhere, then back
    page.goto(demo)
    expect(page.locator("#visits")).to_contain_text("visited this page 3 times")


def test_login_changes_the_cookie_and_logout_forgets_the_user(page: Page, demo: str) -> None:
    page.goto(demo)
    before = session_cookie(page)["value"]
    page.fill("input[name=name]", "Ada <b>")
    page.click("#login button")  # a form POST answered with a redirect
    expect(page.locator("#user")).to_have_text("Logged in as Ada <b>.")  # escaped, not HTML
    assert session_cookie(page)["value"] != before
    assert session_cookie(page)["expires"] == -1  # no "remember me": a browser session
    expect(page.locator("#visits")).to_contain_text("visited this page 2 times")
    page.click("#logout")
    expect(page.locator("#login")).to_be_visible()
    expect(page.locator("#visits")).to_contain_text("visited this page 1 times")


def test_remember_me_makes_the_cookie_persistent(page: Page, demo: str) -> None:
    page.goto(demo)
    page.fill("input[name=name]", "Grace")
    page.check("input[name=remember]")
    page.click("#login button")
    expect(page.locator("#user")).to_contain_text("Grace")
    assert float(session_cookie(page)["expires"]) > 0  # type: ignore[arg-type]


def test_two_browser_contexts_are_isolated(browser: Browser, demo: str) -> None:
    first, second = browser.new_context(), browser.new_context()
    try:
        alice, bob = first.new_page(), second.new_page()
        alice.goto(demo)
        alice.fill("input[name=name]", "Alice")
        alice.click("#login button")
        expect(alice.locator("#user")).to_contain_text("Alice")
        bob.goto(demo)
        expect(bob.locator("#login")).to_be_visible()
        expect(bob.locator("#visits")).to_contain_text("visited this page 1 times")
    finally:
        first.close()
        second.close()


def test_the_background_jobs_progress_appears_in_the_page(page: Page, demo: str) -> None:
    page.goto(demo)
    page.click("#start-job")
    expect(page.locator("#job")).to_have_text(
        "done (100%) on a FastAPI background task", timeout=15_000
    )


def test_the_websocket_reads_the_same_session(page: Page, demo: str) -> None:
    page.goto(demo)
    page.fill("input[name=name]", "Linus")
    page.click("#login button")
    expect(page.locator("#socket")).to_contain_text("hello Linus, this socket sees 2 visits")


def log_in(page: Page, demo: str, name: str) -> None:
    page.goto(demo)
    page.fill("input[name=name]", name)
    page.click("#login button")
    expect(page.locator("#user")).to_contain_text(name)


def test_your_devices_revoke_one_and_the_other_stays(browser: Browser, demo: str) -> None:
    phone_context = browser.new_context(user_agent="Phone Browser")
    laptop_context = browser.new_context(user_agent="Laptop Browser")
    try:
        phone, laptop = phone_context.new_page(), laptop_context.new_page()
        log_in(phone, demo, "Hedy")
        log_in(laptop, demo, "Hedy")
        rows = laptop.locator("#devices tr.device")
        expect(rows).to_have_count(2)
        expect(laptop.locator("#devices tr.current")).to_contain_text("Laptop Browser")
        expect(laptop.locator("#devices tr.current")).to_contain_text("(this device)")
        other = laptop.locator("#devices tr.device:not(.current)")
        expect(other).to_contain_text("Phone Browser")
        other.locator("button.revoke").click()
        expect(rows).to_have_count(1)
        expect(laptop.locator("#user")).to_contain_text("Hedy")  # this one stays
        phone.reload()  # the revoked one is logged out at its next request
        expect(phone.locator("#login")).to_be_visible()
        laptop.reload()
        expect(laptop.locator("#user")).to_contain_text("Hedy")
    finally:
        phone_context.close()
        laptop_context.close()


def test_log_out_everywhere_else(browser: Browser, demo: str) -> None:
    contexts = [browser.new_context() for _ in range(3)]
    try:
        pages = [context.new_page() for context in contexts]
        for page in pages:
            log_in(page, demo, "Barbara")
        pages[0].reload()
        expect(pages[0].locator("#devices tr.device")).to_have_count(3)
        pages[0].click("#logout-others")
        expect(pages[0].locator("#devices tr.device")).to_have_count(1)
        for page in pages[1:]:
            page.reload()
            expect(page.locator("#login")).to_be_visible()
        expect(pages[0].locator("#user")).to_contain_text("Barbara")
    finally:
        for context in contexts:
            context.close()


def test_flash_messages_survive_the_redirect_and_show_once(page: Page, demo: str) -> None:
    page.goto(demo)
    page.fill("input[name=name]", "Mary")
    page.click("#login button")  # a POST answered 303: the message rides the session
    expect(page.locator("#flashes .flash")).to_have_text(["Welcome, Mary."])
    page.reload()
    expect(page.locator("#flashes .flash")).to_have_count(0)  # read once
    page.click("#logout-others")
    expect(page.locator("#flashes .flash")).to_have_text(["Signed out 0 other devices."])
    page.click("#logout")  # the message outlives the session it was written in
    expect(page.locator("#flashes .flash")).to_have_text(["You are logged out."])
    expect(page.locator("#login")).to_be_visible()
