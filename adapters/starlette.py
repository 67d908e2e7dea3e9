"""A drop-in for ``starlette.middleware.sessions.SessionMiddleware``, on the sesh engine.

Swap the import and keep the arguments: existing cookies stay valid (with no ``store`` it
reads and writes Starlette's own cookie format), ``request.session`` works in Starlette and
FastAPI, and everything else comes from the sesh engine. Pass ``store=`` to move the same
app to any sesh store.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from binascii import Error as BinasciiError
from binascii import a2b_base64, b2a_base64
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec
from starlette.authentication import AuthCredentials, AuthenticationBackend, BaseUser
from starlette.requests import HTTPConnection

from sesh.core import Session, session_data
from sesh.core import SessionMiddleware as _CoreMiddleware
from sesh.core.config import DEFAULT_MAX_AGE, EngineOptions
from sesh.core.errors import ConfigurationError, SessionDataError
from sesh.core.identity import Users, user_id
from sesh.core.signing import TimestampHmacSigner
from sesh.core.store import ClientStore, Meta, Record, Store, Unsealed, encode_meta
from sesh.core.tokens import MIN_SECRET_BYTES, SecretKeys, ShortSecret, secret_list
from sesh.core.types import ASGIApp, Clock

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "Session",
    "SessionAuthBackend",
    "SessionMiddleware",
    "SessionUser",
    "StarletteCookieStore",
]

logger = logging.getLogger("sesh.starlette")

_encode_value = msgspec.msgpack.Encoder().encode
_decode_value = msgspec.msgpack.Decoder().decode
_decode_json = msgspec.json.Decoder().decode


class SessionMiddleware(_CoreMiddleware):
    """Starlette's ``SessionMiddleware`` arguments, with Starlette's meaning, on sesh's engine.

    * ``secret_key``: a str or Starlette ``Secret``, or a list of them for rotation (the
      first signs, all verify). One shorter than 32 bytes still works, with one warning
      at construction: keep it only until you can rotate to a long one.
    * ``max_age``: seconds; ``None`` for a cookie that ends with the browser; ``0`` or
      less for sessions that end with the response that made them (nothing is kept).

    With no ``store`` the cookie is Starlette's own format, so existing cookies stay
    valid; it carries only the values, so ``idle_timeout``, ``session.id``,
    ``regenerate()`` and ``set_expiry()`` are refused with a message naming the fix
    (pass ``store=`` a sesh store). The deliberate differences: ``Secure`` is added on
    https even without ``https_only``, and nothing is written when nothing changed.
    ``store`` and sesh's options that are not about the cookie (``idle_timeout``,
    ``autoload``, ...) follow as keywords.
    """

    def __init__(
        self,
        app: ASGIApp,
        secret_key: Any,
        session_cookie: str = "session",
        max_age: int | None = DEFAULT_MAX_AGE,
        path: str = "/",
        same_site: Literal["lax", "strict", "none"] = "lax",
        https_only: bool = False,
        domain: str | None = None,
        partitioned: bool = False,
        *,
        store: Store | ClientStore | None = None,
        **options: Unpack[EngineOptions],
    ) -> None:
        secrets = _starlette_secrets(secret_key)
        if max_age is not None and max_age <= 0:
            max_age = 0  # Starlette's 0 and negatives alike: the browser keeps nothing
        if store is None:
            store = StarletteCookieStore(secrets, max_age, clock=options.get("clock", time.time))
        super().__init__(
            app,
            store=store,
            # With a server-side store, the same secrets sign the session ids.
            secret_key=None if isinstance(store, ClientStore) else secrets,
            max_age=DEFAULT_MAX_AGE if max_age is None else max_age,
            browser_session=max_age is None,
            cookie_name=session_cookie,
            path=path,
            samesite=same_site,
            secure=True if https_only else "auto",
            domain=domain,
            partitioned=partitioned,
            **options,
        )


def _starlette_secrets(secret_key: Any) -> list[bytes]:
    """``secret_key`` as Starlette apps give it (a str, a ``Secret``, or a list of them),
    as sesh's secrets. Secrets shorter than sesh's minimum are kept, with one warning."""
    items = list(secret_key) if isinstance(secret_key, list | tuple) else [secret_key]
    if not items:
        raise ConfigurationError("secret_key is an empty list: give at least one secret")
    secrets: list[bytes] = []
    for item in items:
        if item is None or isinstance(item, bytes | bytearray):
            raise ConfigurationError(
                f"secret_key must be a str or a Starlette Secret, not {type(item).__name__}"
            )
        key = str(item).encode()  # a Secret's str() is its value
        if not key:
            raise ConfigurationError("secret_key is empty: give a secret")
        secrets.append(key if len(key) >= MIN_SECRET_BYTES else ShortSecret(key))
    short = sum(isinstance(key, ShortSecret) for key in secrets)
    if short:
        logger.warning(
            "%d of the session secrets %s shorter than %d bytes: whoever guesses one can sign "
            "a session as any user. Rotate to a long one with secret_key=[new, old]; make it "
            'with: python -c "import secrets; print(secrets.token_urlsafe(48))"',
            short,
            "is" if short == 1 else "are",
            MIN_SECRET_BYTES,
        )
    return secrets


class StarletteCookieStore:
    """The cookie format of Starlette's ``SessionMiddleware``: base64 JSON, timestamped and
    signed in itsdangerous' format with Starlette's settings. It carries only the values:
    no session id (``session.id`` raises), no creation time (``created_at`` is the time of
    the last write) and no expiry of its own (``set_expiry()`` and ``regenerate()`` raise,
    ``idle_timeout`` is refused); expiry rolls, as in Starlette, ``max_age`` after the last
    write, and ``max_age`` 0 or less accepts no cookie older than that.

    ``secret_key`` may be a list (the first signs, all verify) for rotation. A cookie
    Starlette signed with the same secret is read whatever it holds; one whose values sesh
    cannot keep (an integer beyond 64 bits, say) is no session, never an error.
    """

    format_name = "Starlette's cookie format"

    def __init__(
        self,
        secret_key: SecretKeys,
        max_age: float | timedelta | None = DEFAULT_MAX_AGE,
        *,
        clock: Clock = time.time,
    ) -> None:
        # itsdangerous.TimestampSigner(secret) with its defaults, as Starlette builds it.
        self._signer = TimestampHmacSigner(
            secret_list(secret_key),
            salt=b"itsdangerous.Signer",
            digest=hashlib.sha1,
            key_derivation="django-concat",
        )
        if isinstance(max_age, timedelta):
            max_age = max_age.total_seconds()
        self._browser = max_age is None
        # Starlette checks no age without max_age; sesh still ends such a session when it
        # has not been written for DEFAULT_MAX_AGE. Whole seconds, as itsdangerous counts;
        # below 0 accepts nothing, as 0 does after its second.
        self._max_age = max(0, int(DEFAULT_MAX_AGE if max_age is None else max_age))
        self._accepts_none = max_age is not None and max_age < 0
        self._clock = clock

    def seal(self, session_id: str, record: Record, *, compact: bool = False) -> str:
        # Starlette's format has one form: compact changes nothing.
        values = {key: _decode_value(raw) for key, raw in record.data.items()}
        try:
            payload = json.dumps(values)
        except (TypeError, ValueError):
            for key, value in values.items():
                try:
                    json.dumps(value)
                except (TypeError, ValueError) as error:
                    raise SessionDataError(
                        f"session[{key!r}] holds a {type(value).__name__} that Starlette's "
                        f"cookie format (JSON) cannot carry ({error}); store JSON data, or "
                        "pass store=CookieStore(...) for sesh's own format"
                    ) from None
            raise
        body = b2a_base64(payload.encode(), newline=False)  # Starlette: standard base64
        return self._signer.sign_at(body, self._clock()).decode("ascii")

    def unseal(self, value: bytes) -> Unsealed | None:
        if self._accepts_none:
            return None
        now = self._clock()
        verified = self._signer.unsign_within(value, self._max_age, now)
        if verified is None:
            return None
        signed, stamp, resign = verified
        try:
            text = a2b_base64(signed)
            try:
                values = _decode_json(text)
            except msgspec.DecodeError:  # json.dumps also writes NaN and Infinity
                values = json.loads(text)
        except (BinasciiError, ValueError, RecursionError):
            return None
        if not isinstance(values, dict):
            return None
        try:
            data = {key: _encode_value(item) for key, item in values.items()}
        except (TypeError, ValueError, OverflowError, RecursionError):
            return None  # e.g. an integer beyond 64 bits, which sesh cannot keep
        written = float(stamp)
        # Expiry rolls from the last write: the signer has checked max_age against the
        # timestamp, and a write in this request is good for a full lifetime again.
        meta = Meta(written, now + self._max_age, now, self._browser)
        return Unsealed("", Record(data, encode_meta(meta)), resign)  # no id in this format


# -- request.user, from the session ------------------------------------------------------------


class SessionUser(BaseUser):
    """``request.user`` for a logged-in session: the app's user object (``.user``), whose
    attributes it also answers (``request.user.email``), and its id (``.identity``)."""

    def __init__(self, user: Any, identity: str) -> None:
        self.user = user
        self._identity = identity

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        for name in ("display_name", "username", "name", "email"):
            value = getattr(self.user, name, None)
            if isinstance(value, str):
                return value
        return self._identity

    @property
    def identity(self) -> str:
        return self._identity

    def __getattr__(self, name: str) -> Any:
        # Copy and pickle look attributes up before __init__ has run: no user to ask yet.
        if name.startswith("__") or "user" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.__dict__["user"], name)


class SessionAuthBackend(AuthenticationBackend):
    """For Starlette's ``AuthenticationMiddleware``: ``request.user`` and ``request.auth``
    from the session, through the app's :class:`~sesh.core.identity.Users`. A logged-in
    request gets :class:`SessionUser` and the ``scopes`` (``"authenticated"``, so that
    ``@requires("authenticated")`` works); anyone else, Starlette's ``UnauthenticatedUser``.
    The session middleware must wrap the authentication middleware (add it last)."""

    def __init__(self, users: Users[Any], scopes: Sequence[str] = ("authenticated",)) -> None:
        if not isinstance(users, Users):
            raise ConfigurationError(f"users must be a sesh.core.identity.Users, not {users!r}")
        self.users = users
        self.scopes = list(scopes)

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, BaseUser] | None:
        user = await self.users.current(conn)
        if user is None:
            return None
        identity = user_id(session_data(conn))
        assert identity is not None  # users.current found a user by it
        return AuthCredentials(self.scopes), SessionUser(user, identity)
