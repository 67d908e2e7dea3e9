from __future__ import annotations

import re

import pytest

from sesh.core import ConfigurationError
from sesh.core.tokens import (
    TokenCodec,
    Verified,
    new_id,
    secret_list,
    short_hash,
    store_key,
)

NOW = 1_800_000_000.0
SECRET = "s" * 32
OLD = "o" * 32


def test_ids_are_256_bit_urlsafe_and_unique() -> None:
    ids = {new_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{43}", i) for i in ids)


def test_store_key_is_a_hash_not_the_id() -> None:
    session_id = new_id()
    key = store_key(session_id)
    assert key == store_key(session_id)
    assert session_id not in key
    assert key != store_key(new_id())
    assert re.fullmatch(r"[0-9a-f]{48}", key)


def test_short_hash_hides_the_value() -> None:
    assert len(short_hash("secret-value")) == 8
    assert "secret" not in short_hash("secret-value")


class TestUnsigned:
    def test_round_trip(self) -> None:
        codec = TokenCodec()
        session_id = new_id()
        value = codec.dump(session_id, NOW + 60)
        assert value == session_id
        verified = codec.load(value.encode(), NOW)
        assert verified is not None
        assert verified.session_id == session_id
        assert not verified.resign

    @pytest.mark.parametrize(
        "value",
        [
            b"",
            b"a" * 42,
            b"a" * 44,
            b"a" * 42 + b"=",
            b"a" * 42 + b"\x00",
            b"a" * 42 + b"/",
            b"a" * 42 + b"*",
            b"../../" + b"a" * 37,
            b"' OR 1=1 --" + b"a" * 32,
            b"a" * 42 + b"\n",
            b"deleted",
            b"null",
        ],
    )
    def test_anything_but_an_id_is_refused(self, value: bytes) -> None:
        assert TokenCodec().load(value, NOW) is None


class TestSigned:
    def test_round_trip_carries_the_deadline(self) -> None:
        codec = TokenCodec(SECRET)
        session_id = new_id()
        value = codec.dump(session_id, NOW + 60.5)
        assert value.split(".")[:2] == [session_id, str(int(NOW) + 61)]
        verified = codec.load(value.encode(), NOW)
        assert verified == Verified(session_id, False)

    def test_expired_values_are_refused(self) -> None:
        codec = TokenCodec(SECRET)
        value = codec.dump(new_id(), NOW + 60).encode()
        assert codec.load(value, NOW + 59) is not None
        assert codec.load(value, NOW + 60) is None

    def test_any_changed_byte_is_refused(self) -> None:
        codec = TokenCodec(SECRET)
        value = codec.dump(new_id(), NOW + 60).encode()
        for index in range(len(value)):
            for replacement in (b"A", b"0", b"."):
                tampered = value[:index] + replacement + value[index + 1 :]
                if tampered != value:
                    assert codec.load(tampered, NOW) is None, index

    def test_truncated_and_extended_values_are_refused(self) -> None:
        codec = TokenCodec(SECRET)
        value = codec.dump(new_id(), NOW + 60).encode()
        for end in range(len(value)):
            assert codec.load(value[:end], NOW) is None
        assert codec.load(value + b"A", NOW) is None
        assert codec.load(value + b".x", NOW) is None

    def test_a_bare_id_is_refused_when_signing(self) -> None:
        assert TokenCodec(SECRET).load(new_id().encode(), NOW) is None

    def test_unknown_secret_is_refused(self) -> None:
        value = TokenCodec("x" * 32).dump(new_id(), NOW + 60).encode()
        assert TokenCodec(SECRET).load(value, NOW) is None

    def test_rotation_accepts_old_secrets_and_asks_to_resign(self) -> None:
        session_id = new_id()
        old_value = TokenCodec(OLD).dump(session_id, NOW + 60).encode()
        codec = TokenCodec([SECRET, OLD])
        assert codec.load(old_value, NOW) == Verified(session_id, True)
        new_value = codec.dump(session_id, NOW + 60).encode()
        assert TokenCodec(SECRET).load(new_value, NOW) == Verified(session_id, False)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("short", "at least 32 bytes"),
        (b"x" * 31, "at least 32 bytes"),
        ([SECRET, "short"], "at least 32 bytes"),
        ([], "is empty"),
        ([SECRET, 42], "must be str or bytes"),
    ],
)
def test_bad_secrets_are_configuration_errors(secret: object, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        secret_list(secret)  # type: ignore[arg-type]


def test_the_error_never_repeats_the_secret() -> None:
    with pytest.raises(ConfigurationError) as error:
        TokenCodec("hunter2-but-too-short")
    assert "hunter2" not in str(error.value)
