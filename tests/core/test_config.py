"""One validated configuration, shared by the middleware, adapters and open_session; read
from the environment too. And the public API by audience."""

from __future__ import annotations

import inspect
from datetime import timedelta
from typing import Any

import pytest

import sesh.core
from sesh.core import (
    ConfigurationError,
    SessionConfig,
    SessionEngine,
    SessionError,
    SessionMiddleware,
    open_session,
)
from sesh.core import store as store_api
from sesh.core.testing import Client, FakeClock, make_session, responder
from sesh.stores.cookie import CookieStore
from sesh.stores.memory import MemoryStore
from sesh.stores.redis import RedisStore

from conftest import SECRET

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_age": -1}, "max_age must be 0 or more"),
        ({"max_age": "14 days"}, "max_age must be a number of seconds"),
        ({"secret_key": 12345}, "secret_key must be a str, bytes, or a list"),
        ({"secret_key": "short"}, "at least 32 bytes"),
        ({"on_store_error": "ignore"}, "on_store_error"),
        ({"samesite": "none", "secure": False}, "samesite='none' needs secure=True"),
    ],
)
def test_a_bad_option_fails_where_the_config_is_built(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SessionConfig(**options)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=message):  # and at import, not per request
        SessionMiddleware(responder(), **options)  # type: ignore[arg-type]


def test_a_store_class_instead_of_an_instance_names_the_fix() -> None:
    with pytest.raises(ConfigurationError, match=r"pass an instance, MemoryStore\(\.\.\.\)"):
        SessionMiddleware(responder(), store=MemoryStore)  # type: ignore[arg-type]


def test_a_config_and_keyword_options_together_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="not both"):
        SessionMiddleware(responder(), config=SessionConfig(), max_age=60)


async def test_a_worker_shares_the_apps_config_and_so_its_idle_timeout(clock: FakeClock) -> None:
    store = MemoryStore(clock=clock)
    config = SessionConfig(idle_timeout=timedelta(minutes=30), clock=clock)
    client = Client(SessionMiddleware(responder(lambda s: s.update(a=1)), store, config=config))
    await client.request()
    seen: dict[str, Any] = {}
    client.app = SessionMiddleware(
        responder(lambda s: seen.update(id=s.id, expires_at=s.expires_at)), store, config=config
    )
    await client.request()
    session_id, expires_at = seen["id"], seen["expires_at"]
    async with open_session(store, session_id, config=config) as session:
        session["report"] = "ready"
        assert session.expires_at == clock() + 30 * 60
    assert expires_at == clock() + 30 * 60
    clock.advance(31 * 60)  # the worker's write did not stretch the session to max_age
    client.app = SessionMiddleware(responder(lambda s: dict(s)), store, config=config)
    assert (await client.request()).text == "{}"


def test_the_environment_gives_a_config() -> None:
    environ = {
        "SESH_SECRET_KEY": SECRET,
        "SESH_SECRET_KEY_FALLBACKS": "an-older-secret-that-is-long-enough-0123456789",
        "SESH_MAX_AGE": "3600",
        "SESH_IDLE_TIMEOUT": "600",
        "SESH_SECURE": "true",
        "SESH_COOKIE_NAME": "sid",
        "SESH_REDIS_URL": "redis://127.0.0.1:6379",  # a store's address: left alone
        "OTHER": "ignored",
    }
    config = SessionConfig.from_env(environ, samesite="strict")
    assert config == SessionConfig(
        secret_key=[SECRET, "an-older-secret-that-is-long-enough-0123456789"],
        max_age=3600,
        idle_timeout=600,
        secure=True,
        cookie_name="sid",
        samesite="strict",
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SESH_MAX_AGE": "two weeks"}, "SESH_MAX_AGE must be a number of seconds"),
        ({"SESH_SECURE": "maybe"}, "SESH_SECURE must be true or false"),
        ({"SESH_MAXAGE": "60"}, "SESH_MAXAGE names no sesh option"),
        ({"SESH_SECRET_KEY_FALLBACKS": SECRET}, "without SESH_SECRET_KEY"),
    ],
)
def test_a_bad_environment_names_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SessionConfig.from_env(environ)


def test_the_error_never_repeats_a_secret() -> None:
    with pytest.raises(ConfigurationError) as raised:
        SessionConfig.from_env({"SESH_SECRET_KEY": "short-secret-value"})
    assert "short-secret-value" not in str(raised.value)


# -- the public API, by audience ---------------------------------------------------------------


def test_every_error_sesh_raises_is_a_session_error_and_the_builtin_expected() -> None:
    errors = [
        value
        for value in vars(sesh.core).values()
        if inspect.isclass(value) and issubclass(value, BaseException)
    ]
    assert {error.__name__ for error in errors} >= {"SessionTooLarge", "SessionUnavailable"}
    for error in errors:
        assert issubclass(error, SessionError)
        assert len(error.__mro__) > 3, f"{error.__name__} derives from no builtin besides"
    assert issubclass(sesh.core.StoreUnavailable, ConnectionError)
    assert issubclass(sesh.core.SessionNotFound, LookupError)
    assert issubclass(sesh.core.ConfigurationError, ValueError)
    assert issubclass(sesh.core.SessionDataError, TypeError)


def test_store_authors_find_everything_in_one_module() -> None:
    for name in ("Store", "ClientStore", "Record", "StoreUnavailable", "PurgeableStore",
                 "ClosableStore", "UserIndexStore", "Meta", "Unsealed", "encode_meta"):  # fmt: skip
        assert name in store_api.__all__
        assert hasattr(store_api, name)
    assert set(sesh.core.__all__).isdisjoint({"Store", "Record", "ClientStore"})


def test_stores_are_told_apart_by_their_capabilities() -> None:
    memory = MemoryStore()
    redis_store = RedisStore("redis://127.0.0.1:6379")
    cookie = CookieStore(SECRET)
    assert isinstance(memory, store_api.Store)
    assert isinstance(memory, store_api.PurgeableStore)
    assert not isinstance(memory, store_api.ClosableStore)
    assert isinstance(redis_store, store_api.Store)
    assert isinstance(redis_store, store_api.ClosableStore)
    assert not isinstance(redis_store, store_api.PurgeableStore)  # Redis expires keys itself
    assert isinstance(cookie, store_api.ClientStore)
    assert not isinstance(cookie, store_api.Store)


async def test_the_engine_uses_the_capabilities_a_store_has(clock: FakeClock) -> None:
    memory = MemoryStore(clock=clock)
    engine = SessionEngine(memory, clock=clock)
    await make_session(memory, {"a": 1}, config=engine.config)
    clock.advance(15 * 86400)  # past max_age: the record lingers until swept
    assert len(memory) == 1
    assert await engine.purge_expired() == 1
    assert len(memory) == 0
    await engine.aclose()  # a MemoryStore holds no connection: nothing to do

    closed: list[bool] = []

    class Closable(MemoryStore):
        async def aclose(self) -> None:
            closed.append(True)

    closing = SessionEngine(Closable())
    await closing.aclose()
    assert closed == [True]
    assert await SessionEngine(CookieStore(SECRET)).purge_expired() == 0
