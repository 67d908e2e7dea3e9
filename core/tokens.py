"""Session ids, the cookie values that carry them, and the store keys derived from them.

An id is ``secrets.token_urlsafe(32)``: 43 characters, 256 bits. Without secrets the cookie
carries the bare id; with secrets it carries ``<id>.<deadline>.<tag>`` (a
:class:`~sesh.core.signing.KeyedTags` tag) so that forged and expired values are refused
before any store round trip.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from hashlib import blake2b
from typing import TYPE_CHECKING

import msgspec

from .errors import ConfigurationError
from .signing import KeyedTags

if TYPE_CHECKING:
    from .store import ForeignIds

MIN_SECRET_BYTES = 32
# The shape of an id, checked without a regex: translating maps each character an id may
# hold to "a" and any other to "!", so only an id becomes _ID_SHAPE. One table lookup per
# byte, where a regex costs twice as much on every request.
_ID_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_ID_TABLE = bytes(0x61 if byte in _ID_CHARS else 0x21 for byte in range(256))
_ID_SHAPE = b"a" * 43
_MAX_SIGNED = 43 + 1 + 12 + 1 + KeyedTags.LENGTH  # id, ".", deadline (12 digits), ".", tag
_STORE_KEY = blake2b(digest_size=24, person=b"sesh.store")  # copied per use, as in KeyedTags

SecretKeys = str | bytes | Sequence[str | bytes]


class ShortSecret(bytes):
    """A secret shorter than :data:`MIN_SECRET_BYTES` that the app has been warned about
    and keeps: accepted wherever a secret is. Starlette's drop-in wraps the short secrets
    that Starlette apps already have (``secret_key="secret"``), so that swapping the import
    never locks anyone out; everything else refuses short secrets."""


def new_id() -> str:
    """A fresh session id, chosen by the server (never by the client)."""
    return secrets.token_urlsafe(32)


def is_session_id(value: object) -> bool:
    """Whether ``value`` has the shape of an id we issue (43 URL-safe characters)."""
    return (
        isinstance(value, str)
        and value.isascii()
        and value.encode().translate(_ID_TABLE) == _ID_SHAPE
    )


def store_key(session_id: str) -> str:
    """The key a server-side store files a session under: a hash, so a dump of the store
    holds no live token."""
    state = _STORE_KEY.copy()
    state.update(session_id.encode())
    return state.hexdigest()


def short_hash(value: str | bytes) -> str:
    """Eight hex digits to trace a value in logs without revealing it."""
    data = value.encode("utf-8", "replace") if isinstance(value, str) else value
    return blake2b(data, digest_size=4, person=b"sesh.log").hexdigest()


def as_user_id(value: object) -> str | None:
    """``value`` as a user id (a str), if it can be one: a non-empty str, or an int (Django
    stores ids as str, so an int and its decimal str are the same user)."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        return None
    return str(value)


def user_ref(user_id: str) -> str:
    """The name a per-user index files ``user_id``'s sessions under: a hash, so that no
    user id (an email, say) shows in the store's keys."""
    return blake2b(user_id.encode(), digest_size=16, person=b"sesh.user").hexdigest()


def handle_of(key: str) -> str:
    """A name for the session under store key ``key`` that can be shown to its user and
    given back to revoke it: a hash, so it never reveals the key (which, for a store of
    another framework's sessions, is the token itself)."""
    return blake2b(key.encode(), digest_size=12, person=b"sesh.handle").hexdigest()


