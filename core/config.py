"""The one validated configuration, shared by the middleware, every adapter and workers.

A :class:`SessionConfig` is checked where it is built, so a mistake fails at import time
with a message that says what to change, never at the first request. Build it once and
hand the same object to the middleware and to ``open_session`` in a worker, so that both
agree on lifetimes; or read it from the environment with :meth:`SessionConfig.from_env`.
"""

from __future__ import annotations

import math
import os
import re
import time
from collections.abc import Collection, Mapping
from datetime import timedelta
from typing import Any, Literal, TypedDict

import msgspec

from .cookies import MAX_LIFETIME, CookieSpec, SameSite, Secure
from .errors import ConfigurationError
from .tokens import SecretKeys, TokenCodec, secret_list
from .types import ASGIApp, Clock, Receive, Scope, Send

DEFAULT_MAX_AGE = 14 * 24 * 60 * 60  # two weeks, as Starlette's middleware
OnStoreError = Literal["fail", "continue"]
ENV_PREFIX = "SESH_"


OUTAGE_CLOSE = 1013
"""The websocket close code of an outage: try again later."""
OUTAGE_REASON = "session store unavailable"


class OutageAnswer(msgspec.Struct, frozen=True):
    """What sesh answers to an http request in the app's place when the store fails and
    ``on_store_error`` is ``"fail"``: ``status`` and ``body``, with ``Retry-After`` when
    ``retry_after`` is set. It is an ASGI app; any other ASGI app may answer instead
    (``outage_answer=JSONResponse(...)``). A websocket is closed with 1013 (try again
    later) whatever the answer."""

    status: int = 503
    body: bytes = b"Service Unavailable: session store"
    content_type: str = "text/plain; charset=utf-8"
    retry_after: int | None = 1

    def __post_init__(self) -> None:
        # msgspec checks no types when a struct is built in Python: checked here, so that a
        # mistake fails at start-up, not in the middle of an outage.
        status, retry = self.status, self.retry_after
        if type(status) is not int or not 400 <= status <= 599:
            raise ConfigurationError(f"an outage answer's status is 4xx or 5xx: {status!r}")
        if not isinstance(self.body, bytes):
            raise ConfigurationError(f"an outage answer's body is bytes: {self.body!r}")
        if not isinstance(self.content_type, str):
            raise ConfigurationError(f"content_type is a str: {self.content_type!r}")
        if retry is not None and (type(retry) is not int or retry < 0):
            raise ConfigurationError("retry_after is a whole number of seconds >= 0, or None")

    def headers(self) -> list[tuple[bytes, bytes]]:
        headers = [(b"content-type", self.content_type.encode("latin-1"))]
        if self.retry_after is not None:
            headers.append((b"retry-after", str(self.retry_after).encode()))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status, "headers": self.headers()}
        )
        await send({"type": "http.response.body", "body": self.body})


class EngineOptions(TypedDict, total=False):
    """The options of :class:`SessionConfig` that are not about the cookie (the framework
    drop-ins take those in their upstream's own words)."""

    idle_timeout: float | timedelta | None
    touch_interval: float | timedelta | None
    leeway: float | timedelta
    on_store_error: OnStoreError
    outage_answer: ASGIApp
    allowed_origins: Collection[str]
    websocket_cookies: bool | Literal["auto"]
    trust_forwarded_proto: bool
    autoload: bool
    scope_key: str
    user_key: str
    skip_paths: Collection[str]
    clock: Clock


class SessionOptions(EngineOptions, total=False):
    """Every keyword option of :class:`SessionConfig`, for ``**options`` that type checkers
    can follow (PEP 692), so that ``Middleware(SessionMiddleware, ...)`` type-checks."""

    secret_key: SecretKeys | None
    cookie_name: str
    max_age: float | timedelta
    browser_session: bool
    path: str
    domain: str | None
    secure: Secure
    httponly: bool
    samesite: SameSite
    partitioned: bool


_OPTIONS = (
    "secret_key",
    "cookie_name",
    "max_age",
    "idle_timeout",
    "touch_interval",
    "browser_session",
    "leeway",
    "on_store_error",
    "outage_answer",
    "allowed_origins",
    "websocket_cookies",
    "trust_forwarded_proto",
    "path",
    "domain",
    "secure",
    "httponly",
    "samesite",
    "partitioned",
    "autoload",
    "scope_key",
    "user_key",
    "skip_paths",
    "clock",
)


