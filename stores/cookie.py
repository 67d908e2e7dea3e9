"""CookieStore: the whole session in a signed, optionally encrypted, cookie.

No server state at all: good for small sessions in apps that must not depend on a store.
What a cookie cannot do: a copied cookie stays valid until it expires, because the server
keeps no list of live sessions (``invalidate()`` and ``regenerate()`` only replace the
cookie in the browser that made the request). Choose a server-side store when a logout must
end the session everywhere, or when sessions grow past a few kilobytes.

The cookie value is ``<base64 body>.<tag>``: the tag (a 128-bit keyed-BLAKE2b
:class:`~sesh.core.signing.KeyedTags` tag, its key derived from the secret and the
purpose: the salt, a NUL byte and the cookie's name) is checked before anything is decoded.
A cookie made for one cookie name is therefore refused under another, even with one secret.
The body is MessagePack of ``[id, meta, {key: encoded value}]`` as it is; or a format
byte, then that MessagePack in raw deflate, or with encryption an AES-GCM box of it.
Deflate is used only for the compact form, which the engine asks for when the cookie would
not fit otherwise: deflating a 2 KB session takes about three times the instructions of a
whole request that changes a small one. The MessagePack starts with 0x93 (an array of
three), which is no format byte, so a plain body needs no byte of its own, and is decoded
without being copied. Encrypted bodies are never compressed: compressing attacker-chosen
data next to secrets would let their length leak the secrets.
"""

from __future__ import annotations

import copy
import hashlib
import os
import zlib
from binascii import a2b_base64, b2a_base64
from typing import Any

import msgspec

from sesh.core.errors import ConfigurationError
from sesh.core.signing import KeyedTags
from sesh.core.store import Record, Unsealed
from sesh.core.tokens import SecretKeys, secret_list

_PLAIN, _DEFLATE, _SEALED = 0x93, 1, 2  # _PLAIN: the MessagePack array's own first byte
_DEFLATE_BYTE, _SEALED_BYTE = bytes((_DEFLATE,)), bytes((_SEALED,))
# Raw deflate, a 4 KiB window (a cookie is no longer) and memLevel 5: zlib's default
# window and tables cost more to set up than compressing a cookie's worth, while a smaller
# memLevel also shrinks the symbol buffer (2**(memLevel + 6) symbols), and zlib ends a block,
# with Huffman tables of its own, each time it fills. At 5, a body up to 2 KB is one block; at
# 2, the benchmark's 2 KB session of varied data took 53% more instructions to deflate and
# 43% more to inflate, and came out 12% longer.
_DEFLATE_ARGS = (1, zlib.DEFLATED, -12, 5)
_MAX_INFLATED = 64 * 1024  # a cookie holds 4 KiB: anything inflating past this is hostile
_NONCE = 12
_encode = msgspec.msgpack.Encoder().encode
# Values travel as bin strings, not embedded raw: decoding them straight into bytes is C
# work, where turning 50 Raw slices back into bytes cost more than the HMAC and zlib together.
_decode = msgspec.msgpack.Decoder(tuple[str, bytes, dict[str, bytes]]).decode


class CookieStore:
    """Keeps each session in its cookie. See the module docstring for what that implies.

    ``secret_key`` is one secret (>= 32 bytes) or a list: the first signs, all verify, and
    a cookie signed with an older one is re-signed on its next response. ``encryption_key``
    (the ``crypto`` extra) works the same way for AES-GCM; with it, unencrypted cookies are
    refused. ``salt`` binds signatures to this use: two stores with different salts never
    accept each other's cookies even under one secret.
    """

    def __init__(
        self,
        secret_key: SecretKeys,
        *,
        encryption_key: SecretKeys | None = None,
        salt: str = "sesh.cookie-store",
    ) -> None:
        self._secrets = secret_list(secret_key)
        self._salt = salt.encode()
        self._tags = KeyedTags(self._secrets, self._salt)
        self._ciphers = None if encryption_key is None else _ciphers(encryption_key)
        self._aad = self._salt

    def for_cookie(self, name: str) -> CookieStore:
        """This store for the cookie ``name``: its tag and its encryption cover the name,
        so a cookie made for another name under the same secret is refused. The engine
        calls this with its cookie's name."""
        bound = copy.copy(self)
        bound._salt = self._salt + b"\x00" + name.encode()
        bound._tags = KeyedTags(self._secrets, bound._salt)
        bound._aad = bound._salt
        return bound

    def seal(self, session_id: str, record: Record, *, compact: bool = False) -> str:
        body = _encode((session_id, record.meta, record.data))
        if self._ciphers is not None:
            nonce = os.urandom(_NONCE)
            body = _SEALED_BYTE + nonce + self._ciphers[0].encrypt(nonce, body, self._aad)
        elif compact:
            packed = _DEFLATE_BYTE + _deflate(body)
            if len(packed) < len(body):
                body = packed
        # Standard base64 with its padding: every character of it may appear in a cookie
        # value (RFC 6265), and it is one C call each way where the URL-safe form takes four.
        encoded = b2a_base64(body, newline=False)
        return (encoded + b"." + self._tags.tag(encoded)).decode("ascii")

    def unseal(self, value: bytes) -> Unsealed | None:
        signed, _, tag = value.rpartition(b".")
        index = self._tags.verify(signed, tag)
        if index is None:
            return None
        resign = index > 0
        try:
            body = a2b_base64(signed)  # authentic (the tag matched), so only we encoded it
            kind = body[0]
            if self._ciphers is not None:
                if kind != _SEALED:
                    return None  # with encryption on, a plain cookie is never accepted
                body, old_key = self._open_box(body[1:])
                resign = resign or old_key
            elif kind == _DEFLATE:
                inflater = zlib.decompressobj(-15)  # raw deflate, any window
                body = inflater.decompress(body[1:], _MAX_INFLATED)
                if inflater.unconsumed_tail or not inflater.eof:
                    return None
            elif kind != _PLAIN:
                return None
            session_id, meta, data = _decode(body)
        except (IndexError, ValueError, zlib.error, msgspec.DecodeError):
            return None
        return Unsealed(session_id, Record(data, meta), resign)

    def _open_box(self, box: bytes) -> tuple[bytes, bool]:
        """The plaintext, and whether an older key opened it."""
        from cryptography.exceptions import InvalidTag  # loaded already by _ciphers()

        assert self._ciphers is not None
        nonce, sealed = box[:_NONCE], box[_NONCE:]
        for index, cipher in enumerate(self._ciphers):
            try:
                return cipher.decrypt(nonce, sealed, self._aad), index > 0
            except InvalidTag:
                continue
        raise ValueError("no encryption key opens this cookie")


def _deflate(data: bytes) -> bytes:
    deflater = zlib.compressobj(*_DEFLATE_ARGS)
    return deflater.compress(data) + deflater.flush()


def _ciphers(encryption_key: SecretKeys) -> list[Any]:
    """One AES-256-GCM cipher per key, newest first."""
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError:
        raise ConfigurationError(
            "encryption_key needs the 'cryptography' package: pip install 'sesh[crypto]'"
        ) from None
    return [
        AESGCM(hashlib.blake2b(key, digest_size=32, person=b"sesh.aes-gcm").digest())
        for key in secret_list(encryption_key, "encryption_key")
    ]
