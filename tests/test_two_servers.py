"""Two app processes sharing one Redis, or one cookie secret: a client's session moves
freely between them."""

from __future__ import annotations

from pathlib import Path

import httpx

from support.servers import uvicorn

SUPPORT = Path(__file__).resolve().parent / "support"
SECRET = "shared-between-both-processes-0123456789"


def test_a_session_moves_freely_between_two_processes(redis_url: str, redis_prefix: str) -> None:
    def env(name: str) -> dict[str, str]:
        return {"SERVER_NAME": name, "SESH_REDIS_URL": redis_url, "SESH_PREFIX": redis_prefix,
                "SESH_SECRET": SECRET}  # fmt: skip

    with (
        uvicorn(SUPPORT, "two_servers_app:app", env("a")) as first,
        uvicorn(SUPPORT, "two_servers_app:app", env("b")) as second,
        httpx.Client() as browser,
    ):
        order = [first, second, second, first, second, first]
        for number, url in enumerate(order, start=1):
            page = browser.get(f"{url}/visit").json()
            assert page["visits"] == number
        assert page["servers"] == ["a", "b", "b", "a", "b", "a"]
        other_browser = httpx.get(f"{second}/").json()
        assert "visits" not in other_browser  # a stranger sees nothing of it


def test_a_cookie_store_session_moves_freely_between_two_processes() -> None:
    env = {"SERVER_NAME": "", "SESH_STORE": "cookie", "SESH_SECRET": SECRET}
    with (
        uvicorn(SUPPORT, "two_servers_app:app", {**env, "SERVER_NAME": "a"}) as first,
        uvicorn(SUPPORT, "two_servers_app:app", {**env, "SERVER_NAME": "b"}) as second,
        httpx.Client() as browser,
    ):
        values = []
        for number, url in enumerate([first, second, first, second, second, first], start=1):
            page = browser.get(f"{url}/visit").json()
            assert page["visits"] == number
            values.append(browser.cookies["session"])
        assert page["servers"] == ["a", "b", "a", "b", "b", "a"]
    # The value is base64 with '+', '/' and '=': all legal in a cookie, and carried intact.
    assert set("+/=") & set("".join(values))
