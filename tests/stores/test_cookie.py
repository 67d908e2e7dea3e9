from __future__ import annotations

import hashlib
import logging
import os
import zlib
from base64 import b64encode
from binascii import a2b_base64
from typing import Any

import msgspec
import pytest

from sesh.core import ConfigurationError, Session, SessionDataError, SessionMiddleware
from sesh.core.engine import MAX_SET_COOKIE
from sesh.core.errors import SessionTooLarge
from sesh.core.signing import KeyedTags
from sesh.core.store import Meta, Record, Unsealed, encode_meta
from sesh.core.testing import Client, FakeClock, SessionContract, cookie_attributes, responder
from sesh.core.tokens import TokenCodec, new_id
from sesh.stores.cookie import CookieStore

pytestmark = pytest.mark.anyio

KEY = "cookie-store-signing-secret-0123456789-abcdef"
OLD_KEY = "an-older-cookie-store-secret-0123456789-xyz"
BOX = "cookie-store-encryption-key-0123456789-abcdef"


class TestCookieSessions(SessionContract):
    @pytest.fixture
    def session_store(self) -> CookieStore:
        return CookieStore(KEY)


class TestEncryptedCookieSessions(SessionContract):
    @pytest.fixture
    def session_store(self) -> CookieStore:
        return CookieStore(KEY, encryption_key=BOX)


def client_for(store: CookieStore, clock: FakeClock, action: Any = None, **options: Any) -> Client:
    return Client(SessionMiddleware(responder(action), store=store, clock=clock, **options))


async def stored(store: CookieStore, clock: FakeClock, **values: Any) -> Client:
    client = client_for(store, clock, lambda s: s.update(values))
    await client.request()
    client.app = client_for(store, clock, lambda s: dict(s)).app
    return client


def signed(
    body: bytes, key: str = KEY, salt: str = "sesh.cookie-store", cookie: str = "session"
) -> bytes:
    """A value tagged as CookieStore tags, around any body we like; written from the
    documented construction (the purpose is the salt, a NUL, the cookie's name), not with
    sesh's code."""
    secret = hashlib.blake2b(key.encode()).digest()
    purpose = salt.encode() + b"\x00" + cookie.encode()
    tag_key = hashlib.blake2b(purpose, key=secret, person=b"sesh.tag.key").digest()
    encoded = b64encode(body)
    tag = hashlib.blake2b(encoded, key=tag_key, digest_size=16).hexdigest().encode()
    return encoded + b"." + tag


def deflate(data: bytes) -> bytes:
    """Raw deflate, as CookieStore compresses."""
    deflater = zlib.compressobj(9, zlib.DEFLATED, -15)
    return deflater.compress(data) + deflater.flush()


def payload(data: dict[str, bytes], clock: FakeClock) -> bytes:
    """A CookieStore body: the id, the metadata and each encoded value, all as bin."""
    meta = encode_meta(Meta(clock.now, clock.now + 3600, clock.now, False))
    return msgspec.msgpack.encode((new_id(), meta, data))


async def test_the_session_travels_in_the_cookie_and_nowhere_else(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, user="ada")
    other_process = client_for(CookieStore(KEY), clock, lambda s: dict(s))
    client.app = other_process.app
    assert (await client.request()).text == "{'user': 'ada'}"


async def test_a_change_rewrites_the_whole_cookie(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, a=1, b=2)
    client.app = client_for(store, clock, lambda s: s.__setitem__("b", 3)).app
    response = await client.request()
    assert len(response.set_cookies) == 1
    client.app = client_for(store, clock, lambda s: dict(s)).app
    assert (await client.request()).text == "{'a': 1, 'b': 3}"


async def test_emptying_the_session_deletes_the_cookie(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, a=1)
    client.app = client_for(store, clock, lambda s: s.clear()).app
    response = await client.request()
    assert cookie_attributes(response.set_cookies[0])["max-age"] == "0"


