from __future__ import annotations

from typing import Any

import pytest

from sesh.core import ConfigurationError
from sesh.core.cookies import MAX_COOKIE_HEADER, CookieSpec, cookie_values


def values(*headers: bytes, name: bytes = b"session") -> list[bytes] | None:
    return cookie_values([(b"cookie", header) for header in headers], name)


class TestParser:
    def test_finds_our_value_among_others(self) -> None:
        assert values(b"a=1; session=abc; b=2") == [b"abc"]

    def test_reads_every_cookie_header(self) -> None:
        assert values(b"a=1", b"session=abc") == [b"abc"]
        assert values(b"session=one", b"session=two") == [b"one", b"two"]

    def test_ignores_other_headers(self) -> None:
        headers = [(b"x-cookie", b"session=evil"), (b"Cookie", b"session=evil")]
        assert cookie_values(headers, b"session") == []

    def test_trims_only_space_and_tab(self) -> None:
        assert values(b" \tsession = abc \t;x=1") == [b"abc"]
        assert values(b"session=\x0babc") == [b"\x0babc"]

    @pytest.mark.parametrize(
        "header",
        [
            b"Session=abc",
            b"SESSION=abc",
            b"xsession=abc",
            b"session2=abc",
            b"sess%69on=abc",
            b"\x00session=abc",
            b"$session=abc",
            b"=session=abc",
            b"session",
            b"abc",
        ],
    )
    def test_look_alike_names_never_match(self, header: bytes) -> None:
        assert values(header) == []

    def test_value_keeps_later_equals_signs(self) -> None:
        assert values(b"session=a=b=c") == [b"a=b=c"]

    def test_removes_one_pair_of_quotes_and_never_unescapes(self) -> None:
        assert values(b'session="abc"') == [b"abc"]
        assert values(b'session=""abc""') == [b'"abc"']
        assert values(b'session="a\\"b"') == [b'a\\"b']
        assert values(b'session="') == [b'"']
        assert values(b"session=a%20b") == [b"a%20b"]

    def test_empty_value_is_reported_as_empty(self) -> None:
        assert values(b"session=") == [b""]

    def test_oversized_headers_give_none(self) -> None:
        big = b"a=" + b"x" * MAX_COOKIE_HEADER
        assert values(big, b"session=abc") is None
        assert values(b"session=abc", big) is None

    def test_headers_as_lists_are_accepted(self) -> None:
        assert cookie_values([[b"cookie", b"session=abc"]], b"session") == [b"abc"]  # type: ignore[list-item]


class TestSetCookie:
    def test_secure_defaults(self) -> None:
        spec = CookieSpec()
        assert (
            spec.set_cookie("v", 60, False)
            == b"session=v; Max-Age=60; path=/; httponly; samesite=lax"
        )
        assert spec.set_cookie("v", None, False) == b"session=v; path=/; httponly; samesite=lax"

    def test_secure_auto_follows_the_scheme(self) -> None:
        spec = CookieSpec()
        assert spec.set_cookie("v", 1, True).endswith(b"; secure")
        assert b"Secure" not in spec.set_cookie("v", 1, False)

    def test_secure_true_and_false_ignore_the_scheme(self) -> None:
        assert CookieSpec(secure=True).set_cookie("v", 1, False).endswith(b"; secure")
        assert b"Secure" not in CookieSpec(secure=False).set_cookie("v", 1, True)

    def test_every_attribute(self) -> None:
        spec = CookieSpec(
            "__Host-id",
            secure=True,
            samesite="Strict",  # type: ignore[arg-type]  # case-insensitive at run time
            partitioned=True,
            httponly=False,
        )
        assert spec.set_cookie("v", 5, False) == (
            b"__Host-id=v; Max-Age=5; path=/; samesite=strict; partitioned; secure"
        )
        spec = CookieSpec("s", path="/app", domain="example.com")
        assert spec.set_cookie("v", None, False) == (
            b"s=v; path=/app; domain=example.com; httponly; samesite=lax"
        )

    def test_deletion_carries_the_same_attributes(self) -> None:
        spec = CookieSpec("s", path="/app", domain="example.com", samesite="strict")
        created = spec.set_cookie("v", 60, True).decode()
        deleted = spec.delete_cookie(True).decode()
        assert deleted.startswith("s=; Max-Age=0; expires=Thu, 01 Jan 1970 00:00:00 GMT; ")
        assert created.split("; ")[2:] == deleted.split("; ")[3:]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": ""}, "cookie name"),
        ({"name": "se ssion"}, "cookie name"),
        ({"name": "a;b"}, "cookie name"),
        ({"name": "caf\u00e9"}, "cookie name"),
        ({"path": "app"}, "path"),
        ({"path": "/a;b"}, "path"),
        ({"path": "/a\nb"}, "path"),
        ({"domain": "exa mple.com"}, "domain"),
        ({"domain": "example.com;x"}, "domain"),
        ({"domain": ""}, "domain"),
        ({"secure": "yes"}, "secure must be"),
        ({"samesite": "sometimes"}, "samesite must be"),
        ({"samesite": "none"}, "samesite='none' needs secure=True"),
        ({"samesite": "none", "secure": "auto"}, "samesite='none' needs secure=True"),
        ({"partitioned": True}, "partitioned=True needs secure=True"),
        ({"name": "__Secure-s"}, "'__Secure-' cookie name needs secure=True"),
        ({"name": "__Host-s"}, "'__Host-' cookie name needs"),
        ({"name": "__Host-s", "secure": True, "path": "/app"}, "'__Host-' cookie name needs"),
        ({"name": "__Host-s", "secure": True, "domain": "a.com"}, "'__Host-' cookie name needs"),
    ],
)
def test_invalid_settings_say_what_to_change(options: dict[str, Any], message: str) -> None:
    name = options.pop("name", "session")
    with pytest.raises(ConfigurationError, match="invalid session cookie settings") as error:
        CookieSpec(name, **options)
    assert message in str(error.value)


def test_valid_prefixed_names() -> None:
    assert CookieSpec("__Host-s", secure=True).name == "__Host-s"
    assert CookieSpec("__Secure-s", secure=True, domain="example.com").name == "__Secure-s"
    assert CookieSpec(samesite="none", secure=True).samesite == "none"
