"""DjangoStore: sessions shared with a Django project, in its ``django_session`` table.

Rows are Django's own, so that Django and the async app read each other's sessions:

* the cookie is Django's ``sessionid``, holding the raw 32-character key, and the key is
  the row's primary key as it is. Django finds rows by the raw token, so this store,
  alone among sesh's, cannot file sessions under a hash of the id: a copy of the table
  holds live tokens, as it does for Django itself;
* ``session_data`` is ``django.core.signing.dumps(values, salt=
  "django.contrib.sessions.SessionStore", compress=True)``: JSON, zlib when it helps,
  base64, a base62 timestamp and an HMAC-SHA256 under Django's salted key. ``SECRET_KEY``
  signs; it and every ``SECRET_KEY_FALLBACKS`` entry verify;
* ``expire_date`` is recomputed at each save (now + the session's remaining lifetime);
  loads ignore rows past it.

What sesh keeps beyond Django's format rides in the values under one key, ``_sesh``, that
Django carries along untouched: the engine's metadata, and the values JSON cannot carry
(bytes, datetimes, tuples...), which Django therefore does not see. Django's own
``_session_expiry`` becomes the session's expiry (``0``: until the browser closes) both
ways.

Writes follow sesh's rules among sesh's writers: create only if absent, update only if
present (never recreating a session Django or sesh logged out), and per-key merge by
compare-and-set on ``session_data``. Django's own saves rewrite the whole row, last writer
wins, as in Django. Only Django's ``db`` session engine shares rows this way; ``cached_db``
keeps a cache that sesh cannot see or clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import secrets
import string
import time
import zlib
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from sesh.core import identity
from sesh.core.errors import ConfigurationError
from sesh.core.session import Session, state_of
from sesh.core.store import Meta, Record, encode_meta, unpack_meta
from sesh.core.tokens import short_hash
from sesh.core.types import Clock

from .sql import PURGE_BATCH, Database, Seen, UserIndex, UserIndexed, user_table

logger = logging.getLogger("sesh.django")

__all__ = [
    "BACKEND_SESSION_KEY",
    "HASH_SESSION_KEY",
    "MODEL_BACKEND",
    "SESSION_KEY",
    "DjangoStore",
    "session_auth_hash",
]

SESSION_KEY = "_auth_user_id"
BACKEND_SESSION_KEY = "_auth_user_backend"
HASH_SESSION_KEY = identity.AUTH_HASH_KEY
MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"
_EXPIRY = "_session_expiry"
_OURS = "_sesh"

_SALT = "django.contrib.sessions.SessionStore"  # "django.contrib.sessions." + the class name
_AUTH_HASH_SALT = "django.contrib.auth.models.AbstractBaseUser.get_session_auth_hash"
_KEY_CHARS = string.ascii_lowercase + string.digits  # django.contrib.sessions VALID_KEY_CHARS
_KEY_SHAPE = frozenset(_KEY_CHARS)
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_MAX_INFLATED = 16 * 1024 * 1024  # a compressed payload may not grow past this (zip bombs)

_encode_value = msgspec.msgpack.Encoder().encode
_decode_plain = msgspec.msgpack.Decoder().decode


def _b64_encode(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).strip(b"=")


def _b64_decode(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


def _salted_hmac(key_salt: str, value: bytes, secret: bytes) -> hmac.HMAC:
    """django.utils.crypto.salted_hmac with SHA-256."""
    key = hashlib.sha256(key_salt.encode() + secret).digest()
    return hmac.new(key, value, hashlib.sha256)


def _b62(number: int) -> str:
    digits = ""
    while number > 0:
        number, digit = divmod(number, 62)
        digits = _BASE62[digit] + digits
    return digits or "0"


def session_auth_hash(password_hash: str, secret_key: str | bytes) -> str:
    """Django's ``user.get_session_auth_hash()`` for a user whose ``auth_user.password``
    is ``password_hash``, under ``secret_key``: what a login keeps in ``_auth_user_hash``."""
    secret = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return _salted_hmac(_AUTH_HASH_SALT, password_hash.encode(), secret).hexdigest()


class DjangoSigner:
    """``django.core.signing.dumps``/``loads`` for sessions, with the secrets given."""

    def __init__(self, secret_key: str | bytes, fallbacks: Iterable[str | bytes] = ()) -> None:
        keys = [secret_key, *fallbacks]
        for key in keys:
            if not isinstance(key, str | bytes) or not key:
                raise ConfigurationError(
                    "secret_key and each of secret_key_fallbacks must be a non-empty str: "
                    "Django's SECRET_KEY and SECRET_KEY_FALLBACKS"
                )
        self.keys = [key.encode() if isinstance(key, str) else key for key in keys]

    def _signature(self, value: bytes, key: bytes) -> bytes:
        return _b64_encode(_salted_hmac(_SALT + "signer", value, key).digest())

    def dumps(self, values: Mapping[str, Any], now: float) -> str:
        data = json.dumps(values, separators=(",", ":")).encode("latin-1")
        compressed = zlib.compress(data)
        if len(compressed) < len(data) - 1:
            body = b"." + _b64_encode(compressed)
        else:
            body = _b64_encode(data)
        value = body + b":" + _b62(int(now)).encode()
        return (value + b":" + self._signature(value, self.keys[0])).decode("ascii")

    def loads(self, signed: str) -> dict[str, Any] | None:
        """The values; None if no key verifies them or they are not a JSON object. (A
        value a fallback key verified is signed with the first key at its next save.)"""
        raw = signed.encode("ascii", "replace")
        value, _, signature = raw.rpartition(b":")
        if not any(hmac.compare_digest(signature, self._signature(value, k)) for k in self.keys):
            return None
        body = value.rpartition(b":")[0]  # Django checks no age for sessions
        try:
            if body.startswith(b"."):
                inflater = zlib.decompressobj()
                data = inflater.decompress(_b64_decode(body[1:]), _MAX_INFLATED)
                if inflater.unconsumed_tail:
                    return None
            else:
                data = _b64_decode(body)
            values = json.loads(data.decode("latin-1"))
        except (binascii.Error, zlib.error, ValueError, RecursionError):
            return None
        return values if isinstance(values, dict) else None


class DjangoStore(UserIndexed):
    """Sessions in Django's ``django_session`` table, in Django's format.

    ``engine`` is an SQLAlchemy ``AsyncEngine`` on the Django project's database, or its
    URL (PostgreSQL, MySQL/MariaDB or SQLite, as for :class:`~sesh.stores.sql.SQLStore`).
    ``secret_key`` and ``secret_key_fallbacks`` are the project's ``SECRET_KEY`` and
    ``SECRET_KEY_FALLBACKS``; ``cookie_name`` its ``SESSION_COOKIE_NAME`` (give the
    middleware the same). Django must run with ``USE_TZ = True`` (its default), so that
    ``expire_date`` is UTC on both sides.

    Use it with the middleware's defaults for the rest: ``max_age`` plays
    ``SESSION_COOKIE_AGE``. The engine refuses ``secret_key`` and ``idle_timeout`` with
    this store (the cookie is Django's bare key; the rows keep no last-visit time).
    """

    framework = "Django"

    def __init__(
        self,
        engine: AsyncEngine | str,
        *,
        secret_key: str | bytes,
        secret_key_fallbacks: Sequence[str | bytes] = (),
        cookie_name: str = "sessionid",
        table: str = "django_session",
        users_table: str = "sesh_django_users",
        timeout: float = 1.0,
        clock: Clock = time.time,
    ) -> None:
        if isinstance(secret_key_fallbacks, str | bytes):
            raise ConfigurationError("secret_key_fallbacks is a list of secrets, not one")
        self.signer = DjangoSigner(secret_key, secret_key_fallbacks)
        if not isinstance(cookie_name, str) or not cookie_name:
            raise ConfigurationError(f"cookie_name must be a non-empty str: {cookie_name!r}")
        self.cookie_name = cookie_name
        if not isinstance(table, str) or not table:
            raise ConfigurationError(f"table must be a non-empty str: {table!r}")
        self.database = Database(
            engine,
            timeout,
            "DjangoStore",
            f"point it at the Django project's database, where `python manage.py migrate` "
            f"made {table}",
        )
        self.endpoint = self.database.endpoint
        self._clock = clock
        self._seen: Seen[tuple[str, dict[str, Any]]] = Seen()
        dialect = self.database.engine.dialect
        self._times = _TIMES[dialect.name]
        name = dialect.identifier_preparer.quote(table)
        s = self.database.statement
        live = "session_key = %s AND expire_date > %s"
        self._load = s(f"SELECT session_data, expire_date FROM {name} WHERE {live}")
        self._insert = s(
            f"INSERT INTO {name} (session_key, session_data, expire_date) VALUES (%s, %s, %s)"
        )
        self._clear_expired = s(f"DELETE FROM {name} WHERE session_key = %s AND expire_date <= %s")
        # The data as read is the version compared and set; MySQL compares text without
        # case by default, so there the comparison is of bytes.
        same = (
            "session_data = CAST(%s AS BINARY)"
            if dialect.name in {"mysql", "mariadb"}
            else "session_data = %s"
        )
        self._write = s(
            f"UPDATE {name} SET session_data = %s, expire_date = %s "
            f"WHERE session_key = %s AND {same} AND expire_date > %s"
        )
        self._delete = s(f"DELETE FROM {name} WHERE {live}")
        self._purge = self.database.purge_statement(name, "expire_date")
        if not isinstance(users_table, str) or not users_table:
            raise ConfigurationError(f"users_table must be a non-empty str: {users_table!r}")
        self.users = UserIndex(
            self.database,
            user_table(users_table),
            clock,
            "create it with `await store.create_table()`",
        )
        """The per-user index, in a table of sesh's own (Django's has no place for it)."""

    # -- ids: Django's (ForeignIds) ------------------------------------------------------------

    def new_id(self) -> str:
        """A key as Django makes them: 32 characters of ``[a-z0-9]``."""
        return "".join(secrets.choice(_KEY_CHARS) for _ in range(32))

    def is_id(self, value: str) -> bool:
        return len(value) == 32 and _KEY_SHAPE.issuperset(value)

    # -- the Store protocol ---------------------------------------------------------------------

    async def load(self, key: str) -> Record | None:
        now = self._clock()
        row = await self.database.fetch_one(self._load, (key, self._times.to_db(now)))
        if row is None:
            return None
        values = self._values(row[0], key)
        if values is None:
            return None
        self._seen.remember(key, (row[0], dict(values)))  # as stored, for the update
        return _to_record(values, self._times.from_db(row[1]), now, key)

    async def create(self, key: str, record: Record, ttl: float) -> bool:
        now = self._clock()
        values = _from_record({}, record.data, (), record.meta)
        row = (key, self.signer.dumps(values, now), self._times.to_db(now + ttl))
        return await self.database.insert(
            self._insert, row, self._clear_expired, self._times.to_db(now)
        )

    async def update(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        meta: bytes,
        ttl: float,
    ) -> bool:
        driver = self.database.driver

        async def read(conn: Any) -> tuple[str, dict[str, Any]] | None:
            now = self._times.to_db(self._clock())
            row = await driver.fetch_one(conn, self._load, (key, now))
            values = None if row is None else self._values(row[0], key)
            return None if values is None else (row[0], values)

        async def write(conn: Any, row: tuple[str, dict[str, Any]]) -> bool:
            stored, values = row  # session_data, compared and set
            now = self._clock()
            args = (
                self.signer.dumps(_from_record(values, changed, removed, meta), now),
                self._times.to_db(now + ttl),
                key,
                stored,
                self._times.to_db(now),
            )
            return bool(await driver.execute(conn, self._write, args))

        return await self.database.merge(self._seen.recall(key), read, write)

    async def touch(self, key: str, meta: bytes, ttl: float) -> bool:
        # The expiry lives in the signed data too: a touch rewrites the row.
        return await self.update(key, {}, (), meta, ttl)

    async def delete(self, key: str) -> bool:
        now = self._times.to_db(self._clock())
        return bool(await self.database.execute(self._delete, (key, now)))

    async def purge_expired(self, *, batch: int = PURGE_BATCH) -> int:
        """Remove expired rows in small batches, as Django's ``clearsessions`` does at
        once, and the expired entries of the per-user index."""
        now = self._times.to_db(self._clock())
        gone = await self.database.purge(self._purge, now, batch)
        await self.users.purge(batch)
        return gone

    async def create_table(self) -> None:
        """Create the one table sesh keeps beside Django's, the per-user index
        (``users_table``), unless it exists. ``django_session`` is Django's to make."""
        await self.users.create()

    async def ping(self) -> None:
        """Check that the database answers, within the deadline."""
        await self.database.ping()

    async def aclose(self) -> None:
        """Dispose of the engine if the store made it from a URL."""
        await self.database.aclose()

    def _values(self, session_data: str, key: str) -> dict[str, Any] | None:
        values = self.signer.loads(session_data)
        if values is None:
            # Django logs this as "Session data corrupted"; so do we, by hash.
            logger.warning("a Django session row is not one we can verify (%s)", short_hash(key))
        return values

    # -- Django's logins ------------------------------------------------------------------------

    def login(
        self,
        session: Session,
        user_id: str | int,
        password_hash: str,
        *,
        backend: str = MODEL_BACKEND,
    ) -> None:
        """Log ``user_id`` in as ``django.contrib.auth.login`` does, so that Django's
        ``request.user`` is that user: a new session key, keeping the data (or none of it,
        when another user was logged in), and Django's three keys. ``password_hash`` is the
        user's ``auth_user.password``. Otherwise :func:`sesh.core.identity.login`, whose
        keys are Django's."""
        _django_user_key(session)
        identity.login(
            session, user_id, auth_hash=session_auth_hash(password_hash, self.signer.keys[0])
        )
        session[BACKEND_SESSION_KEY] = backend

    def logout(self, session: Session) -> None:
        """Log out as ``django.contrib.auth.logout`` does: the session ends, on both sides."""
        session.invalidate()

    async def user_id(
        self,
        session: Session,
        password_hash: Callable[[str], Awaitable[str | None]],
        *,
        backends: Collection[str] = (MODEL_BACKEND,),
    ) -> str | None:
        """The id of the user logged in to this session (by Django or by :meth:`login`), as
        Django's ``get_user`` decides it, or None.

        ``password_hash(user_id)`` gives that user's ``auth_user.password`` (None if there
        is no such user). A session whose stored hash no longer matches it (the password
        changed, on either side) is ended, as Django flushes it; one signed with a fallback
        secret gets a new key and the current hash, as Django does."""
        user_id = session.get(SESSION_KEY)
        if not isinstance(user_id, str) or session.get(BACKEND_SESSION_KEY) not in backends:
            return None
        current = await password_hash(user_id)
        if current is None:
            return None
        stored = session.get(HASH_SESSION_KEY)
        if isinstance(stored, str) and stored:
            hashes = [session_auth_hash(current, key) for key in self.signer.keys]
            if hmac.compare_digest(stored, hashes[0]):
                return user_id
            if any(hmac.compare_digest(stored, other) for other in hashes[1:]):
                session.regenerate()
                session[HASH_SESSION_KEY] = hashes[0]
                return user_id
        session.invalidate()
        return None


