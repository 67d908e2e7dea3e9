"""Reading our cookie out of raw ASGI headers, and writing ``Set-Cookie`` values.

The parser is deliberately small and strict (see DESIGN.md): it never unescapes, never
lower-cases, and never lets a look-alike name select a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

from .errors import ConfigurationError

MAX_COOKIE_HEADER = 64 * 1024
"""Bytes of ``cookie`` headers we read at all; past it the request has no session."""
MAX_LIFETIME = 400 * 24 * 60 * 60
"""The longest a cookie may live: RFC 6265bis has browsers cap ``Max-Age`` at 400 days."""

_WHITESPACE = b" \t"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 6265 cookie-name (an RFC 9110 token)
_PATH = re.compile(r"/[\x20-\x3a\x3c-\x7e]*")  # printable ASCII except ';'
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")

SameSite = Literal["lax", "strict", "none"]
Secure = bool | Literal["auto"]


def cookie_values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[bytes] | None:
    """Every value sent under exactly ``name``, in order, from all ``cookie`` headers.

    Returns ``None`` when the headers are larger than :data:`MAX_COOKIE_HEADER` (the caller
    treats that as no session). Pairs are split on ``;`` and their first ``=``; only space and
    tab are trimmed; names compare byte-exact; one pair of surrounding double quotes is removed.
    """
    return read_values(headers, value_pattern(name))


def value_pattern(name: bytes) -> re.Pattern[bytes]:
    """What :func:`read_values` looks for: a pair whose name, between a ``;`` and the first
    ``=``, is exactly ``name`` once space and tab are trimmed; the group is the rest of the
    pair. One regex pass costs half of splitting the pairs in Python. It is matched against
    the header with a ``;`` in front, so that the first pair needs no ``^`` alternative:
    a pattern that starts with a literal lets the regex engine skip ahead to each ``;``
    instead of trying every position, which more than pays for the concatenation."""
    return re.compile(rb";[ \t]*" + re.escape(name) + rb"[ \t]*=([^;]*)")


def read_values(
    headers: Iterable[tuple[bytes, bytes]], pattern: re.Pattern[bytes]
) -> list[bytes] | None:
    """:func:`cookie_values` with the pattern made once, by :func:`value_pattern`."""
    values: list[bytes] = []
    total = 0
    for key, raw in headers:
        if key != b"cookie":
            continue
        total += len(raw)
        if total > MAX_COOKIE_HEADER:
            return None
        for value in pattern.findall(b";" + raw):
            value = value.strip(_WHITESPACE)
            if len(value) >= 2 and value[0] == 0x22 and value[-1] == 0x22:  # "..."
                value = value[1:-1]
            values.append(value)
    return values


class CookieSpec:
    """A validated cookie configuration that renders ``Set-Cookie`` header values.

    Everything but the value and ``Max-Age`` is rendered once, here, not per response.
    ``secure="auto"`` adds ``Secure`` when the request came over https or wss.
    """

    __slots__ = (
        "_attributes",
        "domain",
        "httponly",
        "name",
        "partitioned",
        "path",
        "pattern",
        "samesite",
        "secure",
    )

    def __init__(
        self,
        name: str = "session",
        *,
        path: str = "/",
        domain: str | None = None,
        secure: Secure = "auto",
        httponly: bool = True,
        samesite: SameSite = "lax",
        partitioned: bool = False,
    ) -> None:
        self.name = name
        self.path = path
        self.domain = domain
        self.secure = secure
        self.httponly = httponly
        self.samesite = samesite.lower() if isinstance(samesite, str) else samesite
        self.partitioned = partitioned
        problems = _problems(self)
        if problems:
            raise ConfigurationError("invalid session cookie settings: " + "; ".join(problems))
        self.pattern = value_pattern(name.encode("ascii"))  # for read_values()
        # Attribute names are case-insensitive (RFC 6265); these are spelt as Starlette
        # writes them, so that a test written against Starlette's cookie still matches.
        attributes = f"; path={path}"
        if domain is not None:
            attributes += f"; domain={domain}"
        if httponly:
            attributes += "; httponly"
        attributes += "; samesite=" + self.samesite
        if partitioned:
            attributes += "; partitioned"
        # Indexed by "did this request arrive over https/wss".
        self._attributes = (
            attributes + ("; secure" if secure is True else ""),
            attributes + ("; secure" if secure in (True, "auto") else ""),
        )

    def set_cookie(self, value: str, max_age: int | None, secure_scheme: bool) -> bytes:
        """The ``Set-Cookie`` value that stores ``value``; ``max_age=None`` is a browser session."""
        attributes = self._attributes[secure_scheme]
        if max_age is None:
            return f"{self.name}={value}{attributes}".encode("latin-1")
        return f"{self.name}={value}; Max-Age={max_age}{attributes}".encode("latin-1")

    def delete_cookie(self, secure_scheme: bool) -> bytes:
        """The ``Set-Cookie`` value that deletes the cookie, with the attributes that created it."""
        expired = "; Max-Age=0; expires=Thu, 01 Jan 1970 00:00:00 GMT"
        return f"{self.name}={expired}{self._attributes[secure_scheme]}".encode("latin-1")


def _problems(spec: CookieSpec) -> list[str]:
    problems = []
    if not isinstance(spec.name, str) or not _TOKEN.fullmatch(spec.name):
        problems.append(
            f"cookie name {spec.name!r} must be a non-empty token "
            "(letters, digits and !#$%&'*+-.^_`|~ only)"
        )
    if not isinstance(spec.path, str) or not _PATH.fullmatch(spec.path):
        problems.append(f"path {spec.path!r} must start with '/' and hold no ';' or control bytes")
    if spec.domain is not None and (
        not isinstance(spec.domain, str) or not _DOMAIN.fullmatch(spec.domain)
    ):
        problems.append(f"domain {spec.domain!r} must be a host name such as 'example.com'")
    if spec.secure not in (True, False, "auto"):
        problems.append(f"secure must be True, False or 'auto', not {spec.secure!r}")
    if spec.samesite not in ("lax", "strict", "none"):
        problems.append(f"samesite must be 'lax', 'strict' or 'none', not {spec.samesite!r}")
    if spec.samesite == "none" and spec.secure is not True:
        problems.append("samesite='none' needs secure=True (browsers drop it otherwise)")
    if spec.partitioned and spec.secure is not True:
        problems.append("partitioned=True needs secure=True (browsers drop it otherwise)")
    name = spec.name if isinstance(spec.name, str) else ""
    if name.startswith("__Secure-") and spec.secure is not True:
        problems.append("a '__Secure-' cookie name needs secure=True")
    if name.startswith("__Host-") and (
        spec.secure is not True or spec.path != "/" or spec.domain is not None
    ):
        problems.append("a '__Host-' cookie name needs secure=True, path='/' and no domain")
    return problems
