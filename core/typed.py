"""Typed sessions: declare the keys an app keeps as a ``msgspec.Struct`` (or a pydantic
model, when pydantic is installed), and read and write them as one validated object.

    class Cart(msgspec.Struct):
        items: list[int] = []
        coupon: str | None = None

    cart = typed.read(session, Cart)    # a Cart; SessionDataError names a field that is wrong
    cart.items.append(3)
    typed.write(session, cart)          # writes only the keys that changed

The session stays the plain mapping every other integration sees: each field is one key
(its encoded name, or the pydantic alias), keys the shape does not declare are left alone,
and a field still at its default is not written, so reading a shape never starts a session.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from typing import Any, TypeGuard, TypeVar

import msgspec

from .errors import SessionDataError
from .session import Session

__all__ = ["read", "write"]

T = TypeVar("T")


def read(session: Session, shape: type[T]) -> T:
    """The session's keys of ``shape``, validated, as an instance of it: missing keys take
    the field's default. :class:`~sesh.core.SessionDataError` names the first key whose
    value does not fit (or a required one that is missing)."""
    names = _keys(shape)
    return _convert({name: session[name] for name in names if name in session}, shape)


def write(session: Session, value: object) -> None:
    """Write ``value``'s fields back to the session's keys, after checking that it still
    fits its own type (a struct does not check assignments): nothing is written if a field
    is wrong. Only the keys whose value changed are set, so the per-key merge keeps the
    changes other requests make to other keys."""
    shape = type(value)
    after = _dump(value)
    _convert(after, shape)
    try:
        defaults = _dump(read(session, shape))  # what an absent key reads as
    except SessionDataError:
        defaults = {}  # the session holds a wrong value: no key can be taken as read
    for name, item in after.items():
        stored = session[name] if name in session else defaults.get(name, _ABSENT)
        if stored != item:
            session[name] = item


_ABSENT = object()


def _keys(shape: type[Any]) -> list[str]:
    if _is_struct(shape):
        return [field.encode_name for field in msgspec.structs.fields(shape)]
    if _is_pydantic(shape):
        fields: dict[str, Any] = shape.model_fields
        return [field.alias or name for name, field in fields.items()]
    raise _not_a_shape(shape)


def _dump(value: object) -> dict[str, Any]:
    """Each field as the builtins the session keeps, under its key."""
    shape = type(value)
    if _is_struct(shape):
        return {
            field.encode_name: msgspec.to_builtins(getattr(value, field.name))
            for field in msgspec.structs.fields(shape)
        }
    if _is_pydantic(shape):
        # No warnings: a wrong value assigned in code is refused by _convert, with its key.
        dumped: dict[str, Any] = value.model_dump(  # type: ignore[attr-defined]
            mode="json", by_alias=True, warnings=False
        )
        return dumped
    raise _not_a_shape(shape)


def _convert(data: Mapping[str, Any], shape: type[T]) -> T:
    if _is_pydantic(shape):
        from pydantic import ValidationError

        try:
            return shape.model_validate(data)  # type: ignore[attr-defined, no-any-return]
        except ValidationError as error:
            [first, *_] = error.errors()
            key = first["loc"][0] if first["loc"] else None
            raise _misfit(shape, key, first["msg"]) from None
    try:
        return msgspec.convert(data, shape)
    except msgspec.ValidationError as error:
        found = _AT.search(str(error))
        if found is None:  # the object as a whole: a required key is missing
            raise _misfit(shape, None, str(error)) from None
        raise _misfit(shape, found["key"], str(error)[: found.start()]) from None


_AT = re.compile(r" - at `\$\.(?P<key>[^.\[`]+)[^`]*`$")


def _misfit(shape: type[Any], key: object, problem: str) -> SessionDataError:
    where = "the session" if key is None else f"session key {key!r}"
    return SessionDataError(f"{where} does not fit {shape.__name__}: {problem}")


def _not_a_shape(shape: object) -> TypeError:
    return TypeError(
        f"declare a session's shape as a msgspec.Struct or a pydantic model, not {shape!r}"
    )


def _is_struct(shape: object) -> TypeGuard[type[msgspec.Struct]]:
    return isinstance(shape, type) and issubclass(shape, msgspec.Struct)


def _is_pydantic(shape: type[Any]) -> bool:
    pydantic = sys.modules.get("pydantic")  # never imported here: only if the app has
    return (
        pydantic is not None and isinstance(shape, type) and issubclass(shape, pydantic.BaseModel)
    )
