"""Session ids, the cookie values that carry them, and the store keys derived from them.

An id is ``secrets.token_urlsafe(32)``: 43 characters, 256 bits. Without secrets the cookie
carries the bare id; with secrets it carries ``<id>.<deadline>.<mac>`` so that forged and
expired values are refused before any store round trip. The MAC is keyed BLAKE2b (a MAC by
design, RFC 7693), a quarter of the cost of HMAC-SHA256 here, over a key derived per secret.
"""

from __future__ import annotations

import math
import re
import secrets
from collections.abc import Sequence
from hashlib import blake2b
from hmac import compare_digest
from typing import NamedTuple

from .errors import ConfigurationError
from .signing import b64encode

MIN_SECRET_BYTES = 32
_ID = re.compile(rb"[A-Za-z0-9_-]{43}")

SecretKeys = str | bytes | Sequence[str | bytes]


def new_id() -> str:
    """A fresh session id, chosen by the server (never by the client)."""
    return secrets.token_urlsafe(32)


def is_session_id(value: object) -> bool:
    """Whether ``value`` has the shape of an id we issue (43 URL-safe characters)."""
    return isinstance(value, str) and value.isascii() and _ID.fullmatch(value.encode()) is not None


def store_key(session_id: str) -> str:
    """The key a server-side store files a session under: a hash, so a dump of the store
    holds no live token."""
    return blake2b(session_id.encode(), digest_size=24, person=b"sesh.store").hexdigest()


def short_hash(value: str | bytes) -> str:
    """Eight hex digits to trace a value in logs without revealing it."""
    data = value.encode("utf-8", "replace") if isinstance(value, str) else value
    return blake2b(data, digest_size=4, person=b"sesh.log").hexdigest()


def secret_list(secret_key: SecretKeys, what: str = "secret_key") -> list[bytes]:
    """Normalise one secret or a list of them (the first signs, all verify) to bytes."""
    items = [secret_key] if isinstance(secret_key, str | bytes) else list(secret_key)
    if not items:
        raise ConfigurationError(f"{what} is empty: give at least one secret")
    keys = []
    for item in items:
        if not isinstance(item, str | bytes):
            raise ConfigurationError(f"{what} must be str or bytes, not {type(item).__name__}")
        key = item.encode() if isinstance(item, str) else item
        if len(key) < MIN_SECRET_BYTES:
            raise ConfigurationError(
                f"every {what} must be at least {MIN_SECRET_BYTES} bytes long "
                f"(one is {len(key)}); generate one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        keys.append(key)
    return keys


class Verified(NamedTuple):
    """A cookie value that passed every check."""

    session_id: str
    resign: bool
    """True when it verified with an older secret: the next response re-signs it."""


class TokenCodec:
    """Turns session ids into cookie values and back, signed when secrets are given."""

    __slots__ = ("_macs", "max_length")

    def __init__(self, secret_key: SecretKeys | None = None) -> None:
        # One keyed BLAKE2b state per secret, copied per use: keying it anew costs twice.
        self._macs = (
            None
            if secret_key is None
            else [
                blake2b(
                    key=blake2b(key, digest_size=32, person=b"sesh.id.key").digest(),
                    digest_size=32,
                )
                for key in secret_list(secret_key)
            ]
        )
        self.max_length = 43 if self._macs is None else 43 + 1 + 12 + 1 + 43

    def dump(self, session_id: str, deadline: float) -> str:
        """The cookie value for ``session_id``; ``deadline`` is its absolute expiry (epoch s)."""
        if self._macs is None:
            return session_id
        body = f"{session_id}.{math.ceil(deadline)}"
        return f"{body}.{self._mac(0, body.encode()).decode('ascii')}"

    def load(self, value: bytes, now: float) -> Verified | None:
        """The id in ``value`` if it is one we issued and has not expired, else ``None``."""
        if len(value) > self.max_length:
            return None
        if self._macs is None:
            return Verified(value.decode("ascii"), False) if _ID.fullmatch(value) else None
        # Only the shape is checked before the MAC: a valid MAC covers the id and deadline,
        # so an id we did not issue (a bad character, a wrong length) never gets past it.
        body, dot, mac = value.rpartition(b".")
        deadline = body[44:]
        if (
            not dot
            or len(mac) != 43
            or body[43:44] != b"."
            or not deadline.isdigit()  # ASCII digits only, for bytes
            or len(deadline) > 12
            or int(deadline) <= now
        ):
            return None
        for index in range(len(self._macs)):
            if compare_digest(self._mac(index, body), mac):
                return Verified(body[:43].decode("ascii"), index > 0)
        return None

    def _mac(self, index: int, body: bytes) -> bytes:
        assert self._macs is not None
        state = self._macs[index].copy()
        state.update(body)
        return b64encode(state.digest())  # 32 bytes: 43 characters
