"""Memory: bytes per stored session in MemoryStore, at 100,000 ten-key sessions."""

from __future__ import annotations

import asyncio
import gc
import secrets
import tracemalloc

from sesh.core.codec import encode_value
from sesh.core.store import Meta, Record, encode_meta
from sesh.core.tokens import new_id, store_key
from sesh.stores.memory import MemoryStore


def ten_keys() -> dict[str, bytes]:
    """A typical logged-in session, encoded as the engine encodes it."""
    values = {
        "user_id": 48213, "name": "Ada Lovelace", "role": "member", "lang": "en",
        "tz": "Europe/London", "theme": "dark", "visits": 17, "cart": [3, 14],
        "csrf": secrets.token_urlsafe(24), "flash": None,
    }  # fmt: skip
    return {key: encode_value(key, value) for key, value in values.items()}


async def bytes_per_session(count: int = 100_000) -> float:
    store = MemoryStore(max_entries=count + 1)
    meta = encode_meta(Meta(1.8e9, 1.8e9 + 1209600, 1.8e9, False))
    records = [Record(ten_keys(), meta) for _ in range(count)]  # the store copies them
    ids = [new_id() for _ in range(count)]
    gc.collect()
    tracemalloc.start()
    before, _ = tracemalloc.get_traced_memory()
    for session_id, record in zip(ids, records, strict=True):
        await store.create(store_key(session_id), record, 1209600)  # its key counts too
    gc.collect()
    after, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(store) == count
    return (after - before) / count


if __name__ == "__main__":
    print(f"{asyncio.run(bytes_per_session()):.0f} bytes per ten-key session")
