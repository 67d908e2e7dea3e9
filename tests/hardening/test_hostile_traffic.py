"""Hostile traffic stays cheap and contained: floods of bad cookie values, and cookies
replayed under another cookie name configured with the same secret."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from sesh.core import SessionMiddleware
from sesh.core.testing import Client, FakeClock, responder
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio

SECRET = "one-secret-shared-by-two-apps-0123456789-abcdef"


def show(session: Any) -> dict[str, Any]:
    return dict(session)


async def test_thousands_of_bad_values_write_one_log_record_with_a_count(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    app = SessionMiddleware(responder(show), store=MemoryStore(clock=clock), secret_key=SECRET)
    pairs = "; ".join(f"session=forged{index}" for index in range(3000))
    with caplog.at_level(logging.DEBUG, "sesh"):
        response = await Client(app).request(headers=[(b"cookie", pairs.encode())])
    assert response.text == "{}"
    assert len(caplog.records) == 1
    assert "3000 of 3000 values" in caplog.records[0].getMessage()


def login(session: Any) -> dict[str, Any]:
    session.setdefault("user", "admin-of-app-a")
    return dict(session)


def app_named(name: str, kind: str, store: MemoryStore, action: Any) -> SessionMiddleware:
    """One of two apps on one domain, one secret, each with its own cookie name."""
    if kind == "signed ids":
        return SessionMiddleware(
            responder(action), store=store, secret_key=SECRET, cookie_name=name
        )
    return SessionMiddleware(responder(action), store=CookieStore(SECRET), cookie_name=name)


@pytest.mark.parametrize("kind", ["signed ids", "cookie store"])
async def test_a_cookie_made_for_one_name_is_refused_under_another(
    clock: FakeClock, kind: str
) -> None:
    store = MemoryStore(clock=clock)
    browser = Client(app_named("a", kind, store, login))
    await browser.request()
    assert (await browser.request()).text == "{'user': 'admin-of-app-a'}"
    replayed = Client(app_named("b", kind, store, show))
    replayed.jar = {"b": browser.jar["a"]}
    assert (await replayed.request()).text == "{}"