def _django_user_key(session: Session) -> None:
    """Refuse a ``user_key`` under which Django would not see the user."""
    user_key = state_of(session).config.user_key
    if user_key != SESSION_KEY:
        raise ConfigurationError(
            f"Django reads the logged-in user from {SESSION_KEY!r}, and the middleware's "
            f"user_key is {user_key!r}: drop user_key, so that logins are Django's too"
        )


# -- values and metadata, between Django's dict and sesh's record ------------------------------


def _to_record(values: dict[str, Any], expire_date: float, now: float, key: str) -> Record | None:
    """A record of Django's ``values``: JSON values as sesh's encoding, sesh's own values
    and metadata out of ``_sesh``, the expiry out of the row and ``_session_expiry``."""
    ours = values.pop(_OURS, None)
    expiry = values.pop(_EXPIRY, None)
    data: dict[str, bytes] = {}
    try:
        for name, value in values.items():
            data[name] = _encode_value(value)
    except (TypeError, ValueError, OverflowError, RecursionError):
        # An integer beyond 64 bits, say: a value sesh cannot keep.
        logger.warning(
            "a Django session holds a value sesh cannot keep (%s): ignored", short_hash(key)
        )
        return None
    meta = None
    if isinstance(ours, dict):
        try:
            raw = ours.get("raw", {})
            for name, value in raw.items():
                data[name] = base64.b64decode(value, validate=True)
            meta = base64.b64decode(ours["meta"], validate=True)
            written_expiry = ours.get("expiry")
        except (TypeError, ValueError, KeyError, AttributeError, binascii.Error):
            meta = None
        if meta is not None and expiry != written_expiry:
            # Django changed the expiry since sesh wrote (set_expiry in a Django view):
            # Django's word counts.
            meta = _adopt_expiry(meta, expire_date, expiry == 0)
    if meta is None:  # a session Django made: what its row says
        meta = encode_meta(Meta(now, expire_date, now, expiry == 0))
    return Record(data, meta)


