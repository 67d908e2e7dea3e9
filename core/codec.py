"""How one session value becomes bytes and comes back, with its type.

MessagePack carries str, int, float, bool, None, bytes, list and dict as they are. The
types it has no word for travel as MessagePack extension types, so that they come back as
the same type and value in every store: a tuple stays a tuple, a naive datetime stays
naive. Encoding walks containers in Python to find those values (msgspec encodes datetimes
and tuples natively, in forms that lose their type, and calls no hook for them); decoding
is msgspec's own C, which calls :func:`_from_ext` for each extension value it meets.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import msgspec

from .errors import SessionDataError

# Extension codes: part of the stored format, never to be renumbered.
_TUPLE, _SET, _FROZENSET, _DATETIME, _DATE, _TIME, _TIMEDELTA, _DECIMAL, _UUID = range(1, 10)

_SCALARS = frozenset({str, int, float, bool, type(None), bytes})
IMMUTABLE = _SCALARS
"""The types a value can have and never change in place (MessagePack's scalars)."""
_CONTAINERS: dict[type, int] = {tuple: _TUPLE, set: _SET, frozenset: _FROZENSET}
_encoder = msgspec.msgpack.Encoder()


def _pack(value: Any) -> Any:
    """``value`` with every type MessagePack cannot carry as itself wrapped in an ``Ext``."""
    kind = type(value)
    if kind in _SCALARS:
        return value
    # Loops, not comprehensions: before Python 3.12 a comprehension is a frame of its own,
    # which would halve how deep a value may nest.
    if kind is list or kind is tuple or kind is set or kind is frozenset:
        items = []
        for item in value:
            items.append(_pack(item))
        if kind is list:
            return items
        return msgspec.msgpack.Ext(_CONTAINERS[kind], _encoder.encode(items))
    if kind is dict:
        packed = {}
        for key, item in value.items():
            packed[key] = _pack(item)
        return packed
    if kind is dt.datetime:  # before date: a datetime is a date
        return msgspec.msgpack.Ext(_DATETIME, value.isoformat().encode())
    if kind is dt.date:
        return msgspec.msgpack.Ext(_DATE, value.isoformat().encode())
    if kind is dt.time:
        return msgspec.msgpack.Ext(_TIME, value.isoformat().encode())
    if kind is dt.timedelta:
        parts = (value.days, value.seconds, value.microseconds)
        return msgspec.msgpack.Ext(_TIMEDELTA, _encoder.encode(parts))
    if kind is Decimal:
        return msgspec.msgpack.Ext(_DECIMAL, str(value).encode())
    if kind is uuid.UUID:
        return msgspec.msgpack.Ext(_UUID, value.bytes)
    return value  # msgspec's own rules: an Enum by its value, a dataclass as a dict, ...


def _from_ext(code: int, data: memoryview) -> Any:
    if code == _TUPLE:
        return tuple(_decode(data))
    if code == _SET:
        return set(_decode(data))
    if code == _FROZENSET:
        return frozenset(_decode(data))
    if code == _DATETIME:
        return dt.datetime.fromisoformat(bytes(data).decode())
    if code == _DATE:
        return dt.date.fromisoformat(bytes(data).decode())
    if code == _TIME:
        return dt.time.fromisoformat(bytes(data).decode())
    if code == _TIMEDELTA:
        days, seconds, microseconds = _decode(data)
        return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if code == _DECIMAL:
        return Decimal(bytes(data).decode())
    if code == _UUID:
        return uuid.UUID(bytes=bytes(data))
    raise ValueError(f"unknown extension type {code}")


_decode = msgspec.msgpack.Decoder(ext_hook=_from_ext).decode


def encode_value(key: str, value: Any) -> bytes:
    """One session value as bytes, or :class:`SessionDataError` naming the key."""
    try:
        return _encoder.encode(_pack(value))
    except (TypeError, ValueError, OverflowError, RecursionError) as error:
        raise SessionDataError(
            f"session[{key!r}] holds a {type(value).__name__} that cannot be stored ({error}); "
            "store plain data: str, int, float, bool, None, bytes, list, dict, tuple, set, "
            "datetime, date, time, timedelta, Decimal, UUID"
        ) from None


def decode_value(encoded: bytes) -> Any:
    """One value as :func:`encode_value` wrote it; ``ValueError`` if it is not one."""
    try:
        return _decode(encoded)
    except (msgspec.DecodeError, RecursionError, TypeError) as error:
        raise ValueError(f"not a session value: {error}") from None


def decode_values(data: Mapping[str, bytes]) -> tuple[dict[str, Any], int, bool]:
    """The values of a record, decoded: ``(values, corrupt, mutable)``, where ``corrupt``
    counts the keys left out because they held no value :func:`encode_value` wrote, and
    ``mutable`` says whether any value is of a type that can change in place."""
    values: dict[str, Any] = {}
    corrupt = 0
    mutable = False
    for key, encoded in data.items():
        try:
            value = values[key] = _decode(encoded)
        except (msgspec.DecodeError, RecursionError, ValueError, TypeError):
            corrupt += 1
            continue
        if type(value) not in IMMUTABLE:
            mutable = True
    return values, corrupt, mutable


def check_key(key: object) -> str:
    """``key`` if it can name a session value: a str that UTF-8 can encode."""
    if not isinstance(key, str):
        raise SessionDataError(f"session keys must be str, not {type(key).__name__}")
    try:
        key.encode()
    except UnicodeEncodeError:
        raise SessionDataError(
            f"session key {key!r} cannot be stored: it holds a lone surrogate"
        ) from None
    return key
