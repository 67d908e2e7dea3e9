"""CSRFMiddleware: unsafe requests need the session's token, in a header or a form."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from sesh.core import Session, SessionMiddleware
from sesh.core.csrf import MAX_FORM, CSRFMiddleware, csrf_token
from sesh.core.testing import Client
from sesh.core.types import Receive, Scope, Send
from sesh.stores.memory import MemoryStore

pytestmark = pytest.mark.anyio
FORM = [(b"content-type", b"application/x-www-form-urlencoded")]


async def page(scope: Scope, receive: Receive, send: Send) -> None:
    """GET /token gives a token; any other request echoes the body it received."""
    session: Session = scope["session"]
    if scope["path"] == "/token":
        body = csrf_token(session).encode()
    else:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        body = b"ran:" + body
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
def client() -> Client:
    return Client(SessionMiddleware(CSRFMiddleware(page), store=MemoryStore()))


async def token(client: Client) -> str:
    return (await client.request("/token")).text


def with_cookie(client: Client, *headers: tuple[bytes, bytes]) -> list[tuple[bytes, bytes]]:
    return [*client._cookie_headers(), *headers]


async def test_safe_methods_need_no_token(client: Client) -> None:
    assert (await client.request("/x")).text == "ran:"
    assert (await client.request("/x", method="HEAD")).status == 200


async def test_an_unsafe_request_without_a_token_is_refused(client: Client) -> None:
    await token(client)
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = await client.request("/x", method=method)
        assert response.status == 403
        assert b"ran" not in response.body


async def test_the_token_in_a_header(client: Client) -> None:
    headers = with_cookie(client, (b"x-csrf-token", (await token(client)).encode()))
    response = await client.request("/x", method="POST", headers=headers, body=b"{}")
    assert response.text == "ran:{}"


async def test_the_token_in_a_form_and_the_app_still_gets_the_body(client: Client) -> None:
    body = f"name=ada&csrf_token={quote(await token(client))}".encode()
    response = await client.request(
        "/x", method="POST", headers=with_cookie(client, *FORM), body=body
    )
    assert response.text == "ran:" + body.decode()


async def test_a_wrong_or_foreign_token_is_refused(client: Client) -> None:
    other = Client(client.app)
    foreign = await token(other)
    await token(client)
    for bad in (foreign, "garbage", ""):
        headers = with_cookie(client, (b"x-csrf-token", bad.encode()))
        assert (await client.request("/x", method="POST", headers=headers)).status == 403


async def test_a_form_too_large_to_read_is_refused(client: Client) -> None:
    body = b"a=" + b"x" * MAX_FORM + b"&csrf_token=" + (await token(client)).encode()
    response = await client.request(
        "/x", method="POST", headers=with_cookie(client, *FORM), body=body
    )
    assert response.status == 413


async def test_a_multipart_form_must_send_the_header(client: Client) -> None:
    body = b"csrf_token=" + (await token(client)).encode()
    multipart = (b"content-type", b"multipart/form-data; boundary=x")
    response = await client.request(
        "/x", method="POST", headers=with_cookie(client, multipart), body=body
    )
    assert response.status == 403
