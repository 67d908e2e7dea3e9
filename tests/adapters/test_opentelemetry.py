"""The OpenTelemetry integration, read back from the SDK's in-memory exporter and reader:
a span per store call, counters by result, a latency histogram, and nothing that names a
session, a user or their data."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from itertools import count
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from sesh.adapters.opentelemetry import instrument
from sesh.core import ConfigurationError, Session, SessionMiddleware, open_session
from sesh.core.identity import login
from sesh.core.store import ClosableStore, ForeignIds, PurgeableStore, Store, UserIndexStore
from sesh.core.testing import Client, FakeClock, responder
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore
from sesh.stores.redis import RedisStore
from sesh.stores.sql import SQLStore

from support.spy import SpyStore

pytestmark = pytest.mark.anyio
SECRET = "an-otel-test-secret-0123456789-abcdef"
SECRET_DATA = "the-users-secret-data"


class Telemetry:
    """An SDK of the test's own: spans into memory, metrics read on demand."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def wrap(self, store: Store, **options: Any) -> Store:
        return instrument(
            store,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            **options,
        )

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        assert data is not None
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == name
            for point in metric.data.data_points
        ]

    def counts(self) -> Counter[tuple[str, str]]:
        return Counter(
            {
                (p.attributes["sesh.store.operation"], p.attributes["sesh.store.result"]): p.value
                for p in self.points("sesh.store.operations")
            }
        )


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    telemetry = Telemetry()
    yield telemetry
    telemetry.tracer_provider.shutdown()
    telemetry.meter_provider.shutdown()


def app(store: Store, clock: FakeClock, action: Any = dict) -> SessionMiddleware:
    return SessionMiddleware(responder(action), store=store, secret_key=SECRET, clock=clock)


async def test_each_store_call_is_a_span_counted_by_its_result(
    any_store: Store, telemetry: Telemetry, clock: FakeClock
) -> None:
    store = telemetry.wrap(any_store)
    ids: list[str] = []

    def sign_in(session: Session) -> None:
        login(session, "ada@example.com")
        session["secret"] = SECRET_DATA
        ids.append(session.id)

    client = Client(app(store, clock, sign_in))
    await client.request()  # created, and noted in the user's index
    client.app = app(store, clock, lambda s: s.update(theme="dark"))
    await client.request()  # hit, updated
    cookie = client.jar["session"]
    async with open_session(store, ids[0], secret_key=SECRET, clock=clock) as session:
        client.app = app(store, clock, lambda s: s.invalidate())
        await client.request()  # hit, and the logout's delete
        session["report"] = "ready"  # the worker's update finds the session gone
    await client.request(headers=[(b"cookie", f"session={cookie}".encode())])  # a miss

    assert telemetry.counts() == {
        ("load", "hit"): 3,
        ("load", "miss"): 1,
        ("create", "created"): 1,
        ("index_add", "ok"): 1,
        ("update", "updated"): 1,
        ("update", "refused_resurrection"): 1,
        ("delete", "hit"): 1,
    }
    spans = telemetry.finished()
    assert sorted(span.name for span in spans) == sorted(
        ["sesh.store load"] * 4
        + ["sesh.store create", "sesh.store index_add", "sesh.store delete"]
        + ["sesh.store update"] * 2
    )
    systems = {dict(span.attributes or {})["sesh.store.system"] for span in spans}
    assert systems == {type(any_store).__name__}
    durations = telemetry.points("sesh.store.duration")
    assert sum(point.count for point in durations) == len(spans)
    # Nothing that names the session, its user or its data, anywhere.
    said = repr([(s.name, dict(s.attributes or {}), s.events, s.status) for s in spans])
    said += repr([p.attributes for p in telemetry.points("sesh.store.operations")])
    for secret in [ids[0], cookie, "ada@example.com", SECRET_DATA, "ready", "dark"]:
        assert secret not in said


async def test_an_outage_is_counted_and_its_span_fails_without_its_message(
    telemetry: Telemetry, clock: FakeClock
) -> None:
    spy = SpyStore(MemoryStore(clock=clock))
    store = telemetry.wrap(spy)
    client = Client(app(store, clock, lambda s: s.update(a=1)))
    await client.request()
    spy.down = True
    response = await client.request()
    assert response.status == 503
    assert telemetry.counts()[("load", "outage")] == 1
    [failed] = [s for s in telemetry.finished() if s.status.status_code is StatusCode.ERROR]
    assert failed.name == "sesh.store load"
    assert failed.status.description == "StoreUnavailable"
    assert failed.events == ()  # no exception event: its message is not ours to export


async def test_the_histogram_measures_with_the_given_timer(telemetry: Telemetry) -> None:
    ticks = count(step=0.004)
    store = telemetry.wrap(MemoryStore(), timer=lambda: float(next(ticks)))
    assert await store.load("k" * 48) is None
    assert await store.delete("k" * 48) is False
    points = telemetry.points("sesh.store.duration")
    assert sorted(p.attributes["sesh.store.result"] for p in points) == ["miss", "miss"]
    assert [p.sum for p in points] == pytest.approx([0.004, 0.004])
    assert all(p.explicit_bounds[0] < 0.001 for p in points)  # buckets for store calls


def test_the_wrapper_has_the_capabilities_of_the_store_and_no_more() -> None:
    class Bare:
        async def load(self, key: str) -> None:
            return None

        async def create(self, *args: Any) -> bool:
            return True

        async def update(self, *args: Any) -> bool:
            return True

        async def touch(self, *args: Any) -> bool:
            return True

        async def delete(self, key: str) -> bool:
            return True

    stores: list[Any] = [
        MemoryStore(),
        RedisStore("redis://127.0.0.1:1/0"),  # no connection is made to build one
        SQLStore("sqlite+aiosqlite://"),
        Bare(),
    ]
    for store in stores:
        wrapped = instrument(store)
        for protocol in (UserIndexStore, PurgeableStore, ClosableStore, ForeignIds):
            assert isinstance(wrapped, protocol) == isinstance(store, protocol), (store, protocol)
        assert isinstance(wrapped, Store)


def test_what_cannot_be_instrumented_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cookie store"):
        instrument(CookieStore(SECRET))  # type: ignore[arg-type]
    once = instrument(MemoryStore())
    with pytest.raises(ConfigurationError, match="instrumented already"):
        instrument(once)


async def test_spans_of_the_stores_own_client_nest_under_the_store_call(
    telemetry: Telemetry,
) -> None:
    tracer = telemetry.tracer_provider.get_tracer("a-redis-client-instrumentation")

    class ClientTraced(MemoryStore):
        async def load(self, key: str) -> Any:
            with tracer.start_as_current_span("GET"):
                return await super().load(key)

    store = telemetry.wrap(ClientTraced())
    assert await store.load("k" * 48) is None
    client_span, store_span = telemetry.finished()
    assert (client_span.name, store_span.name) == ("GET", "sesh.store load")
    assert client_span.parent is not None
    assert store_span.context is not None
    assert client_span.parent.span_id == store_span.context.span_id


async def test_without_an_sdk_the_store_answers_as_before() -> None:
    store = instrument(MemoryStore())  # the API's own no-op providers: nothing recorded
    client = Client(SessionMiddleware(responder(lambda s: s.update(a=1)), store=store))
    await client.request()
    client.app = SessionMiddleware(responder(dict), store=store)
    assert (await client.request()).text == "{'a': 1}"
