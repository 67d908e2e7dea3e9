"""OpenTelemetry for sesh: a span per store operation, counters of their results and a
latency histogram (``pip install sesh[otel]``; the app sets up the SDK and its exporters).

    store = instrument(RedisStore(url))           # then use it as the store itself
    app = SessionMiddleware(app, store=store)

:func:`instrument` wraps a server-side store. What it emits carries the operation, its
result and the store's class, and never a session id, a store key, a user or any data:

========================  =========================================================
``sesh.store <op>``       a span per call: ``load``, ``create``, ``update``, ``touch``,
                          ``delete``, ``index_add``, ``index_members``,
                          ``index_remove``, ``purge_expired``
``sesh.store.operations`` a counter, by ``sesh.store.operation`` and ``sesh.store.result``
``sesh.store.duration``   a histogram of each call's seconds, by the same attributes
========================  =========================================================

The results: ``hit`` and ``miss`` (load, delete), ``created`` and ``collision`` (create),
``updated`` (update, touch), ``refused_resurrection`` (an update or touch of a session that
ended meanwhile: the store does not recreate it), ``ok`` (the index and purge calls),
``outage`` (:class:`~sesh.core.StoreUnavailable`) and ``error`` (anything else raised).
Each span also holds ``sesh.store.system``, the store's class name.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from typing import Any, TypeVar

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from sesh.core.errors import ConfigurationError, StoreUnavailable
from sesh.core.store import (
    ClientStore,
    ClosableStore,
    ForeignIds,
    PurgeableStore,
    Record,
    Store,
    UserIndexStore,
)

__all__ = ["instrument"]

T = TypeVar("T")
SCOPE = "sesh"
# Store calls take from tens of microseconds (memory) to a deadline of seconds (an outage):
# the default buckets, made for milliseconds, would put every call in the first one.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)


def instrument(
    store: Store,
    *,
    tracer_provider: trace.TracerProvider | None = None,
    meter_provider: metrics.MeterProvider | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> Store:
    """``store``, with every call traced and measured. The providers default to the
    global ones OpenTelemetry's SDK sets up; ``timer`` measures the latency. The wrapper
    offers exactly the capabilities of ``store`` (a per-user index, a purge, ...): keep
    ``store`` itself for its own methods, such as ``create_table()``."""
    if isinstance(store, ClientStore):
        raise ConfigurationError(
            "a cookie store keeps sessions in the browser and makes no store calls to trace; "
            "instrument a server-side store (RedisStore, SQLStore, ...)"
        )
    if isinstance(store, _Traced):
        raise ConfigurationError("this store is instrumented already: instrument it once")
    capabilities = tuple(mixin for protocol, mixin in _CAPABILITIES if isinstance(store, protocol))
    kind = _KINDS.get(capabilities)
    if kind is None:
        kind = type("InstrumentedStore", (*capabilities, _Traced), {})
        _KINDS[capabilities] = kind
    return kind(store, tracer_provider, meter_provider, timer)  # type: ignore[no-any-return]


class _Traced:
    """The five calls every store has, each in a span and counted."""

    def __init__(
        self,
        inner: Store,
        tracer_provider: trace.TracerProvider | None,
        meter_provider: metrics.MeterProvider | None,
        timer: Callable[[], float],
    ) -> None:
        self.inner = inner
        self._system = type(inner).__name__
        self._tracer = trace.get_tracer(SCOPE, tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, meter_provider=meter_provider)
        self._operations = meter.create_counter(
            "sesh.store.operations", unit="{operation}", description="Session store calls"
        )
        self._duration = meter.create_histogram(
            "sesh.store.duration",
            unit="s",
            description="How long each session store call took",
            explicit_bucket_boundaries_advisory=BUCKETS,
        )
        self._timer = timer

    def __repr__(self) -> str:
        return f"instrument({self.inner!r})"

    async def _call(self, operation: str, call: Awaitable[T], result: Callable[[T], str]) -> T:
        span = self._tracer.start_span(f"sesh.store {operation}", kind=SpanKind.CLIENT)
        started = self._timer()
        try:
            if span.is_recording():
                # Made current only when an SDK records it, so that the spans of the store's
                # own client (redis-py's instrumentation, say) nest under it. Making a span
                # current costs ten times what starting one does: without an SDK, doing it
                # anyway would be most of what instrument() adds to a request
                # (benchmarks/observability.py: 1.64x a memory-store request, not 1.20x).
                with trace.use_span(span, record_exception=False, set_status_on_exception=False):
                    answer = await call
            else:
                answer = await call
        except BaseException as error:
            # Only the exception's class: its message may quote what it was given.
            outcome = "outage" if isinstance(error, StoreUnavailable) else "error"
            span.set_status(Status(StatusCode.ERROR, type(error).__name__))
            self._record(span, operation, outcome, started)
            raise
        else:
            self._record(span, operation, result(answer), started)
            return answer
        finally:
            span.end()

    def _record(self, span: trace.Span, operation: str, outcome: str, started: float) -> None:
        attributes = {
            "sesh.store.operation": operation,
            "sesh.store.result": outcome,
            "sesh.store.system": self._system,
        }
        span.set_attributes(attributes)
        self._operations.add(1, attributes)
        self._duration.record(max(0.0, self._timer() - started), attributes)

    async def load(self, key: str) -> Record | None:
        return await self._call("load", self.inner.load(key), _found)

    async def create(self, key: str, record: Record, ttl: float) -> bool:
        return await self._call(
            "create",
            self.inner.create(key, record, ttl),
            lambda stored: "created" if stored else "collision",
        )

    async def update(
        self,
        key: str,
        changed: Mapping[str, bytes],
        removed: Collection[str],
        meta: bytes,
        ttl: float,
    ) -> bool:
        return await self._call(
            "update", self.inner.update(key, changed, removed, meta, ttl), _kept
        )

    async def touch(self, key: str, meta: bytes, ttl: float) -> bool:
        return await self._call("touch", self.inner.touch(key, meta, ttl), _kept)

    async def delete(self, key: str) -> bool:
        return await self._call("delete", self.inner.delete(key), _found)


def _found(answer: object) -> str:
    return "miss" if answer is None or answer is False else "hit"


def _kept(existed: bool) -> str:
    return "updated" if existed else "refused_resurrection"


def _ok(_: object) -> str:
    return "ok"


class _Index:
    inner: Any
    _call: Any

    async def index_add(self, user: str, key: str, ttl: float, limit: int) -> list[str]:
        dropped: list[str] = await self._call(
            "index_add", self.inner.index_add(user, key, ttl, limit), _ok
        )
        return dropped

    async def index_members(self, user: str) -> list[str]:
        members: list[str] = await self._call("index_members", self.inner.index_members(user), _ok)
        return members

    async def index_remove(self, user: str, keys: Collection[str]) -> None:
        await self._call("index_remove", self.inner.index_remove(user, keys), _ok)


class _Purge:
    inner: Any
    _call: Any

    async def purge_expired(self) -> int:
        purged: int = await self._call("purge_expired", self.inner.purge_expired(), _ok)
        return purged


class _Close:
    inner: Any

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Foreign:
    """Another framework's ids (DjangoStore): the engine asks the store for them."""

    inner: Any

    @property
    def framework(self) -> str:
        return str(self.inner.framework)

    @property
    def cookie_name(self) -> str:
        return str(self.inner.cookie_name)

    def new_id(self) -> str:
        return str(self.inner.new_id())

    def is_id(self, value: str) -> bool:
        return bool(self.inner.is_id(value))


_CAPABILITIES: tuple[tuple[type, type], ...] = (
    (UserIndexStore, _Index),
    (PurgeableStore, _Purge),
    (ClosableStore, _Close),
    (ForeignIds, _Foreign),
)
_KINDS: dict[tuple[type, ...], type] = {}