def _adopt_expiry(meta: bytes, deadline: float, browser: bool) -> bytes:
    try:
        created_at, _, touched_at, _ = unpack_meta(meta)
    except ValueError:
        return meta
    return encode_meta(Meta(created_at, deadline, touched_at, browser))


def _from_record(
    values: dict[str, Any], changed: Mapping[str, bytes], removed: Collection[str], meta: bytes
) -> dict[str, Any]:
    """Django's dict ``values`` with sesh's changes made: each value JSON can carry exactly
    as itself, the others (and the metadata) under ``_sesh``."""
    ours = values.pop(_OURS, None)
    raw: dict[str, str] = {}
    if isinstance(ours, dict) and isinstance(ours.get("raw"), dict):
        raw = ours["raw"]
    for name in removed:
        values.pop(name, None)
        raw.pop(name, None)
    for name, encoded in changed.items():
        value = _as_json(encoded)
        if value is _NOT_JSON:
            values.pop(name, None)
            raw[name] = base64.b64encode(encoded).decode("ascii")
        else:
            raw.pop(name, None)
            values[name] = value
    try:
        _, deadline, _, browser = unpack_meta(meta)
        values[_EXPIRY] = 0 if browser else _iso(deadline)
    except ValueError:
        pass  # metadata sesh did not write (a store test's): kept as it is, nothing derived
    values[_OURS] = {
        "meta": base64.b64encode(meta).decode("ascii"),
        "expiry": values.get(_EXPIRY),
        "raw": raw,
    }
    return values