CASES: dict[str, Any] = {
    "missing separator": lambda v: v.replace(b".", b""),
    "extra separator": lambda v: v.replace(b".", b".."),
    "signature only": lambda v: v.split(b".")[1],
    "body only": lambda v: v.split(b".")[0],
    "truncated": lambda v: v[:-1],
    "empty": lambda v: b"",
    "unknown secret": lambda v: signed(b"\x93", key="x" * 40),
    "same secret, other purpose": lambda v: signed(v, salt="other"),
    "a signed session id": lambda v: TokenCodec(KEY).dump(new_id(), 2e9).encode(),
    "legacy unsigned payload": lambda v: v.split(b".")[0],
    "undecodable body": lambda v: signed(b"\x93\xc1\xc1\xc1"),
    "unknown format byte": lambda v: signed(b"\x07" + b"\x90"),
    "an earlier build's plain format byte": lambda v: signed(
        b"\x00" + msgspec.msgpack.encode(("id", b"m", {}))
    ),
    "bad base64": lambda v: signed(b"").replace(b".", b"!!!."),
    "corrupt deflate": lambda v: signed(b"\x01not deflate"),
    "deflate bomb": lambda v: signed(b"\x01" + deflate(b"\x00" * 10_000_000)),
    "non-MessagePack meta": lambda v: signed(
        msgspec.msgpack.encode(("id", msgspec.Raw(b"\xa1x"), {}))
    ),
    "wrong shape": lambda v: signed(msgspec.msgpack.encode([1, 2, 3])),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_bad_cookies_are_no_session(clock: FakeClock, case: str) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, a=1)
    bad = CASES[case](client.jar["session"].encode())
    response = await client.request(headers=[(b"cookie", b"session=" + bad)])
    assert response.status == 200
    assert response.text == "{}"


async def test_every_flipped_byte_is_no_session(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, a=1)
    good = client.jar["session"].encode()
    engine = client.app.engine  # type: ignore[attr-defined]
    for index in range(len(good)):
        flipped = good[:index] + bytes((good[index] ^ 1,)) + good[index + 1 :]
        session = engine.start({"type": "http", "headers": [(b"cookie", b"session=" + flipped)]})
        assert session.get("a") is None, index


async def test_valid_signature_over_deeply_nested_data_is_no_session(clock: FakeClock) -> None:
    deep = b"\x91" * 100_000 + b"\x00"  # a list in a list in a list ...
    bad = signed(payload({"a": deep}, clock))
    client = client_for(CookieStore(KEY), clock, lambda s: dict(s))
    response = await client.request(headers=[(b"cookie", b"session=" + bad)])
    assert response.text == "{}"


@pytest.mark.parametrize("compressed", [False, True])
async def test_valid_signature_over_a_good_payload_is_accepted(
    clock: FakeClock, compressed: bool
) -> None:
    body = payload({"a": msgspec.msgpack.encode(1)}, clock)
    good = signed(b"\x01" + deflate(body) if compressed else body)
    client = client_for(CookieStore(KEY), clock, lambda s: dict(s))
    assert (await client.request(headers=[(b"cookie", b"session=" + good)])).text == "{'a': 1}"


async def test_expiry_is_inside_the_signed_payload(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, a=1)
    clock.advance(14 * 86400)  # the browser would still send it if told to: we refuse it
    assert (await client.request()).text == "{}"