class SessionConfig:
    """Every option of a sesh session, validated here (see the README's Options table).

    Immutable. Two configs are equal when every option is, so a middleware stacked twice
    with the same settings is harmless and one with other settings is refused.
    """

    secret_key: tuple[bytes, ...] | None
    """The secrets, newest first: the first signs, all verify."""
    cookie_name: str
    max_age: float
    idle_timeout: float | None
    touch_interval: float
    browser_session: bool
    leeway: float
    on_store_error: OnStoreError
    outage_answer: ASGIApp
    """What the client gets when the store fails under ``"fail"``."""
    allowed_origins: tuple[str, ...]
    """Origins besides the request's own host whose pages may open a websocket with the
    session (``"*"``: any)."""
    websocket_cookies: bool | Literal["auto"]
    """Whether the server sends a cookie with ``websocket.accept`` (``"auto"``: as its ASGI
    spec_version says); without, websockets start no new session."""
    trust_forwarded_proto: bool
    """Whether ``secure="auto"`` believes a proxy's ``X-Forwarded-Proto``/``Forwarded``."""
    path: str
    domain: str | None
    secure: Secure
    httponly: bool
    samesite: SameSite
    partitioned: bool
    autoload: bool
    scope_key: str
    user_key: str
    """The session key that holds the logged-in user's id: written by
    :func:`sesh.core.identity.login`, watched at every commit (a change without ``login()``
    still rotates the id) and indexed per user. Django's, by default."""
    skip_paths: tuple[str, ...]
    """Path prefixes served with no session at all (static files, health checks): no
    store call, no cookie, nothing in the scope. A prefix matches whole segments."""
    _skip_folders: tuple[str, ...]
    """Each of ``skip_paths`` with a trailing ``/``: one ``startswith`` tests them all."""
    clock: Clock
    cookie: CookieSpec
    """The cookie's settings, rendered once."""
    tokens: TokenCodec
    """Turns ids into cookie values and back (signed when there are secrets)."""

    __slots__ = (*_OPTIONS, "cookie", "tokens", "_skip_folders")

    def __init__(
        self,
        *,
        secret_key: SecretKeys | None = None,
        cookie_name: str = "session",
        max_age: float | timedelta = DEFAULT_MAX_AGE,
        idle_timeout: float | timedelta | None = None,
        touch_interval: float | timedelta | None = None,
        browser_session: bool = False,
        leeway: float | timedelta = 0,
        on_store_error: OnStoreError = "fail",
        outage_answer: ASGIApp | None = None,
        allowed_origins: Collection[str] = (),
        websocket_cookies: bool | Literal["auto"] = "auto",
        trust_forwarded_proto: bool = False,
        path: str = "/",
        domain: str | None = None,
        secure: Secure = "auto",
        httponly: bool = True,
        samesite: SameSite = "lax",
        partitioned: bool = False,
        autoload: bool = True,
        scope_key: str = "session",
        user_key: str = "_auth_user_id",
        skip_paths: Collection[str] = (),
        clock: Clock = time.time,
    ) -> None:
        def settle(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        # Normalised, so that equal secrets compare equal however they were given.
        settle("secret_key", None if secret_key is None else tuple(secret_list(secret_key)))
        cookie = CookieSpec(
            cookie_name,
            path=path,
            domain=domain,
            secure=secure,
            httponly=httponly,
            samesite=samesite,
            partitioned=partitioned,
        )
        settle("cookie", cookie)
        settle("tokens", TokenCodec(secret_key, cookie.name))  # the name is in its key
        for name in ("cookie_name", "path", "domain", "secure", "samesite"):
            settle(name, getattr(cookie, name if name != "cookie_name" else "name"))
        # 0 is Starlette's "the browser keeps nothing": each session ends with the response
        # that made it, nothing is stored, and a changed session's cookie is deleted.
        lifetime = _seconds("max_age", max_age, zero_ok=True)
        if lifetime > MAX_LIFETIME:
            raise ConfigurationError(
                f"max_age ({lifetime:g}s) is longer than the 400 days a browser keeps a "
                "cookie (RFC 6265bis): lower it"
            )
        settle("max_age", lifetime)
        idle = None if idle_timeout is None else _seconds("idle_timeout", idle_timeout)
        if idle is not None and idle > lifetime:
            raise ConfigurationError(
                f"idle_timeout ({idle:g}s) is longer than max_age ({lifetime:g}s), so it could "
                "never apply: lower it or raise max_age"
            )
        settle("idle_timeout", idle)
        if touch_interval is not None and idle is None:
            raise ConfigurationError("touch_interval only applies with an idle_timeout: set one")
        interval = (
            (idle or 0) / 10
            if touch_interval is None
            else _seconds("touch_interval", touch_interval)
        )
        if idle is not None and interval >= idle:
            raise ConfigurationError(
                "touch_interval must be shorter than idle_timeout, or sessions would expire "
                "while in use"
            )
        settle("touch_interval", interval)
        skew = 0.0 if leeway == 0 else _seconds("leeway", leeway)
        if skew > 300:
            raise ConfigurationError("leeway is for clock skew between servers: keep it <= 300s")
        settle("leeway", skew)
        if on_store_error not in ("fail", "continue"):
            raise ConfigurationError(
                "on_store_error must be 'fail' (answer 503) or 'continue' (an empty, read-only "
                f"session), not {on_store_error!r}"
            )
        settle("on_store_error", on_store_error)
        if outage_answer is not None and not callable(outage_answer):
            raise ConfigurationError(
                "outage_answer must be an ASGI app, such as sesh.core.OutageAnswer(status=503, "
                f"body=b'...'), not {type(outage_answer).__name__}"
            )
        settle("outage_answer", OutageAnswer() if outage_answer is None else outage_answer)
        settle("allowed_origins", _origins(allowed_origins))
        if websocket_cookies not in (True, False, "auto"):
            raise ConfigurationError(
                f"websocket_cookies must be True, False or 'auto', not {websocket_cookies!r}"
            )
        settle("websocket_cookies", websocket_cookies)
        flags = {
            "browser_session": browser_session,
            "httponly": httponly,
            "partitioned": partitioned,
            "autoload": autoload,
            "trust_forwarded_proto": trust_forwarded_proto,
        }
        for name, flag in flags.items():
            if not isinstance(flag, bool):
                raise ConfigurationError(f"{name} must be True or False: {flag!r}")
            settle(name, flag)
        if trust_forwarded_proto and secure != "auto":
            raise ConfigurationError(
                f"trust_forwarded_proto only decides secure='auto', and secure is {secure!r}: "
                "drop one of them"
            )
        if not isinstance(scope_key, str) or not scope_key:
            raise ConfigurationError("scope_key must be a non-empty str")
        settle("scope_key", scope_key)
        if not isinstance(user_key, str) or not user_key:
            raise ConfigurationError(f"user_key must be a non-empty str: {user_key!r}")
        settle("user_key", user_key)
        settle("skip_paths", _skip_paths(skip_paths))
        settle("_skip_folders", tuple(prefix + "/" for prefix in self.skip_paths))
        if not callable(clock):
            raise ConfigurationError("clock must be a callable returning epoch seconds")
        settle("clock", clock)

    def origin_allowed(self, origin: bytes, host: bytes) -> bool:
        """Whether a page of ``origin`` (a websocket handshake's ``Origin``) may use the
        session of a request sent to ``host``: the request's own host, or an allowed one."""
        if "*" in self.allowed_origins:
            return True
        text = origin.decode("latin-1").lower()
        _, separator, netloc = text.partition("://")
        if separator and netloc == host.decode("latin-1").lower():
            return True
        return text in self.allowed_origins

    def skips(self, scope: Scope) -> bool:
        """Whether this request's path is one of ``skip_paths``: ``/static`` skips
        ``/static`` and ``/static/app.css``, never ``/statics``."""
        path: str = scope.get("path", "")
        return path in self.skip_paths or path.startswith(self._skip_folders)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a SessionConfig cannot change: build another")

    def _options(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in _OPTIONS)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionConfig):
            return NotImplemented
        return self._options() == other._options()

    def __hash__(self) -> int:
        return hash(self._options())

    def __repr__(self) -> str:
        # Never the secrets: reprs end up in logs and tracebacks.
        shown = ", ".join(
            f"{name}={'<hidden>' if name == 'secret_key' else getattr(self, name)!r}"
            for name in _OPTIONS
            if name not in ("clock", "outage_answer")
        )
        return f"SessionConfig({shown})"

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = ENV_PREFIX, **options: Any
    ) -> SessionConfig:
        """A config from ``SESH_*`` variables (``environ`` defaults to ``os.environ``).

        Each option is read from its upper-cased name after ``prefix``: ``SESH_SECRET_KEY``,
        ``SESH_MAX_AGE`` (seconds), ``SESH_SECURE`` (``true``, ``false`` or ``auto``), ...;
        ``SESH_SECRET_KEY_FALLBACKS`` holds older secrets, comma-separated, that still
        verify. Keyword ``options`` win over the environment. A variable under the prefix
        that names no option is refused, so a typo never goes unnoticed; only names ending
        in ``_URL`` (a store's address) are left to others.
        """
        environ = os.environ if environ is None else environ
        known = set(_OPTIONS) - {"clock", "outage_answer"}
        found: dict[str, Any] = {}
        fallbacks: list[str] = []
        for variable, text in environ.items():
            if not variable.startswith(prefix) or variable.endswith("_URL"):
                continue
            name = variable[len(prefix) :].lower()
            if name == "secret_key_fallbacks":
                fallbacks = [item.strip() for item in text.split(",") if item.strip()]
            elif name in known:
                found[name] = _parse(variable, name, text)
            else:
                raise ConfigurationError(
                    f"{variable} names no sesh option; the options are: "
                    + ", ".join(prefix + option.upper() for option in sorted(known))
                )
        if fallbacks:
            if "secret_key" not in found:
                raise ConfigurationError(
                    f"{prefix}SECRET_KEY_FALLBACKS is set without {prefix}SECRET_KEY"
                )
            found["secret_key"] = [found["secret_key"], *fallbacks]
        return cls(**{**found, **options})


