"""DjangoStore against the real Django, on real SQLite, PostgreSQL and MariaDB: Django's
rows read by sesh and sesh's read by Django, logins both ways, rotation, expiry, and the
store and session contracts."""

from __future__ import annotations

import base64
import json
import re
import time
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sesh.adapters.fastapi import SessionDep
from sesh.core import SessionEngine, SessionMiddleware
from sesh.core.errors import ConfigurationError
from sesh.core.identity import list_sessions, logout_everywhere
from sesh.core.store import Record, Store, UserIndexStore
from sesh.core.testing import (
    META,
    Client,
    FakeClock,
    SessionContract,
    StoreContract,
    UserIndexContract,
    responder,
)
from sesh.stores.django import DjangoStore

from conftest import SQL_SERVERS
from support import django_project
from support.databases import Databases

pytestmark = pytest.mark.anyio
on_every_server = pytest.mark.parametrize("sql_server", SQL_SERVERS, indirect=True)


@pytest.fixture(scope="session")
def django_settings(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """Django, configured once for the run: one database alias per server."""
    folder = tmp_path_factory.mktemp("django")
    django_project.configure(
        {name: databases.django_settings(name, folder) for name in SQL_SERVERS},
        [django_project.OLD_SECRET_KEY],
    )
    yield folder
    django_project.close()


@pytest.fixture
async def django_engine(
    sql_server: str, databases: Databases, django_settings: Path
) -> AsyncIterator[AsyncEngine]:
    """An engine on the database Django uses now, its tables made and emptied after."""
    await django_project.use(sql_server)
    engine = databases.engine(sql_server, django_settings)
    users = django_store(engine).users
    await users.create()
    yield engine
    async with engine.begin() as conn:
        await conn.run_sync(users.table.drop)
    await engine.dispose()
    await django_project.call(_empty_tables)


def _empty_tables() -> None:
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.models import Session

    Session.objects.all().delete()
    get_user_model().objects.all().delete()


@pytest.fixture
def sesh_clock() -> FakeClock:
    return FakeClock()


def django_store(engine: AsyncEngine, **options: Any) -> DjangoStore:
    options.setdefault("secret_key", django_project.SECRET_KEY)
    options.setdefault("secret_key_fallbacks", [django_project.OLD_SECRET_KEY])
    return DjangoStore(engine, **options)


async def remaining_ttl(store: Store, key: str) -> float | None:
    assert isinstance(store, DjangoStore)
    async with store.database.engine.connect() as conn:
        row = (
            await conn.exec_driver_sql(
                store.database.statement(
                    "SELECT expire_date FROM django_session WHERE session_key = %s"
                ),
                (key,),
            )
        ).first()
    if row is None:
        return None
    return store._times.from_db(row[0]) - store._clock()


@on_every_server
class TestDjangoStoreContract(StoreContract, UserIndexContract):
    @pytest.fixture
    def store(self, django_engine: AsyncEngine, clock: FakeClock) -> DjangoStore:
        return django_store(django_engine, clock=clock)

    async def let_pass(self, store: UserIndexStore, seconds: float) -> None:
        assert isinstance(store, DjangoStore)
        store._clock.advance(seconds)  # type: ignore[attr-defined]

    @pytest.fixture
    def key(self) -> str:
        return "a3f1" * 8  # Django's keys: 32 characters, and its column holds 40

    async def remaining_ttl(self, store: Store, key: str) -> float | None:
        return await remaining_ttl(store, key)


@on_every_server
class TestDjangoSessions(SessionContract):
    @pytest.fixture
    def session_store(self, django_engine: AsyncEngine, clock: FakeClock) -> DjangoStore:
        return django_store(django_engine, clock=clock)


# -- the real Django beside a FastAPI app on the same rows -------------------------------------


class DjangoBrowser:
    """A browser of the Django project: Django's test client, on Django's thread."""

    def __init__(self) -> None:
        from django.test import Client as DjangoClient

        self._client = DjangoClient()

    async def get(self, path: str, **params: Any) -> str:
        def fetch() -> str:
            response = self._client.get(path, params)
            assert response.status_code == 200, (path, response.status_code)
            content: bytes = response.content
            return content.decode()

        return await django_project.call(fetch)

    @property
    def session_id(self) -> str | None:
        morsel = self._client.cookies.get("sessionid")
        return morsel.value if morsel is not None and morsel.value else None

    @session_id.setter
    def session_id(self, value: str) -> None:
        self._client.cookies["sessionid"] = value


def sesh_app(store: DjangoStore, engine: AsyncEngine) -> Any:
    """The async side: a FastAPI app on DjangoStore, as the README's example writes it."""
    app = FastAPI()
    app.add_middleware(SessionMiddleware, store=store, cookie_name="sessionid")

    async def password_of(user_id: str) -> str | None:
        async with engine.connect() as conn:
            query = text("SELECT password FROM auth_user WHERE id = :id")
            found: str | None = (await conn.execute(query, {"id": int(user_id)})).scalar()
            return found

    @app.get("/show")
    async def show(session: SessionDep) -> dict[str, Any]:
        return {k: v for k, v in session.items() if not k.startswith("_auth")}

    @app.get("/set")
    async def set_values(session: SessionDep, values: str) -> str:
        session.update(json.loads(values))
        return "ok"

    @app.get("/expiry")
    async def set_expiry(session: SessionDep, seconds: int) -> str:
        session["touched"] = True
        session.set_expiry(seconds)
        return "ok"

    @app.get("/expires")
    async def expires(session: SessionDep) -> float:
        return session.expires_at - time.time()

    @app.get("/login")
    async def login(session: SessionDep, user: str) -> str:
        async with engine.connect() as conn:
            query = text("SELECT id, password FROM auth_user WHERE username = :name")
            user_id, password = (await conn.execute(query, {"name": user})).one()
        store.login(session, user_id, password)
        return "ok"

    @app.get("/whoami")
    async def whoami(session: SessionDep) -> str | None:
        return await store.user_id(session, password_of)

    return app


@pytest.fixture
def shared(django_engine: AsyncEngine) -> tuple[DjangoStore, Client, DjangoBrowser]:
    store = django_store(django_engine)
    return store, Client(sesh_app(store, django_engine)), DjangoBrowser()


Shared = tuple[DjangoStore, Client, DjangoBrowser]


async def sesh_get(client: Client, path: str) -> Any:
    response = await client.request(path)
    assert response.status == 200, (path, response.status, response.text)
    return json.loads(response.text)


def hand_over(client: Client, browser: DjangoBrowser, *, to: str) -> None:
    """The same browser, going from one app to the other: one cookie jar."""
    if to == "sesh":
        assert browser.session_id is not None
        client.jar["sessionid"] = browser.session_id
    else:
        browser.session_id = client.jar["sessionid"]


@on_every_server
async def test_django_writes_and_sesh_reads(shared: Shared) -> None:
    _, client, browser = shared
    await browser.get("/set/", a="1", b='"x"', nested='{"list": [1, 2.5, null]}')
    hand_over(client, browser, to="sesh")
    assert await sesh_get(client, "/show") == {"a": 1, "b": "x", "nested": {"list": [1, 2.5, None]}}


@on_every_server
async def test_sesh_writes_and_django_reads_merging_with_its_keys(shared: Shared) -> None:
    _, client, browser = shared
    await sesh_get(client, "/set?values=" + quote(json.dumps({"cart": [3, 4], "name": "ada"})))
    hand_over(client, browser, to="django")
    await browser.get("/set/", theme='"dark"')
    shown = json.loads(await browser.get("/show/"))["values"]
    assert {k: shown[k] for k in ("cart", "name", "theme")} == {
        "cart": [3, 4],
        "name": "ada",
        "theme": "dark",
    }
    await sesh_get(client, "/set?values=" + quote(json.dumps({"name": "bob"})))
    assert await sesh_get(client, "/show") == {"cart": [3, 4], "name": "bob", "theme": "dark"}


@on_every_server
async def test_signed_exactly_as_django_signs(shared: Shared) -> None:
    store = shared[0]

    def django_dumps() -> str:
        from django.core import signing

        values = {"a": 1, "long": "x" * 200, "\u00e9": [None, True]}
        made: str = signing.dumps(
            values, salt="django.contrib.sessions.SessionStore", compress=True
        )
        return made

    made = await django_project.call(django_dumps)
    stamp = made.rsplit(":", 2)[1]
    now = sum(
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".index(c) * 62**i
        for i, c in enumerate(reversed(stamp))
    )
    assert made.startswith(".")  # compressed: the long value made it worth it
    assert store.signer.dumps({"a": 1, "long": "x" * 200, "\u00e9": [None, True]}, now) == made


@on_every_server
async def test_rotation_with_fallbacks(shared: Shared, django_engine: AsyncEngine) -> None:
    _, client, browser = shared
    # Written under the project's previous SECRET_KEY, before the rotation.
    before = DjangoStore(django_engine, secret_key=django_project.OLD_SECRET_KEY)
    old_client = Client(sesh_app(before, django_engine))
    await sesh_get(old_client, "/set?values=" + quote(json.dumps({"kept": 1})))
    # Django (SECRET_KEY_FALLBACKS = [old]) and sesh (the same fallbacks) both read it.
    client.jar["sessionid"] = old_client.jar["sessionid"]
    assert await sesh_get(client, "/show") == {"kept": 1}
    browser.session_id = old_client.jar["sessionid"]
    assert json.loads(await browser.get("/show/"))["values"]["kept"] == 1
    # Without the fallback the old key verifies nothing: no session.
    strict = Client(sesh_app(django_store(django_engine, secret_key_fallbacks=[]), django_engine))
    strict.jar["sessionid"] = old_client.jar["sessionid"]
    assert await sesh_get(strict, "/show") == {}


@on_every_server
async def test_expiry_round_trips_both_ways(shared: Shared) -> None:
    _, client, browser = shared
    await browser.get("/set/", a="1")
    await browser.get("/expiry/", seconds="0")  # Django: until the browser closes
    hand_over(client, browser, to="sesh")
    await sesh_get(client, "/set?values=" + quote(json.dumps({"b": 2})))
    shown = json.loads(await browser.get("/show/"))
    assert shown["expiry"]["browser"] is True  # sesh's write kept it

    await sesh_get(client, "/expiry?seconds=300")  # sesh: five minutes
    shown = json.loads(await browser.get("/show/"))
    assert shown["expiry"]["browser"] is False
    assert 290 <= shown["expiry"]["age"] <= 300
    await sesh_get(client, "/expiry?seconds=0")
    assert json.loads(await browser.get("/show/"))["expiry"]["browser"] is True

    await browser.get("/expiry/", seconds="600")  # Django again: sesh follows
    assert 590 <= await sesh_get(client, "/expires") <= 600
    await sesh_get(client, "/set?values=" + quote(json.dumps({"c": 3})))
    shown = json.loads(await browser.get("/show/"))
    assert shown["expiry"]["browser"] is False
    assert 590 <= shown["expiry"]["age"] <= 600


@on_every_server
async def test_an_expired_row_is_no_session_on_either_side(
    shared: Shared, django_engine: AsyncEngine
) -> None:
    store, client, browser = shared
    await sesh_get(client, "/set?values=" + quote(json.dumps({"a": 1})))
    async with django_engine.begin() as conn:
        past = store._times.to_db(time.time() - 1)
        await conn.exec_driver_sql(
            store.database.statement("UPDATE django_session SET expire_date = %s"), (past,)
        )
    hand_over(client, browser, to="django")
    assert json.loads(await browser.get("/show/"))["values"] == {}
    assert await sesh_get(client, "/show") == {}


async def _make_user(name: str, password: str) -> None:
    def make() -> None:
        from django.contrib.auth import get_user_model

        get_user_model().objects.create_user(name, password=password)

    await django_project.call(make)


async def log_in_with_django(browser: DjangoBrowser) -> None:
    """A user "ada", logged in by Django's own login view."""
    await _make_user("ada", "pw-ada")
    assert await browser.get("/login/", user="ada", password="pw-ada") == "ok"


@on_every_server
async def test_a_django_login_is_seen_by_fastapi(shared: Shared) -> None:
    _, client, browser = shared
    await log_in_with_django(browser)
    hand_over(client, browser, to="sesh")
    user_id = await sesh_get(client, "/whoami")
    assert isinstance(user_id, str)
    assert user_id.isdigit()
    assert await browser.get("/whoami/") == "ada"


@on_every_server
async def test_a_fastapi_login_is_seen_by_django(shared: Shared) -> None:
    _, client, browser = shared
    await _make_user("ada", "pw-ada")
    await sesh_get(client, "/set?values=" + quote(json.dumps({"cart": [1]})))
    anonymous = client.jar["sessionid"]
    await sesh_get(client, "/login?user=ada")
    assert client.jar["sessionid"] != anonymous  # a new key at login, the data kept
    assert await sesh_get(client, "/show") == {"cart": [1]}
    hand_over(client, browser, to="django")
    assert await browser.get("/whoami/") == "ada"
    assert json.loads(await browser.get("/show/"))["values"]["cart"] == [1]


@on_every_server
async def test_logging_a_user_out_everywhere_reaches_django(shared: Shared) -> None:
    store, client, browser = shared
    await _make_user("ada", "pw-ada")
    laptop = Client(client.app)
    await sesh_get(client, "/login?user=ada")
    await sesh_get(laptop, "/login?user=ada")
    hand_over(client, browser, to="django")
    assert await browser.get("/whoami/") == "ada"
    engine = SessionEngine(store, cookie_name="sessionid")
    user_id = await sesh_get(client, "/whoami")
    assert len(await list_sessions(engine, user_id)) == 2
    assert await logout_everywhere(engine, user_id) == 2
    assert await browser.get("/whoami/") == "anonymous"
    assert await sesh_get(laptop, "/whoami") is None


@on_every_server
async def test_a_password_change_in_django_ends_the_fastapi_session(shared: Shared) -> None:
    _, client, browser = shared
    await _make_user("ada", "pw-ada")
    await sesh_get(client, "/login?user=ada")
    assert await sesh_get(client, "/whoami") is not None
    hand_over(client, browser, to="django")
    assert await browser.get("/whoami/") == "ada"
    admin = DjangoBrowser()
    await admin.get("/password/", user="ada", password="a-new-password")
    assert await sesh_get(client, "/whoami") is None
    assert "sessionid" not in client.jar  # ended, as Django flushes it
    assert await browser.get("/whoami/") == "anonymous"


@on_every_server
async def test_a_password_change_by_the_app_ends_the_django_session(shared: Shared) -> None:
    _, client, browser = shared
    await log_in_with_django(browser)
    assert await browser.get("/whoami/") == "ada"
    hand_over(client, browser, to="sesh")
    assert await sesh_get(client, "/whoami") is not None
    await _set_password("ada", "changed-elsewhere")  # the async app's own account page
    assert await browser.get("/whoami/") == "anonymous"
    assert await sesh_get(client, "/whoami") is None


async def _set_password(name: str, password: str) -> None:
    def change() -> None:
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.get(username=name)
        user.set_password(password)
        user.save()

    await django_project.call(change)


@on_every_server
async def test_a_django_logout_is_never_undone_by_a_sesh_write(
    shared: Shared, django_engine: AsyncEngine
) -> None:
    store, client, browser = shared
    await log_in_with_django(browser)
    hand_over(client, browser, to="sesh")
    key = client.jar["sessionid"]
    assert await store.load(key) is not None
    await browser.get("/logout/")
    await sesh_get(client, "/set?values=" + quote(json.dumps({"late": 1})))
    assert await store.load(key) is None
    assert await remaining_ttl(store, key) is None
    assert client.jar["sessionid"] != key  # the write went to a new, anonymous session


@on_every_server
async def test_rows_sesh_cannot_trust_are_no_session(
    shared: Shared, django_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    store, client, _ = shared
    good = store.signer.dumps({"a": 1}, time.time())
    stamp = good.rsplit(":", 2)[1]
    pre_31 = base64.b64encode(b"0123456789abcdef:" + json.dumps({"a": 1}).encode()).decode()
    forged = DjangoStore(django_engine, secret_key="another project's secret").signer
    rows = {
        "bad signature": good[:-2] + ("AA" if not good.endswith("AA") else "BB"),
        "another secret": forged.dumps({"_auth_user_id": "1"}, time.time()),
        "pre-3.1 format": pre_31,
        "truncated": good[: len(good) // 2],
        "undecodable payload": _signed(store, b"!!not base64 at all", stamp),
        "not json": _signed(store, base64.urlsafe_b64encode(b"\xff\xfe{").rstrip(b"="), stamp),
        "a json list": _signed(store, base64.urlsafe_b64encode(b"[1,2]").rstrip(b"="), stamp),
        "a zip bomb": _signed(
            store,
            b"." + base64.urlsafe_b64encode(zlib.compress(b"[" * 20_000_000)).rstrip(b"="),
            stamp,
        ),
        "a huge integer": _signed(
            store, base64.urlsafe_b64encode(b'{"n": ' + b"9" * 30 + b"}").rstrip(b"="), stamp
        ),
    }
    expires = store._times.to_db(time.time() + 600)
    for n, (what, data) in enumerate(rows.items()):
        key = f"{n:02d}" + "k" * 30
        async with django_engine.begin() as conn:
            await conn.exec_driver_sql(
                store.database.statement(
                    "INSERT INTO django_session (session_key, session_data, expire_date) "
                    "VALUES (%s, %s, %s)"
                ),
                (key, data, expires),
            )
        client.jar["sessionid"] = key
        assert await sesh_get(client, "/show") == {}, what
        assert key not in caplog.text


def _signed(store: DjangoStore, body: bytes, stamp: str) -> str:
    value = body + b":" + stamp.encode()
    return (value + b":" + store.signer._signature(value, store.signer.keys[0])).decode()


def test_django_ids_are_djangos() -> None:
    store = DjangoStore("sqlite+aiosqlite:///unused.db", secret_key="s")
    made = {store.new_id() for _ in range(50)}
    assert len(made) == 50
    assert all(len(key) == 32 and key.isalnum() and key.islower() for key in made)
    assert all(store.is_id(key) for key in made)
    for bad in ["", "A" * 32, "a" * 31, "a" * 33, "a" * 31 + "-", "\u00e9" * 32]:
        assert not store.is_id(bad)


@on_every_server
async def test_a_login_under_a_rotated_secret_moves_to_the_new_one(
    shared: Shared, django_engine: AsyncEngine
) -> None:
    _, client, browser = shared
    await _make_user("ada", "pw-ada")
    before = DjangoStore(django_engine, secret_key=django_project.OLD_SECRET_KEY)
    old_client = Client(sesh_app(before, django_engine))
    await sesh_get(old_client, "/login?user=ada")
    client.jar["sessionid"] = old_key = old_client.jar["sessionid"]
    # The hash was made with the old secret, a fallback now: still logged in, under a new
    # key and the current hash, as Django's get_user does.
    assert await sesh_get(client, "/whoami") is not None
    assert client.jar["sessionid"] != old_key
    hand_over(client, browser, to="django")
    assert await browser.get("/whoami/") == "ada"
    assert await sesh_get(client, "/whoami") is not None


@on_every_server
async def test_purge_removes_expired_rows_only(django_engine: AsyncEngine) -> None:
    clock = FakeClock(time.time())
    store = django_store(django_engine, clock=clock)
    for n in range(12):
        await store.create(f"{n:02d}" + "p" * 30, Record({}, META), 10 if n < 9 else 1000)
    clock.advance(100)
    assert await store.purge_expired(batch=4) == 9
    assert await store.purge_expired() == 0
    for n in range(12):
        assert (await remaining_ttl(store, f"{n:02d}" + "p" * 30) is None) == (n < 9)


@on_every_server
async def test_a_django_save_between_a_load_and_an_update_is_kept(shared: Shared) -> None:
    store, client, browser = shared
    await sesh_get(client, "/set?values=" + quote(json.dumps({"cart": [1]})))
    key = client.jar["sessionid"]
    loaded = await store.load(key)  # a sesh request has loaded the session...
    assert loaded is not None
    hand_over(client, browser, to="django")
    await browser.get("/set/", theme='"dark"')  # ...when Django saves it whole
    assert await store.update(key, {"name": b"\xa3bob"}, [], loaded.meta, 600)
    assert await sesh_get(client, "/show") == {"cart": [1], "theme": "dark", "name": "bob"}


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"cookie_name": "sessionid", "secret_key": "x" * 40}, "drop secret_key"),
        ({}, "set cookie_name='sessionid'"),
        ({"cookie_name": "session_id"}, "set cookie_name='sessionid'"),
        ({"cookie_name": "sessionid", "idle_timeout": 600}, "idle_timeout cannot apply"),
    ],
)
def test_the_engine_refuses_what_djangos_cookie_and_rows_cannot_keep(
    options: dict[str, Any], says: str
) -> None:
    store = DjangoStore("sqlite+aiosqlite:///unused.db", secret_key="s")
    with pytest.raises(ConfigurationError, match=re.escape(says)):
        SessionMiddleware(responder(None), store=store, **options)
    # With Django's own cookie name, and nothing else, it is accepted.
    SessionMiddleware(responder(None), store=store, cookie_name="sessionid")


async def test_a_login_refuses_a_user_key_django_would_not_read() -> None:
    store = DjangoStore("sqlite+aiosqlite:///:memory:", secret_key=django_project.SECRET_KEY)
    engine = SessionEngine(store, cookie_name="sessionid", user_key="uid")
    session = await engine.open({"type": "http", "headers": []})
    with pytest.raises(ConfigurationError, match="drop user_key"):
        store.login(session, 1, "pbkdf2_sha256$1$salt$hash")
    await store.aclose()
