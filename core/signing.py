"""Tags and signatures: sesh's own keyed-BLAKE2b tags, and HMAC in itsdangerous' format.

:class:`KeyedTags` authenticates sesh's own formats (signed ids, CookieStore cookies).
The HMAC signers below exist for formats shared with other libraries (Starlette's cookie).

``value.signature`` (and ``value.timestamp.signature``) exactly as ``itsdangerous.Signer``
and ``TimestampSigner`` write them, byte for byte, so cookies move freely between sesh,
itsdangerous and Starlette (the tests prove it against itsdangerous itself). Written here
because the library re-derives its key and rebuilds its HMAC on every call: verifying here
costs a third of ``Signer.unsign``, on the path of every request that carries a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
from binascii import Error as BinasciiError
from binascii import a2b_base64, b2a_base64, hexlify
from collections.abc import Callable
from hmac import compare_digest
from typing import Any, Literal

_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")

Digest = Callable[..., Any]  # hashlib.sha256, hashlib.sha1, ...


def b64encode(data: bytes) -> bytes:
    """URL-safe base64 without padding (itsdangerous' ``base64_encode``)."""
    return b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URLSAFE)


def b64decode(data: bytes) -> bytes:
    """The inverse of :func:`b64encode`; ``ValueError`` on anything else."""
    try:
        return a2b_base64(data.translate(_FROM_URLSAFE) + b"=" * (-len(data) % 4))
    except BinasciiError as error:
        raise ValueError(str(error)) from None


class KeyedTags:
    """128-bit tags in hex from keyed BLAKE2b (a MAC by design, RFC 7693), one key per
    secret and ``purpose``: the same secret never yields the same key for two purposes.

    ``secrets`` are newest first: the first tags, all verify. Per tag it costs a third of
    HMAC-SHA256 here (a keyed state is copied, never keyed again), and hex is one C call
    from the digest where base64 takes three.
    """

    __slots__ = ("_states",)
    LENGTH = 32
    """Characters in a tag."""

    def __init__(self, secrets: list[bytes], purpose: bytes) -> None:
        self._states = [
            hashlib.blake2b(
                key=hashlib.blake2b(
                    purpose, key=hashlib.blake2b(secret).digest(), person=b"sesh.tag.key"
                ).digest(),
                digest_size=16,
            )
            for secret in secrets
        ]

    def tag(self, data: bytes) -> bytes:
        """The tag of ``data`` under the newest secret (older ones only verify)."""
        state = self._states[0].copy()
        state.update(data)
        return hexlify(state.digest())

    def verify(self, data: bytes, tag: bytes) -> int | None:
        """Which secret tagged ``data`` (0: the newest), or None if none did."""
        if len(tag) != self.LENGTH:  # not even the shape of a tag: no hashing for it
            return None
        for index, keyed in enumerate(self._states):  # tag(), inline: once per request
            state = keyed.copy()
            state.update(data)
            if compare_digest(hexlify(state.digest()), tag):
                return index
        return None


class HmacSigner:
    """Signs as ``itsdangerous.Signer(secrets, salt, key_derivation, digest_method)``.

    ``secrets`` are newest first: the first signs, all verify.
    """

    def __init__(
        self,
        secrets: list[bytes],
        *,
        salt: bytes,
        digest: Digest = hashlib.sha256,
        key_derivation: Literal["hmac", "django-concat"] = "hmac",
    ) -> None:
        if key_derivation == "hmac":
            keys = [hmac.new(secret, salt, digest).digest() for secret in secrets]
        else:
            keys = [digest(salt + b"signer" + secret).digest() for secret in secrets]
        # A keyed HMAC, copied per use: cheaper than building it again every time.
        self._macs = [hmac.new(key, digestmod=digest) for key in keys]

    def _signature(self, index: int, value: bytes) -> bytes:
        mac = self._macs[index].copy()
        mac.update(value)
        return b64encode(mac.digest())

    def sign(self, value: bytes) -> bytes:
        return value + b"." + self._signature(0, value)

    def unsign(self, signed: bytes) -> tuple[bytes, bool] | None:
        """The value, and whether an older secret signed it; None if no secret did."""
        value, dot, signature = signed.rpartition(b".")
        if not dot:
            return None
        for index in range(len(self._macs)):
            if compare_digest(self._signature(index, value), signature):
                return value, index > 0
        return None


class TimestampHmacSigner(HmacSigner):
    """Signs as ``itsdangerous.TimestampSigner``: the value, its signing time, a signature."""

    def sign_at(self, value: bytes, now: float) -> bytes:
        stamp = int(now)
        return self.sign(
            value + b"." + b64encode(stamp.to_bytes((stamp.bit_length() + 7) // 8, "big"))
        )

    def unsign_within(
        self, signed: bytes, max_age: float | None, now: float
    ) -> tuple[bytes, int, bool] | None:
        """Value, signing time and "older secret", if genuine and (with ``max_age``) not
        older than ``max_age`` seconds nor from the future, as itsdangerous checks."""
        verified = self.unsign(signed)
        if verified is None:
            return None
        stamped, older = verified
        value, dot, encoded = stamped.rpartition(b".")
        try:
            raw = b64decode(encoded)
        except ValueError:
            return None
        if not dot or len(raw) > 8:
            return None
        stamp = int.from_bytes(raw, "big")
        if max_age is not None and not 0 <= int(now) - stamp <= max_age:  # whole seconds
            return None
        return value, stamp, older