_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s?#]+")


def _origins(allowed: Collection[str]) -> tuple[str, ...]:
    if isinstance(allowed, str):
        allowed = [allowed]
    origins = []
    for origin in allowed:
        text = origin.lower().rstrip("/") if isinstance(origin, str) else origin
        if text != "*" and not (isinstance(text, str) and _ORIGIN.fullmatch(text)):
            raise ConfigurationError(
                f"allowed_origins holds origins such as 'https://app.example.com' (scheme, "
                f"host, and port if not the default; no path), or '*': {origin!r}"
            )
        origins.append(text)
    return tuple(origins)


def _skip_paths(paths: Collection[str]) -> tuple[str, ...]:
    if isinstance(paths, str):
        paths = [paths]
    prefixes = []
    for path in paths:
        prefix = path.rstrip("/") if isinstance(path, str) else None
        if not prefix or not prefix.startswith("/") or any(c in prefix for c in "?#*"):
            raise ConfigurationError(
                "skip_paths holds path prefixes such as '/static' or '/health' (a leading "
                f"'/', no query, no wildcard; '/' alone would skip every request): {path!r}"
            )
        prefixes.append(prefix)
    return tuple(prefixes)


_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


def _parse(variable: str, name: str, text: str) -> Any:
    """One environment variable's text as the option's type."""
    if name in ("max_age", "idle_timeout", "touch_interval", "leeway"):
        try:
            return float(text)
        except ValueError:
            raise ConfigurationError(f"{variable} must be a number of seconds: {text!r}") from None
    if name in (
        "browser_session",
        "httponly",
        "partitioned",
        "autoload",
        "secure",
        "trust_forwarded_proto",
        "websocket_cookies",
    ):
        if name in ("secure", "websocket_cookies") and text.lower() == "auto":
            return "auto"
        if text.lower() not in _FLAGS:
            raise ConfigurationError(f"{variable} must be true or false: {text!r}")
        return _FLAGS[text.lower()]
    if name == "domain" and not text:
        return None
    if name in ("allowed_origins", "skip_paths"):
        return [item.strip() for item in text.split(",") if item.strip()]
    return text


def _seconds(name: str, value: Any, zero_ok: bool = False) -> float:
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigurationError(f"{name} must be a number of seconds or a timedelta: {value!r}")
    if value < 0 or (value == 0 and not zero_ok):
        least = "0 or more" if zero_ok else "positive"
        raise ConfigurationError(f"{name} must be {least}: {value!r}")
    return float(value)
