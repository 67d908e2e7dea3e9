"""Behind a TLS-terminating proxy: ``secure="auto"`` and the proxy's word for the scheme."""

from __future__ import annotations

from typing import Any

import pytest

from sesh.core import ConfigurationError, SessionConfig, SessionMiddleware
from sesh.core.testing import Client, cookie_attributes, responder
from sesh.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio


def login(session: Any) -> None:
    session["user"] = "ada"


async def cookie_behind_proxy(headers: list[tuple[bytes, bytes]], **options: Any) -> dict[str, str]:
    app = SessionMiddleware(responder(login), store=MemoryStore(), **options)
    response = await Client(app).request(headers=headers)  # the proxy speaks http to us
    [set_cookie] = response.set_cookies
    return cookie_attributes(set_cookie)


FROM_HTTPS = [
    [(b"x-forwarded-proto", b"https")],
    [(b"x-forwarded-proto", b"https, http")],  # the first hop is the client's
    [(b"forwarded", b'for=192.0.2.60;proto="https";by=203.0.113.43')],
    [(b"forwarded", b"proto=https, proto=http")],
]


@pytest.mark.parametrize("headers", FROM_HTTPS)
async def test_a_trusted_proxy_saying_https_makes_the_cookie_secure(
    headers: list[tuple[bytes, bytes]],
) -> None:
    assert "secure" in await cookie_behind_proxy(headers, trust_forwarded_proto=True)


@pytest.mark.parametrize("headers", FROM_HTTPS)
async def test_without_trust_the_proxys_word_is_ignored(
    headers: list[tuple[bytes, bytes]],
) -> None:
    assert "secure" not in await cookie_behind_proxy(headers)


@pytest.mark.parametrize(
    "headers",
    [[], [(b"x-forwarded-proto", b"http")], [(b"forwarded", b"for=192.0.2.60;proto=http")]],
)
async def test_a_proxy_saying_http_leaves_the_cookie_as_it_is(
    headers: list[tuple[bytes, bytes]],
) -> None:
    assert "secure" not in await cookie_behind_proxy(headers, trust_forwarded_proto=True)


def test_trust_forwarded_proto_without_auto_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigurationError, match="secure='auto'"):
        SessionConfig(secure=True, trust_forwarded_proto=True)


def test_it_is_read_from_the_environment() -> None:
    assert SessionConfig.from_env({"SESH_TRUST_FORWARDED_PROTO": "true"}).trust_forwarded_proto
