"""CSRF protection tied to the session, as Django's ``CSRF_USE_SESSIONS``: a secret kept in
the session (replaced at :func:`sesh.core.identity.login`), a token made from it for each
page (:func:`csrf_token`), and a check of unsafe requests: :func:`csrf_valid` by hand, the
pure-ASGI :class:`CSRFMiddleware`, or the FastAPI dependency
``sesh.adapters.fastapi.csrf_protect``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from urllib.parse import parse_qs

from .middleware import session_data
from .session import Session
from .types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "CSRF_KEY",
    "MAX_FORM",
    "SAFE_METHODS",
    "CSRFMiddleware",
    "csrf_token",
    "csrf_valid",
    "form_token",
    "header_token",
]

CSRF_KEY = "_csrf_token"
"""The session key of the secret; pages carry it masked (:func:`csrf_token`)."""
CSRF_HEADER = "x-csrf-token"
"""The header a script sends the token in."""
CSRF_FIELD = "csrf_token"
"""The form field a page sends the token in."""
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
MAX_FORM = 1024 * 1024
"""Bytes of a form body :class:`CSRFMiddleware` reads to find the token; a larger one must
send the header."""

_BYTES = 32


def csrf_token(session: Session) -> str:
    """A token to put in a form (or a header) for :func:`csrf_valid`. The secret behind it
    is kept in the session and replaced at :func:`~sesh.core.identity.login`; each call
    masks it afresh, so no two pages carry the same string (BREACH)."""
    secret = _secret(session)
    if secret is None:
        secret = secrets.token_bytes(_BYTES)
        session[CSRF_KEY] = base64.urlsafe_b64encode(secret).decode()
    mask = secrets.token_bytes(_BYTES)
    masked = bytes(a ^ b for a, b in zip(mask, secret, strict=True))
    return base64.urlsafe_b64encode(mask + masked).decode().rstrip("=")


def csrf_valid(session: Session, token: str | None) -> bool:
    """Whether ``token`` came from :func:`csrf_token` for this session's secret."""
    secret = _secret(session)
    if secret is None or not isinstance(token, str) or not token or len(token) > 200:
        return False
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii") + b"=" * (-len(token) % 4))
    except (binascii.Error, ValueError):  # UnicodeEncodeError is a ValueError
        return False
    if len(raw) != 2 * _BYTES:
        return False
    mask, masked = raw[:_BYTES], raw[_BYTES:]
    unmasked = bytes(a ^ b for a, b in zip(mask, masked, strict=True))
    return hmac.compare_digest(unmasked, secret)


def _secret(session: Session) -> bytes | None:
    value = session.get(CSRF_KEY)
    if not isinstance(value, str):
        return None
    try:
        secret = base64.urlsafe_b64decode(value)
    except (binascii.Error, ValueError):
        return None
    return secret if len(secret) == _BYTES else None


def header_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token in a request's ``X-CSRF-Token`` header, if it has one."""
    for name, value in headers:
        if name.lower() == CSRF_HEADER.encode():
            return value.decode("latin-1")
    return None


def form_token(body: bytes) -> str | None:
    """The token in an urlencoded form's ``csrf_token`` field, if it has one."""
    try:
        values = parse_qs(body.decode("latin-1"), max_num_fields=1000).get(CSRF_FIELD)
    except ValueError:  # more fields than that: no form a page of the app sends
        return None
    return values[0] if values else None


class CSRFMiddleware:
    """Refuses (403) an http request of an unsafe method (POST, PUT, PATCH, DELETE ...) that
    does not carry a valid :func:`csrf_token`, in the ``X-CSRF-Token`` header or, for a
    urlencoded form of at most :data:`MAX_FORM` bytes, in its ``csrf_token`` field (the body
    is then passed on to the app unchanged). Put it inside the session middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS:
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        token = header_token(headers)
        received: list[Message] = []
        if token is None and _is_form(headers):
            form, received = await _read_body(receive)
            if form is None:
                await _refuse(send, 413, b"form too large to look for a CSRF token in")
                return
            token = form_token(form)
        if not csrf_valid(session_data(scope), token):
            await _refuse(send, 403, b"CSRF token missing or wrong")
            return
        if received:
            receive = _replay(received, receive)
        await self.app(scope, receive, send)


def _is_form(headers: list[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/x-www-form-urlencoded"
    return False


async def _read_body(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The body (None past :data:`MAX_FORM`) and the messages it came in, to replay."""
    received: list[Message] = []
    size = 0
    while True:
        message = await receive()
        received.append(message)
        if message["type"] != "http.request":
            return b"".join(m.get("body", b"") for m in received), received
        size += len(message.get("body", b""))
        if size > MAX_FORM:
            return None, received
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in received), received


def _replay(received: list[Message], receive: Receive) -> Receive:
    pending = list(received)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay


async def _refuse(send: Send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
