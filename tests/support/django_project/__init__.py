"""A small Django project that shares its sessions with sesh's DjangoStore in the tests.

It runs in the test process, on the machine's real databases: one alias per database
(``sqlite``, ``postgresql``, ``mariadb``), chosen for each step by :func:`use`. Django is
synchronous: every call into it goes through :func:`call`, on one thread of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

SECRET_KEY = "django-insecure-a-test-secret-key-that-is-only-for-the-tests-0123"
OLD_SECRET_KEY = "django-insecure-the-secret-key-this-project-used-before-rotation"

_thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="django")
_migrated: set[str] = set()
current_alias = "sqlite"


def configure(databases: dict[str, dict[str, Any]], fallbacks: list[str]) -> None:
    """Settings for the whole test process (Django's are global): call once."""
    import pymysql

    # Django's MySQL backend asks for mysqlclient, which needs a C library this machine
    # lacks; PyMySQL stands in for it, as its docs describe.
    pymysql.version_info = (2, 2, 7, "final", 0)
    pymysql.install_as_MySQLdb()

    from django.conf import settings

    settings.configure(
        SECRET_KEY=SECRET_KEY,
        SECRET_KEY_FALLBACKS=fallbacks,
        DEBUG=False,
        ALLOWED_HOSTS=["testserver"],
        USE_TZ=True,
        DATABASES={"default": databases["sqlite"], **databases},
        DATABASE_ROUTERS=["support.django_project.Router"],
        INSTALLED_APPS=[
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
        ],
        SESSION_ENGINE="django.contrib.sessions.backends.db",
        ROOT_URLCONF="support.django_project.urls",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],  # fast tests
    )
    import django

    django.setup()


class Router:
    """Sends every query to the database the current step uses."""

    def db_for_read(self, model: Any, **hints: Any) -> str:
        return current_alias

    def db_for_write(self, model: Any, **hints: Any) -> str:
        return current_alias

    def allow_relation(self, *args: Any, **hints: Any) -> bool:
        return True

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool:
        return True


async def call(function: Callable[..., T], *args: Any) -> T:
    """``function(*args)`` on Django's thread."""
    return await asyncio.get_running_loop().run_in_executor(_thread, function, *args)


async def use(alias: str) -> None:
    """Point Django at ``alias``, creating its tables on first use."""

    def switch() -> None:
        global current_alias
        current_alias = alias
        if alias not in _migrated:
            from django.core.management import call_command

            call_command("migrate", database=alias, verbosity=0)
            _migrated.add(alias)

    await call(switch)


def close() -> None:
    def close_all() -> None:
        from django.db import connections

        connections.close_all()

    _thread.submit(close_all).result()
