"""Bad cookies are no session: never a 500, never a store lookup of what the client chose."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import pytest

from sesh.core import Session
from sesh.core.cookies import MAX_COOKIE_HEADER
from sesh.core.testing import Client, FakeClock
from sesh.core.tokens import store_key

from conftest import SECRET, MakeClient
from support.spy import SpyStore

pytestmark = pytest.mark.anyio


def show(session: Session) -> Any:
    return dict(session)


def write(session: Session) -> None:
    session["fresh"] = True


async def signed_client(make_client: MakeClient) -> tuple[Client, str]:
    client = make_client(lambda s: s.__setitem__("user", "ada"), secret_key=SECRET)
    await client.request()
    client.app = make_client(show, secret_key=SECRET).app
    return client, client.jar["session"]


def cookie(value: str | bytes) -> list[tuple[bytes, bytes]]:
    raw = value.encode("latin-1") if isinstance(value, str) else value
    return [(b"cookie", b"session=" + raw)]


def mangle(value: str) -> dict[str, bytes]:
    session_id, deadline, mac = value.split(".")
    flipped = chr(ord(mac[5]) ^ 1) if mac[5] != "A" else "B"
    return {
        "tampered mac": f"{session_id}.{deadline}.{mac[:5]}{flipped}{mac[6:]}".encode(),
        "tampered id": f"{session_id[::-1]}.{deadline}.{mac}".encode(),
        "extended deadline": f"{session_id}.{int(deadline) + 10**6}.{mac}".encode(),
        "truncated": value[:-1].encode(),
        "truncated to the id": session_id.encode(),
        "missing separator": f"{session_id}{deadline}.{mac}".encode(),
        "extra separator": f"{session_id}.{deadline}..{mac}".encode(),
        "oversized": (value * 50).encode(),
        "negative deadline": f"{session_id}.-{deadline}.{mac}".encode(),
        "absurd deadline": f"{session_id}.{'9' * 40}.{mac}".encode(),
        "NUL": f"{session_id}\x00.{deadline}.{mac}".encode(),
        "non-ASCII": f"{session_id}.{deadline}.{mac}".encode() + "é".encode(),
        "binary": bytes(range(256)),
        "empty": b"",
        "SQL": b"' OR '1'='1",
        "path": b"../../etc/passwd",
        "glob": b"*",
        "deleted marker": b"deleted",
        "null": b"null",
        "other secret": f"{session_id}.{deadline}.{'A' * 43}".encode(),
    }


CASES = list(mangle("A" * 43 + ".1900000000." + "B" * 43))


@pytest.mark.parametrize("case", CASES)
async def test_a_bad_signed_cookie_is_no_session_and_no_lookup(
    make_client: MakeClient, spy: SpyStore, case: str
) -> None:
    client, good = await signed_client(make_client)
    bad = mangle(good)[case]
    spy.calls.clear()
    response = await client.request(headers=cookie(bad))
    assert response.status == 200
    assert response.text == "{}"
    assert spy.calls == {}


async def test_an_expired_signed_cookie_is_refused_before_the_store(
    make_client: MakeClient, spy: SpyStore, clock: FakeClock
) -> None:
    client, _ = await signed_client(make_client)
    clock.advance(15 * 86400)
    spy.calls.clear()
    assert (await client.request()).text == "{}"
    assert spy.calls == {}


@pytest.mark.parametrize("case", CASES)
async def test_a_bad_cookie_is_never_stored_or_adopted(
    make_client: MakeClient, spy: SpyStore, case: str
) -> None:
    client, good = await signed_client(make_client)
    bad = mangle(good)[case]
    client.app = make_client(write, secret_key=SECRET).app
    spy.calls.clear()
    spy.keys.clear()
    response = await client.request(headers=cookie(bad))
    assert response.status == 200
    assert spy.calls == {"create": 1}
    issued = client.jar["session"].encode()
    assert issued not in (bad, good.encode())
    assert issued.split(b".")[0] not in bad


@pytest.mark.parametrize(
    "value",
    [b"A" * 42, b"A" * 44, b"A" * 42 + b"/", b"A" * 42 + b"\x00", b"*", b"", b"deleted"],
)
async def test_a_malformed_unsigned_cookie_reaches_no_store(
    make_client: MakeClient, spy: SpyStore, value: bytes
) -> None:
    response = await make_client(show).request(headers=cookie(value))
    assert response.text == "{}"
    assert spy.calls == {}


async def test_an_unknown_unsigned_id_is_looked_up_by_hash_and_never_reused(
    make_client: MakeClient, spy: SpyStore
) -> None:
    planted = "Z" * 43
    client = make_client(write)
    await client.request(headers=cookie(planted))
    assert spy.keys[0] == store_key(planted)
    assert await spy.inner.load(store_key(planted)) is None
    assert client.jar["session"] != planted


async def test_oversized_cookie_headers_are_no_session(
    make_client: MakeClient, spy: SpyStore
) -> None:
    client, good = await signed_client(make_client)
    spy.calls.clear()
    huge = b"pad=" + b"x" * MAX_COOKIE_HEADER
    headers = [(b"cookie", huge), (b"cookie", b"session=" + good.encode())]
    assert (await client.request(headers=headers)).text == "{}"
    assert spy.calls == {}


async def test_two_different_valid_cookies_are_no_session(
    make_client: MakeClient, spy: SpyStore, caplog: pytest.LogCaptureFixture
) -> None:
    client, first = await signed_client(make_client)
    _, second = await signed_client(make_client)
    spy.calls.clear()
    headers = [(b"cookie", f"session={first}; session={second}".encode())]
    with caplog.at_level(logging.INFO, "sesh"):
        assert (await client.request(headers=headers)).text == "{}"
    assert spy.calls == {}
    assert "two different valid values" in caplog.text
    assert first not in caplog.text
    assert second not in caplog.text


async def test_a_repeated_value_or_a_junk_duplicate_is_not_ambiguous(
    make_client: MakeClient,
) -> None:
    client, good = await signed_client(make_client)
    for line in (f"session={good}; session={good}", f"session=junk; session={good}"):
        headers = [(b"cookie", line.encode())]
        assert (await client.request(headers=headers)).text == "{'user': 'ada'}"


async def test_corrupt_stored_metadata_is_no_session(
    make_client: MakeClient, spy: SpyStore, caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = await signed_client(make_client)
    key = spy.keys[0]
    record = await spy.inner.load(key)
    assert record is not None
    for meta in (
        b"\x93\x01\x02",
        b"",
        bytes([9]) + record.meta[1:],  # an unknown format version
        record.meta[:-1],
    ):
        await spy.inner.delete(key)
        await spy.inner.create(key, msgspec.structs.replace(record, meta=meta), 60)
        with caplog.at_level(logging.WARNING, "sesh"):
            response = await client.request()
        assert response.status == 200
        assert response.text == "{}"
    assert caplog.text.count("stored session is corrupt") == 4
    assert key not in caplog.text


@pytest.mark.parametrize("read", ["whole", "one key", "in"])
async def test_a_corrupt_stored_value_reads_as_absent_and_is_dropped(
    make_client: MakeClient, spy: SpyStore, caplog: pytest.LogCaptureFixture, read: str
) -> None:
    client, _ = await signed_client(make_client)
    key = spy.keys[0]
    record = await spy.inner.load(key)
    assert record is not None
    data = {"user": b"\xc1", "ok": msgspec.msgpack.encode(1)}  # 0xc1 is never MessagePack
    await spy.inner.delete(key)
    await spy.inner.create(key, msgspec.structs.replace(record, data=data), 60)
    client.app = make_client(
        {
            "whole": lambda s: dict(s),
            "one key": lambda s: [s.get("user"), s["ok"], len(s)],
            "in": lambda s: ["user" in s, list(s)],
        }[read],
        secret_key=SECRET,
    ).app
    with caplog.at_level(logging.WARNING, "sesh"):
        response = await client.request()
    assert response.status == 200
    assert (
        response.text
        == {
            "whole": "{'ok': 1}",
            "one key": "[None, 1, 1]",
            "in": "[False, ['ok']]",
        }[read]
    )
    assert caplog.text.count("stored session value is corrupt") == 1
    stored = await spy.inner.load(key)
    assert stored is not None
    assert stored.data == {"ok": data["ok"]}  # healed at commit
