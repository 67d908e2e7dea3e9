"""itsdangerous signers that derive their keys once, not on every sign and verify.

itsdangerous re-derives the key from the secret on every call; on the per-request path that
is a second HMAC for nothing. These subclasses remember each derived key.
"""

from __future__ import annotations

from typing import Any

import itsdangerous
from itsdangerous.encoding import want_bytes

from .types import Clock


class _KeyCache:
    _derived: dict[bytes, bytes]

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        secret = self.secret_keys[-1] if secret_key is None else want_bytes(secret_key)  # type: ignore[attr-defined]
        try:
            return self._derived[secret]
        except KeyError:
            key: bytes = super().derive_key(secret)  # type: ignore[misc]
            self._derived[secret] = key
            return key


class Signer(_KeyCache, itsdangerous.Signer):
    """``itsdangerous.Signer`` with derived keys cached."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._derived = {}
        super().__init__(*args, **kwargs)


class TimestampSigner(_KeyCache, itsdangerous.TimestampSigner):
    """``itsdangerous.TimestampSigner`` with derived keys cached and an injectable clock."""

    def __init__(self, *args: Any, clock: Clock, **kwargs: Any) -> None:
        self._derived = {}
        self._clock = clock
        super().__init__(*args, **kwargs)

    def get_timestamp(self) -> int:
        return int(self._clock())
