"""What every store, server-side or client-side, must do behind the engine.

A store's test module subclasses :class:`SessionContract` and gives a ``session_store``
fixture; every test here runs through the real middleware. (Server-side stores also run
:class:`support.contract.StoreContract`, which speaks to the store directly.)
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

from sesh.core import Session, SessionMiddleware
from sesh.core.store import ClientStore, Store

from support.asgi import Client, Response, cookie_attributes, responder
from support.clock import FakeClock

pytestmark = pytest.mark.anyio

SECRET = "a-contract-secret-that-is-long-enough-0123"
Action = Callable[[Session], Any]


class SessionContract:
    @pytest.fixture
    def client(self, session_store: Store | ClientStore, clock: FakeClock) -> Client:
        self._store = session_store
        self._clock = clock
        return Client(self.app(None))

    def app(self, action: Action | None, **options: Any) -> Any:
        options.setdefault("clock", self._clock)
        options.setdefault("secret_key", SECRET)
        return SessionMiddleware(responder(action), store=self._store, **options)

    async def run(self, client: Client, action: Action, **options: Any) -> Response:
        client.app = self.app(action, **options)
        return await client.request()

    async def show(self, client: Client) -> str:
        return (await self.run(client, lambda s: dict(s))).text

    async def test_a_write_is_read_back(self, client: Client) -> None:
        response = await self.run(client, lambda s: s.update(user="ada", n=1))
        assert len(response.set_cookies) == 1
        assert await self.show(client) == "{'user': 'ada', 'n': 1}"

    async def test_values_round_trip(self, client: Client) -> None:
        when = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        values = {
            "s": "\u00e9t\u00e9 \u2603",
            "b": b"\x00\xff",
            "f": 1.5,
            "none": None,
            "nested": {"list": [1, [2, {"x": True}]]},
            "when": when,
            "big": 2**62,
        }
        await self.run(client, lambda s: s.update(values))
        response = await self.run(client, lambda s: dict(s) == values)
        assert response.text == "True"

    async def test_reading_sends_no_cookie(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1))
        response = await self.run(client, lambda s: s["a"])
        assert response.text == "1"
        assert response.set_cookies == []
        assert response.values("vary") == ["Cookie"]

    async def test_changing_one_key_keeps_the_others(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1, b=2))
        await self.run(client, lambda s: s.__setitem__("b", 3))
        await self.run(client, lambda s: s.__delitem__("a"))
        assert await self.show(client) == "{'b': 3}"

    async def test_in_place_changes_are_saved(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(cart=[1]))
        await self.run(client, lambda s: s["cart"].append(2))
        assert await self.show(client) == "{'cart': [1, 2]}"

    async def test_regenerate_keeps_the_data_under_a_new_id(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1))
        before = client.jar["session"]
        response = await self.run(client, lambda s: s.regenerate())
        assert len(response.set_cookies) == 1
        assert client.jar["session"] != before
        assert await self.show(client) == "{'a': 1}"

    async def test_invalidate_forgets_the_session(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1))
        response = await self.run(client, lambda s: s.invalidate())
        assert cookie_attributes(response.set_cookies[0])["max-age"] == "0"
        assert "session" not in client.jar
        assert await self.show(client) == "{}"

    async def test_the_lifetime_is_enforced_by_the_server(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1), max_age=60)
        self._clock.advance(61)
        response = await self.run(client, lambda s: dict(s), max_age=60)
        assert response.text == "{}"

    async def test_remember_me(self, client: Client) -> None:
        def remember(session: Session) -> None:
            session["a"] = 1
            session.set_expiry(86400 * 30)

        response = await self.run(client, remember)
        assert cookie_attributes(response.set_cookies[0])["max-age"] == str(86400 * 30)
        self._clock.advance(86400 * 29)
        assert await self.show(client) == "{'a': 1}"

    async def test_new_and_stored_sessions_are_told_apart(self, client: Client) -> None:
        assert (await self.run(client, lambda s: (s.is_new, s.update(a=1)))).text == "(True, None)"
        assert (await self.run(client, lambda s: s.is_new)).text == "False"

    async def test_a_tampered_cookie_is_no_session(self, client: Client) -> None:
        await self.run(client, lambda s: s.update(a=1))
        value = client.jar["session"]
        client.jar["session"] = value[:10] + ("A" if value[10] != "A" else "B") + value[11:]
        response = await self.run(client, lambda s: dict(s))
        assert response.status == 200
        assert response.text == "{}"