async def test_leeway_tolerates_a_slow_clock_on_another_server(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = client_for(store, clock, lambda s: s.update(a=1), max_age=60, leeway=5)
    await client.request()
    client.app = client_for(store, clock, lambda s: dict(s), max_age=60, leeway=5).app
    clock.advance(63)
    assert (await client.request()).text == "{'a': 1}"
    clock.advance(3)
    assert (await client.request()).text == "{}"


async def test_idle_timeout_in_a_cookie(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    options = {"max_age": 86400, "idle_timeout": 600}
    client = client_for(store, clock, lambda s: s.update(a=1), **options)
    await client.request()
    client.app = client_for(store, clock, lambda s: dict(s), **options).app
    for _ in range(5):
        clock.advance(590)
        assert (await client.request()).text == "{'a': 1}"
    clock.advance(601)
    assert (await client.request()).text == "{}"


async def test_secret_rotation_re_signs_old_cookies(clock: FakeClock) -> None:
    client = await stored(CookieStore(OLD_KEY), clock, a=1)
    old_value = client.jar["session"]
    rotated = CookieStore([KEY, OLD_KEY])
    client.app = client_for(rotated, clock, lambda s: dict(s)).app
    response = await client.request()
    assert response.text == "{'a': 1}"
    assert len(response.set_cookies) == 1
    assert client.jar["session"] != old_value
    client.app = client_for(CookieStore(KEY), clock, lambda s: dict(s)).app
    assert (await client.request()).text == "{'a': 1}"


async def test_encryption_hides_the_data_and_rotates(clock: FakeClock) -> None:
    old = CookieStore(KEY, encryption_key=OLD_KEY)
    client = await stored(old, clock, secret_word="swordfish")
    assert b"swordfish" not in client.jar["session"].encode()
    rotated = CookieStore(KEY, encryption_key=[BOX, OLD_KEY])
    client.app = client_for(rotated, clock, lambda s: dict(s)).app
    response = await client.request()
    assert response.text == "{'secret_word': 'swordfish'}"
    assert len(response.set_cookies) == 1  # re-encrypted under the new key
    client.app = client_for(CookieStore(KEY, encryption_key=BOX), clock, lambda s: dict(s)).app
    assert (await client.request()).text == "{'secret_word': 'swordfish'}"


async def test_with_encryption_on_a_plain_cookie_is_refused(clock: FakeClock) -> None:
    client = await stored(CookieStore(KEY), clock, a=1)
    client.app = client_for(CookieStore(KEY, encryption_key=BOX), clock, lambda s: dict(s)).app
    assert (await client.request()).text == "{}"


async def test_an_oversized_session_raises_and_sends_nothing(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, a=1)
    before = client.jar["session"]
    noise = os.urandom(3000)  # random: compression cannot save it
    client.app = client_for(store, clock, lambda s: s.__setitem__("big", noise)).app
    with pytest.raises(SessionTooLarge) as error:
        await client.request()
    assert error.value.limit == MAX_SET_COOKIE == 4096
    assert error.value.size > 4096
    assert f"{error.value.size} bytes, over the 4096" in str(error.value)
    assert client.jar["session"] == before
    client.app = client_for(store, clock, lambda s: dict(s)).app
    assert (await client.request()).text == "{'a': 1}"


async def test_the_limit_counts_the_whole_header(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    refused, sent = [], []
    for length in range(2800, 3000):
        noise = hashlib.shake_256(str(length).encode()).digest(length)  # incompressible
        client = client_for(store, clock, lambda s, n=noise: s.__setitem__("n", n))
        try:
            response = await client.request()
        except SessionTooLarge as error:
            refused.append(error.size)
            continue
        [header] = response.set_cookies
        sent.append(len(f"set-cookie: {header}") - len("set-cookie: "))
    assert refused  # the sizes crossed the limit...
    assert sent  # ...from below
    assert min(refused) > 4096 >= max(sent) > 4080  # the whole header counts, to the byte


async def test_compression_lets_repetitive_sessions_fit(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, text="spam " * 2000)
    assert len(client.jar["session"]) < 1000
    assert (await client.request()).text == repr({"text": "spam " * 2000})


async def test_a_cookie_is_compressed_only_when_it_would_not_fit_otherwise(
    clock: FakeClock,
) -> None:
    store = CookieStore(KEY)
    plain, packed = [], []  # lengths of the header as it is, and as it would have been
    for length in range(2800, 3000, 4):  # across the limit, were nothing compressed
        client = client_for(store, clock, lambda s, n=length: s.__setitem__("x", "x" * n))
        [header] = (await client.request()).set_cookies
        value = header.split(";")[0].partition("=")[2]
        body = a2b_base64(value.rpartition(".")[0])
        if body[0] == 0x93:  # MessagePack as it is
            plain.append(len(header))
        else:
            assert body[0] == 0x01  # raw deflate
            as_it_is = len(zlib.decompress(body[1:], -15))
            plain_value = (as_it_is + 2) // 3 * 4 + 1 + KeyedTags.LENGTH  # base64 "." tag
            packed.append(len(header) - len(value) + plain_value)
            assert len(header) < 1000
    assert plain  # the sweep starts below the limit...
    assert packed  # ...and ends past it
    assert max(plain) <= MAX_SET_COOKIE < min(packed)


async def test_an_unstorable_value_names_the_key_and_keeps_the_cookie(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, a=1)
    client.app = client_for(store, clock, lambda s: s.__setitem__("fh", object())).app
    with pytest.raises(SessionDataError, match=r"session\['fh'\] holds a object"):
        await client.request()
    client.app = client_for(store, clock, lambda s: dict(s)).app
    assert (await client.request()).text == "{'a': 1}"


async def test_a_copied_cookie_stays_valid_until_it_expires(clock: FakeClock) -> None:
    """The documented limit of a client-side store: logout cannot reach other copies."""
    store = CookieStore(KEY)
    client = await stored(store, clock, user="ada")
    copied = client.jar["session"]
    client.app = client_for(store, clock, lambda s: s.invalidate()).app
    await client.request()
    client.app = client_for(store, clock, lambda s: dict(s)).app
    replay = await client.request(headers=[(b"cookie", f"session={copied}".encode())])
    assert replay.text == "{'user': 'ada'}"


async def test_late_changes_are_dropped_with_a_warning(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200})
        scope["session"]["late"] = True
        await send({"type": "http.response.body", "body": b""})

    store = CookieStore(KEY)
    client = await stored(store, clock, a=1)
    client.app = SessionMiddleware(app, store=store, clock=clock)
    with caplog.at_level(logging.WARNING, "sesh"):
        response = await client.request()
    assert response.set_cookies == []
    assert "cookie-store session travels in the response headers" in caplog.text


def test_short_secrets_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        CookieStore("short")
    with pytest.raises(ConfigurationError, match="encryption_key must be at least 32 bytes"):
        CookieStore(KEY, encryption_key="short")


def test_a_record_round_trips_through_seal_and_unseal() -> None:
    store = CookieStore(KEY)
    record = Record({"a": b"\x01", "b": b"\xa1x"}, encode_meta(Meta(1.0, 2.0, 1.0, False)))
    unsealed = store.unseal(store.seal("id-1", record).encode())
    assert unsealed == Unsealed("id-1", record, False)


async def test_session_objects_see_cookie_sessions_as_stored(clock: FakeClock) -> None:
    store = CookieStore(KEY)
    client = await stored(store, clock, a=1)

    def check(session: Session) -> Any:
        return (session.is_new, len(session.id))

    client.app = client_for(store, clock, check).app
    assert (await client.request()).text == "(False, 43)"


@pytest.mark.parametrize(
    "deadline", [-1.0, -1e300, 0.0, float("nan"), float("-inf"), float("inf")], ids=repr
)
async def test_a_signed_payload_with_an_absurd_deadline_is_no_session(
    clock: FakeClock, deadline: float
) -> None:
    meta = msgspec.msgpack.encode((1, clock.now, deadline, clock.now, False))
    body = msgspec.msgpack.encode((new_id(), msgspec.Raw(meta), {"a": b"\x01"}))
    client = client_for(CookieStore(KEY), clock, lambda s: dict(s))
    response = await client.request(headers=[(b"cookie", b"session=" + signed(body))])
    assert response.text == "{}"


def test_autoload_off_with_a_cookie_store_is_refused_not_ignored() -> None:
    with pytest.raises(ConfigurationError, match="autoload=False"):
        SessionMiddleware(responder(None), store=CookieStore(KEY), autoload=False)
