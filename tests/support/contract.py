"""The contract every server-side store must meet (see ``sesh.core.store``).

A store's test module subclasses :class:`StoreContract`, provides a ``store`` fixture, and
implements ``remaining_ttl``; every test here then runs against that store unchanged.
"""

from __future__ import annotations

import pytest

from sesh.core import Record, Store

pytestmark = pytest.mark.anyio

META = b"\x95\x01\xcb" + b"\x00" * 8  # opaque to the store: any bytes
DATA = {"user": b"\xa3ada", "cart": b"\x92\x01\x02"}


class StoreContract:
    """Inherit, give a ``store`` fixture, implement ``remaining_ttl``."""

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        """Seconds the record under ``key`` has left, or None if there is none."""
        raise NotImplementedError

    @pytest.fixture
    def key(self) -> str:
        return "a3f1" * 12

    async def test_is_a_store(self, store: Store) -> None:
        assert isinstance(store, Store)

    async def test_load_of_a_missing_key_is_none(self, store: Store, key: str) -> None:
        assert await store.load(key) is None

    async def test_create_then_load_round_trips(self, store: Store, key: str) -> None:
        assert await store.create(key, Record(dict(DATA), META), 60)
        assert await store.load(key) == Record(DATA, META)

    async def test_binary_values_and_unicode_fields_round_trip(
        self, store: Store, key: str
    ) -> None:
        data = {"\u00e9t\u00e9 \u2603": bytes(range(256)), "": b"\x00", "\x00": b""}
        assert await store.create(key, Record(data, bytes(range(256))), 60)
        assert await store.load(key) == Record(data, bytes(range(256)))

    async def test_create_never_overwrites(self, store: Store, key: str) -> None:
        assert await store.create(key, Record(dict(DATA), META), 60)
        assert not await store.create(key, Record({"evil": b"\xc0"}, b"x"), 60)
        assert await store.load(key) == Record(DATA, META)

    async def test_the_caller_cannot_change_a_record_after_writing_it(
        self, store: Store, key: str
    ) -> None:
        data = dict(DATA)
        await store.create(key, Record(data, META), 60)
        data["user"] = b"\xa3eve"
        changed = {"cart": b"\xc0"}
        await store.update(key, changed, [], META, 60)
        changed["cart"] = b"\xc2"
        assert await store.load(key) == Record({"user": b"\xa3ada", "cart": b"\xc0"}, META)

    async def test_update_of_a_missing_key_creates_nothing(self, store: Store, key: str) -> None:
        assert not await store.update(key, {"a": b"\x01"}, [], META, 60)
        assert await store.load(key) is None

    async def test_update_changes_only_the_named_fields(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 60)
        assert await store.update(key, {"user": b"\xa3bob", "new": b"\xc3"}, ["cart"], b"m2", 60)
        assert await store.load(key) == Record({"user": b"\xa3bob", "new": b"\xc3"}, b"m2")

    async def test_removing_an_absent_field_is_harmless(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 60)
        assert await store.update(key, {}, ["nothing"], META, 60)
        assert await store.load(key) == Record(DATA, META)

    async def test_updates_of_different_fields_both_win(self, store: Store, key: str) -> None:
        await store.create(key, Record({"base": b"\x00"}, META), 60)
        assert await store.update(key, {"a": b"\x01"}, [], META, 60)
        assert await store.update(key, {"b": b"\x02"}, [], META, 60)
        loaded = await store.load(key)
        assert loaded is not None
        assert loaded.data == {"base": b"\x00", "a": b"\x01", "b": b"\x02"}

    async def test_a_deleted_record_is_never_brought_back(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 60)
        assert await store.delete(key)
        assert not await store.delete(key)
        assert not await store.update(key, {"late": b"\x01"}, [], META, 60)
        assert not await store.touch(key, META, 60)
        assert await store.load(key) is None

    async def test_touch_replaces_meta_and_keeps_data(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 60)
        assert await store.touch(key, b"touched", 600)
        assert await store.load(key) == Record(DATA, b"touched")
        ttl = await self.remaining_ttl(store, key)
        assert ttl is not None
        assert 60 < ttl <= 600

    async def test_touch_of_a_missing_key_creates_nothing(self, store: Store, key: str) -> None:
        assert not await store.touch(key, META, 60)
        assert await store.load(key) is None

    async def test_every_write_sets_the_ttl(self, store: Store, key: str) -> None:
        await store.create(key, Record(dict(DATA), META), 100)
        ttl = await self.remaining_ttl(store, key)
        assert ttl is not None
        assert 90 < ttl <= 100
        await store.update(key, {"a": b"\x01"}, [], META, 1000)
        ttl = await self.remaining_ttl(store, key)
        assert ttl is not None
        assert 900 < ttl <= 1000
        await store.update(key, {}, ["a"], META, 50)
        ttl = await self.remaining_ttl(store, key)
        assert ttl is not None
        assert 40 < ttl <= 50

    async def test_keys_are_independent(self, store: Store, key: str) -> None:
        other = key[::-1]
        await store.create(key, Record({"a": b"\x01"}, META), 60)
        await store.create(other, Record({"b": b"\x02"}, META), 60)
        await store.delete(key)
        assert await store.load(other) == Record({"b": b"\x02"}, META)
