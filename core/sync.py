"""Stored sessions from sync code: Celery tasks, scripts, a thread of a sync framework.

    sessions = SyncSessions(RedisStore(url), config=config)   # at import, once

    @celery_app.task
    def build_report(session_id: str) -> None:
        with sessions.open(session_id) as session:
            session["report"] = "ready"

``open`` is :func:`sesh.core.open_session` with a ``with`` instead of an ``async with``: the
same engine and the same rules (only changed keys written, a session ended meanwhile never
recreated, :class:`~sesh.core.SessionNotFound` for one that is gone).

The stores are asyncio code, and an asyncio client (redis-py's, SQLAlchemy's) belongs to
the event loop it first ran on. So a ``SyncSessions`` runs its store on an event loop of
its own, in a daemon thread that it starts at the first ``open`` of each process: built at
import, it serves every process a prefork worker (Celery's default) forks, each on its own
connections. So give it a store object of its own (the same URL and prefix as the app's),
never the app's: a Redis or SQL store belongs to the app's loop. A MemoryStore, which
holds no connections, may be shared within one process.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from .config import SessionConfig, SessionOptions
from .engine import SessionEngine
from .session import Session
from .store import ClientStore, Store

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["SyncSessions"]

T = TypeVar("T")


class SyncSessions:
    """Opens stored sessions by id from sync code; see the module docstring.

    ``config`` is the app's own :class:`~sesh.core.SessionConfig` (share the object, so that
    lifetimes agree), or the options as keywords. Usable as a context manager;
    :meth:`close` releases the store's connections and stops the thread.
    """

    def __init__(
        self,
        store: Store | ClientStore,
        config: SessionConfig | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        self.engine = SessionEngine(store, config, **options)
        self.engine.check_opens_stored()  # at import, not at the first task
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0

    @contextmanager
    def open(self, session_id: str) -> Iterator[Session]:
        """The stored session ``session_id``, committed when the block ends without error.
        :class:`~sesh.core.SessionNotFound` if no live session has this id;
        :class:`~sesh.core.StoreUnavailable` when the store fails."""
        opened = self.engine.open_stored(session_id)
        session = self._run(opened.__aenter__())
        try:
            yield session
        except BaseException as error:
            if not self._run(opened.__aexit__(type(error), error, error.__traceback__)):
                raise
        else:
            self._run(opened.__aexit__(None, None, None))

    def close(self) -> None:
        """Release the store's connections and stop the thread (if this process started
        one). Opening again afterwards starts another."""
        with self._lock:
            loop, self._loop = self._loop, None
            if loop is None or self._pid != os.getpid():
                return
        try:
            asyncio.run_coroutine_threadsafe(self.engine.aclose(), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)

    def __enter__(self) -> SyncSessions:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coroutine.close()
            raise RuntimeError(
                "SyncSessions.open blocks, and this thread runs an event loop: in async code, "
                "use `async with open_session(store, session_id)` instead"
            )
        return asyncio.run_coroutine_threadsafe(coroutine, self._thread_loop()).result()

    def _thread_loop(self) -> asyncio.AbstractEventLoop:
        """This process's loop, started on first use: a forked child has the parent's
        attributes but none of its threads, so it starts its own."""
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_serve, args=(loop,), name="sesh-sync-sessions", daemon=True
                )
                thread.start()
                self._loop, self._pid = loop, os.getpid()
            return self._loop


def _serve(loop: asyncio.AbstractEventLoop) -> None:
    try:
        loop.run_forever()
    finally:
        loop.close()
