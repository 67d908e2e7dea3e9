"""Hostile cookies: property-based tests of the parser and of every token decoder."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sesh.adapters.starlette import StarletteCookieStore
from sesh.core import SessionMiddleware
from sesh.core.cookies import MAX_COOKIE_HEADER, cookie_values
from sesh.core.signing import HmacSigner, TimestampHmacSigner
from sesh.core.testing import Client, responder
from sesh.core.tokens import TokenCodec, is_session_id
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore

from support.spy import SpyStore

SECRET = "a-hostile-input-test-secret-0123456789"
NAME = b"session"
WHITESPACE = st.sampled_from([b"", b" ", b"\t", b"  ", b" \t"])
# Names that must never select our value: odd leading bytes, other cases, percent-encoding,
# prefixes and suffixes, nameless pairs, cookie-attribute look-alikes.
LOOK_ALIKES = st.sampled_from(
    [
        b"Session",
        b"SESSION",
        b"sess%69on",
        b"%73ession",
        b"\x00session",
        b"\xa0session",
        b"session\x00",
        b"xsession",
        b"session2",
        b"_session",
        b"$session",
        b"$Version",
        b"$Path",
        b"",
        b"sessio",
        b"session;",
        b'"session"',
        b"session\xc2\xa0",
    ]
)
VALUE = st.binary(max_size=40).map(lambda v: v.replace(b";", b"").replace(b",", b""))
QUOTED = VALUE.map(lambda v: b'"' + v.replace(b'"', b'\\"') + b'"')  # backslashes stay as sent


@st.composite
def cookie_headers(draw: Any) -> tuple[list[tuple[bytes, bytes]], list[bytes]]:
    """Cookie headers made of pairs, and the values a correct parser selects from them."""
    headers, expected = [], []
    for _ in range(draw(st.integers(1, 3))):
        pairs = []
        for _ in range(draw(st.integers(0, 6))):
            ours = draw(st.booleans())
            name = NAME if ours else draw(LOOK_ALIKES)
            value = draw(st.one_of(VALUE, QUOTED))
            lead, gap, trail = draw(WHITESPACE), draw(WHITESPACE), draw(WHITESPACE)
            if ours:
                stripped = value.strip(b" \t")
                if len(stripped) >= 2 and stripped[:1] == b'"' == stripped[-1:]:
                    stripped = stripped[1:-1]
                expected.append(stripped)
            pairs.append(lead + name + gap + b"=" + value + trail)
        headers.append((b"cookie", b";".join(pairs)))
    return headers, expected


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(cookie_headers())
def test_only_values_byte_exactly_under_our_name_are_selected(
    case: tuple[list[tuple[bytes, bytes]], list[bytes]],
) -> None:
    headers, expected = case
    assert cookie_values(headers, NAME) == expected


@settings(max_examples=300)
@given(
    st.lists(
        st.tuples(st.sampled_from([b"cookie", b"Cookie", b"x"]), st.binary(max_size=300)),
        max_size=8,
    )
)
def test_arbitrary_headers_never_raise(headers: list[tuple[bytes, bytes]]) -> None:
    found = cookie_values(headers, NAME)
    assert found is None or all(isinstance(value, bytes) for value in found)


@contextmanager
def hang_guard(seconds: int) -> Iterator[None]:
    """Not a speed check: only "it finished" (a quadratic parser would not, at this size)."""

    def hung(signum: int, frame: Any) -> None:
        raise TimeoutError("the parser did not finish")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


REPEATS = MAX_COOKIE_HEADER // len(b"session=x;")


@pytest.mark.parametrize(
    ("pattern", "pairs_found"),
    [
        (b";", 0),
        (b"=", 0),
        (b"session", 0),
        (b" ", 0),
        (b'"', 0),
        (b"s;e;s;s=", 0),
        (b"\t;", 0),
        (b"session=", 1),
        (b"session=x;", REPEATS),
    ],
)
def test_adversarial_headers_at_the_size_limit_are_parsed_in_one_pass(
    pattern: bytes, pairs_found: int
) -> None:
    header = pattern * (MAX_COOKIE_HEADER // len(pattern))
    with hang_guard(10):
        found = cookie_values([(b"cookie", header)], NAME)
    assert found is not None
    assert len(found) == pairs_found


def decoders() -> dict[str, Any]:
    return {
        "unsigned id": lambda v: TokenCodec().load(v, 1.8e9),
        "signed id": lambda v: TokenCodec(SECRET).load(v, 1.8e9),
        "cookie store": CookieStore(SECRET).unseal,
        "encrypted cookie store": CookieStore(SECRET, encryption_key=SECRET).unseal,
        "starlette format": StarletteCookieStore(SECRET).unseal,
        "signer": HmacSigner([SECRET.encode()], salt=b"s").unsign,
        "timestamp signer": lambda v: TimestampHmacSigner(
            [SECRET.encode()], salt=b"s"
        ).unsign_within(v, 60, 1.8e9),
    }


TOKENS = st.one_of(
    st.binary(max_size=200),
    st.text(max_size=120).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.sampled_from(
        [
            b"../../etc/passwd",
            b"*",
            b"?",
            b"[a-z]*",
            b"\x00",
            b"' OR '1'='1",
            b"1; DROP TABLE s",
            b"deleted",
            b"null",
            b"",
            b'""',
            b"A" * 43 + b"\x00",
            b"A" * 42 + b"/",
            b"e30=",
            b"A" * 43 + b".99999999999999.B" + b"B" * 42,
            b"A" * 43 + b".-1." + b"B" * 43,
        ]
    ),
)


@pytest.mark.parametrize("decoder", list(decoders()))
@settings(max_examples=300)
@given(value=TOKENS)
def test_no_decoder_raises_on_anything(decoder: str, value: bytes) -> None:
    result = decoders()[decoder](value)
    if decoder == "unsigned id":  # the only decoder that accepts what it did not issue
        assert (result is None) != is_session_id(value.decode("latin-1"))
    else:
        assert result is None


def as_parsed(value: bytes) -> bytes:
    """The value the parser hands on: space and tab trimmed, one pair of quotes removed."""
    value = value.strip(b" \t")
    return value[1:-1] if len(value) >= 2 and value[:1] == b'"' == value[-1:] else value


def hostile_values() -> list[bytes]:
    """Every shape the issue lists, then noise: lengths around an id's, odd alphabets."""
    rng = random.Random(5)
    fixed = [
        b"../../etc/passwd",
        b"*",
        b"%2A",
        b"\x00" * 43,
        b"' OR 1=1 --",
        b"deleted",
        b"null",
        b"",
        b"A" * 42,
        b"A" * 44,
        b"A" * 42 + b"!",
        b"a" * 43,
        b"Z" * 43,
    ]
    noise = [
        bytes(
            rng.choice(b"AZaz09_-./*\x00 '\"%+=") for _ in range(rng.choice([0, 1, 42, 43, 44, 99]))
        )
        for _ in range(500)
    ]
    return fixed + noise


@pytest.mark.anyio
@pytest.mark.parametrize("signed", [True, False], ids=["signed ids", "unsigned ids"])
async def test_no_token_we_did_not_issue_reaches_a_store(signed: bool) -> None:
    spy = SpyStore(MemoryStore())
    secret = {"secret_key": SECRET} if signed else {}
    client = Client(SessionMiddleware(responder(dict), store=spy, **secret))  # type: ignore[arg-type]
    values = hostile_values()
    for value in values:
        await client.request(headers=[(b"cookie", b"session=" + value)])
    # Unsigned, an id-shaped value is looked up (by its hash): it could be one we issued.
    shaped = sum(is_session_id(as_parsed(v).decode("latin-1")) for v in values)
    assert spy.calls["load"] == (0 if signed else shaped)
    assert shaped > 0 or signed
    assert spy.writes == 0
