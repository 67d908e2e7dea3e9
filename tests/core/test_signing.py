"""sesh's signers write and accept exactly what itsdangerous does."""

from __future__ import annotations

import hashlib
from typing import Any

import itsdangerous
import pytest

from sesh.core.signing import HmacSigner, TimestampHmacSigner, b64decode, b64encode

NEW, OLD = b"n" * 40, b"o" * 40
VALUES = [b"", b"x", b"a.b.c", bytes(range(256)).replace(b".", b""), b"e30=" * 50]
FLAVOURS: list[dict[str, Any]] = [
    {"salt": b"sesh.cookie-store", "digest": hashlib.sha256, "key_derivation": "hmac"},
    {"salt": b"itsdangerous.Signer", "digest": hashlib.sha1, "key_derivation": "django-concat"},
]


def theirs(
    flavour: dict[str, Any], keys: list[bytes], kind: type[Any] = itsdangerous.Signer
) -> Any:
    return kind(
        list(reversed(keys)),  # itsdangerous signs with the last key
        salt=flavour["salt"],
        digest_method=flavour["digest"],
        key_derivation=flavour["key_derivation"],
    )


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("value", VALUES)
def test_signatures_are_byte_for_byte_itsdangerous(flavour: dict[str, Any], value: bytes) -> None:
    ours = HmacSigner([NEW], **flavour)
    assert ours.sign(value) == theirs(flavour, [NEW]).sign(value)
    assert ours.unsign(theirs(flavour, [NEW]).sign(value)) == (value, False)
    assert theirs(flavour, [NEW]).unsign(ours.sign(value)) == value


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_rotation_verifies_older_secrets_and_says_so(flavour: dict[str, Any]) -> None:
    ours = HmacSigner([NEW, OLD], **flavour)
    assert ours.unsign(theirs(flavour, [OLD]).sign(b"v")) == (b"v", True)
    assert ours.sign(b"v") == theirs(flavour, [NEW]).sign(b"v")
    assert HmacSigner([NEW], **flavour).unsign(theirs(flavour, [OLD]).sign(b"v")) is None


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_anything_altered_is_refused(flavour: dict[str, Any]) -> None:
    ours = HmacSigner([NEW], **flavour)
    signed = ours.sign(b"value")
    for index in range(len(signed)):
        altered = signed[:index] + bytes((signed[index] ^ 1,)) + signed[index + 1 :]
        assert ours.unsign(altered) is None, index
    for bad in (b"", b"value", b"value.", signed + b"x", signed[:-1], b"." + signed):
        assert ours.unsign(bad) is None
    other_salt = HmacSigner([NEW], **{**flavour, "salt": b"other"})
    assert other_salt.unsign(signed) is None


class Frozen(itsdangerous.TimestampSigner):
    now = 1_800_000_000

    def get_timestamp(self) -> int:
        return self.now


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_timestamps_are_itsdangerous_too(flavour: dict[str, Any]) -> None:
    ours = TimestampHmacSigner([NEW], **flavour)
    reference = theirs(flavour, [NEW], Frozen)
    assert ours.sign_at(b"v", Frozen.now + 0.9) == reference.sign(b"v")
    assert ours.unsign_within(reference.sign(b"v"), 60, Frozen.now + 60) == (
        b"v",
        Frozen.now,
        False,
    )
    assert reference.unsign(ours.sign_at(b"v", Frozen.now), max_age=60) == b"v"


def test_timestamp_age_is_checked_as_itsdangerous_does() -> None:
    ours = TimestampHmacSigner([NEW], salt=b"s")
    signed = ours.sign_at(b"v", 1000)
    assert ours.unsign_within(signed, 60, 1060) is not None
    assert ours.unsign_within(signed, 60, 1061) is None  # too old
    assert ours.unsign_within(signed, 60, 999) is None  # from the future
    assert ours.unsign_within(signed, None, 10**12) is not None  # no max_age, no limit
    unstamped = HmacSigner([NEW], salt=b"s").sign(b"v")
    assert ours.unsign_within(unstamped, None, 1000) is None
    too_long = HmacSigner([NEW], salt=b"s").sign(b"v." + b64encode(b"\x01" * 9))
    assert ours.unsign_within(too_long, None, 1000) is None


def test_base64_round_trips_and_refuses_junk() -> None:
    for size in range(40):
        data = bytes(range(size))
        assert b64decode(b64encode(data)) == data
        assert b"=" not in b64encode(data)
    with pytest.raises(ValueError, match="base64"):
        b64decode(b"A")