def secret_list(secret_key: SecretKeys, what: str = "secret_key") -> list[bytes]:
    """Normalise one secret or a list of them (the first signs, all verify) to bytes."""
    if isinstance(secret_key, str | bytes):
        items: list[object] = [secret_key]
    elif isinstance(secret_key, list | tuple):
        items = list(secret_key)
    else:
        raise ConfigurationError(
            f"{what} must be a str, bytes, or a list of them (the first signs, all verify), "
            f"not {type(secret_key).__name__}"
        )
    if not items:
        raise ConfigurationError(f"{what} is empty: give at least one secret")
    keys = []
    for item in items:
        if not isinstance(item, str | bytes):
            raise ConfigurationError(f"{what} must be str or bytes, not {type(item).__name__}")
        key = item.encode() if isinstance(item, str) else item
        if len(key) < MIN_SECRET_BYTES and not isinstance(key, ShortSecret):
            raise ConfigurationError(
                f"every {what} must be at least {MIN_SECRET_BYTES} bytes long "
                f"(one is {len(key)}); generate one with: "
                'python -c "import secrets; print(secrets.token_urlsafe(48))"'
            )
        keys.append(key)
    return keys


class Verified(msgspec.Struct, frozen=True):
    """A cookie value that passed every check."""

    session_id: str
    resign: bool
    """True when it verified with an older secret: the next response re-signs it."""


class TokenCodec:
    """sesh's own ids: how they are made, put in cookies (signed when secrets are given)
    and read back, and the store key each is filed under."""

    __slots__ = ("_tags", "signed")
    new_id = staticmethod(new_id)
    is_id = staticmethod(is_session_id)
    key = staticmethod(store_key)

    def __init__(self, secret_key: SecretKeys | None = None, cookie_name: str = "session") -> None:
        # The cookie's name is part of the key: a value issued under one name is refused
        # under another configured with the same secret (another app on the same domain).
        purpose = b"sesh.id\x00" + cookie_name.encode()
        self._tags = None if secret_key is None else KeyedTags(secret_list(secret_key), purpose)
        self.signed = self._tags is not None
        """Whether values carry a deadline: only then does :meth:`load` look at ``now``."""

    def dump(self, session_id: str, deadline: float) -> str:
        """The cookie value for ``session_id``; ``deadline`` is its absolute expiry (epoch s)."""
        if self._tags is None:
            return session_id
        body = f"{session_id}.{math.ceil(deadline)}".encode()
        return (body + b"." + self._tags.tag(body)).decode("ascii")

    def load(self, value: bytes, now: float) -> Verified | None:
        """The id in ``value`` if it is one we issued and has not expired, else ``None``."""
        if self._tags is None:
            if value.translate(_ID_TABLE) != _ID_SHAPE:  # the length is checked with it
                return None
            return Verified(value.decode("ascii"), False)
        if len(value) > _MAX_SIGNED:  # no hashing for what cannot be one of ours
            return None
        # Nothing is parsed before the tag is checked: a valid tag covers the id and the
        # deadline, which are then exactly as dump() wrote them.
        body, _, tag = value.rpartition(b".")
        index = self._tags.verify(body, tag)
        if index is None or int(body[44:]) <= now:
            return None
        return Verified(body[:43].decode("ascii"), index > 0)


class ForeignTokens:
    """The ids of a :class:`~sesh.core.store.ForeignIds` store, as the engine uses
    :class:`TokenCodec`'s: the store makes and recognises them, the cookie carries the bare
    id, and the id is its own key."""

    __slots__ = ("_is_id", "new_id")
    signed = False

    def __init__(self, store: ForeignIds) -> None:
        self.new_id = store.new_id
        self._is_id = store.is_id

    def is_id(self, value: object) -> bool:
        return isinstance(value, str) and self._is_id(value)

    @staticmethod
    def key(session_id: str) -> str:
        return session_id

    @staticmethod
    def dump(session_id: str, deadline: float) -> str:
        return session_id

    def load(self, value: bytes, now: float) -> Verified | None:
        if not value.isascii():
            return None
        text = value.decode("ascii")
        return Verified(text, False) if self._is_id(text) else None


IdScheme = TokenCodec | ForeignTokens
"""What the engine asks for ids: ``new_id``, ``is_id``, ``key``, ``dump`` and ``load``."""