_NOT_JSON = object()


def _as_json(encoded: bytes) -> Any:
    """The value ``encoded`` holds if JSON carries it exactly (the same bytes come back),
    else ``_NOT_JSON``."""
    try:
        value = _decode_plain(encoded)
        if _encode_value(json.loads(json.dumps(value))) == encoded:
            return value
    except (msgspec.DecodeError, TypeError, ValueError, OverflowError, RecursionError):
        pass
    return _NOT_JSON


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


class _Times:
    """``expire_date`` as each database keeps it under ``USE_TZ = True``."""

    def __init__(self, to_db: Callable[[float], Any], from_db: Callable[[Any], float]) -> None:
        self.to_db = to_db
        self.from_db = from_db


def _naive_utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc).replace(tzinfo=None)


def _epoch(value: Any) -> float:
    if isinstance(value, str):  # SQLite: text, as Django writes it
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    stamp: float = value.timestamp()
    return stamp if math.isfinite(stamp) else 0.0


_TIMES = {
    # timestamp with time zone
    "postgresql": _Times(lambda epoch: datetime.fromtimestamp(epoch, timezone.utc), _epoch),
    # datetime(6), UTC without a zone
    "mysql": _Times(_naive_utc, _epoch),
    "mariadb": _Times(_naive_utc, _epoch),
    # text: "YYYY-MM-DD HH:MM:SS[.ffffff]", which compares as the times do
    "sqlite": _Times(lambda epoch: str(_naive_utc(epoch)), _epoch),
}
