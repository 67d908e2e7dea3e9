"""A drop-in for ``starlette.middleware.sessions.SessionMiddleware``, on the sesh engine.

Swap the import and keep the arguments: existing cookies stay valid (with no ``store`` it
reads and writes Starlette's own cookie format), ``request.session`` works in Starlette and
FastAPI, and everything else comes from the sesh engine. Pass ``store=`` to move the same
app to any sesh store.
"""

from __future__ import annotations

import hashlib
import json
import time
from binascii import Error as BinasciiError
from binascii import a2b_base64, b2a_base64
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

import msgspec

from sesh.core import SessionMiddleware as _CoreMiddleware
from sesh.core.config import DEFAULT_MAX_AGE, EngineOptions
from sesh.core.errors import SessionDataError
from sesh.core.signing import TimestampHmacSigner
from sesh.core.store import ClientStore, Meta, Record, Store, Unsealed, encode_meta
from sesh.core.tokens import secret_list
from sesh.core.types import ASGIApp, Clock

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SessionMiddleware", "StarletteCookieStore"]

_encode_value = msgspec.msgpack.Encoder().encode
_decode_value = msgspec.msgpack.Decoder().decode
_decode_json = msgspec.json.Decoder().decode


class SessionMiddleware(_CoreMiddleware):
    """Starlette's ``SessionMiddleware`` arguments, sesh's engine.

    The differences are deliberate: ``Secure`` is added on https even without
    ``https_only`` (sesh's default), secrets shorter than 32 bytes are refused, and nothing
    is written when the session did not change. ``store`` and the sesh options that are not
    about the cookie (``idle_timeout``, ``autoload``, ...) can follow as keywords.
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
        secret = str(secret_key)  # a starlette.datastructures.Secret, or a str
        if store is None:
            store = StarletteCookieStore(secret, max_age, clock=options.get("clock", time.time))
        super().__init__(
            app,
            store=store,
            # With a server-side store, the same secret signs the session ids.
            secret_key=None if isinstance(store, ClientStore) else secret,
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


class StarletteCookieStore:
    """The cookie format of Starlette's ``SessionMiddleware``: base64 JSON, timestamped and
    signed in itsdangerous' format with Starlette's settings. It carries no session id and no
    creation time, so ``session.id`` is made anew for each request that asks for it and
    ``created_at`` is the time of the last write; expiry rolls, as in Starlette, ``max_age``
    after the last write.

    ``secret_key`` may be a list (the first signs, all verify) for rotation.
    """

    def __init__(
        self,
        secret_key: str | list[str],
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
        # has not been written for DEFAULT_MAX_AGE. Whole seconds, as itsdangerous counts.
        self._max_age = int(DEFAULT_MAX_AGE if max_age is None else max_age)
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
        except (TypeError, ValueError, RecursionError):
            return None
        written = float(stamp)
        # Expiry rolls from the last write: the signer has checked max_age against the
        # timestamp, and a write in this request is good for a full lifetime again.
        meta = Meta(written, now + self._max_age, now, self._browser)
        return Unsealed("", Record(data, encode_meta(meta)), resign)  # no id in this format
