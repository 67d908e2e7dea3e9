"""A pytest plugin: every log record of the whole run must be free of session ids, cookie
values and secrets. It records those values where sesh makes or takes them (new_id,
CookieSpec.set_cookie, secret_list), keeps every log record at DEBUG, and fails the run
if any record carries one."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest

import sesh.adapters.starlette
import sesh.core.cookies
import sesh.core.state
import sesh.core.tokens
import sesh.stores.cookie
import sesh.stores.django

SENSITIVE: set[str] = set()
RECORDS: list[logging.LogRecord] = []


class _KeepEverything(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        RECORDS.append(record)


def _recording(function: Callable[..., Any], pick: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        for value in pick(result, *args, **kwargs):
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            if len(text) >= 16:  # ids, cookie values and secrets; never short words
                SENSITIVE.add(text)
        return result

    return wrapper


def install() -> None:
    tokens = sesh.core.tokens
    new_id = _recording(tokens.new_id, lambda result: [result])
    secret_list = _recording(tokens.secret_list, lambda result, *a, **k: result)
    tokens.new_id = sesh.core.state.new_id = new_id  # type: ignore[attr-defined]
    tokens.TokenCodec.new_id = staticmethod(new_id)
    django = sesh.stores.django.DjangoStore
    django.new_id = _recording(django.new_id, lambda result, *a: [result])  # type: ignore[method-assign]
    tokens.secret_list = secret_list
    sesh.stores.cookie.secret_list = secret_list  # type: ignore[attr-defined]
    sesh.adapters.starlette.secret_list = secret_list  # type: ignore[attr-defined]
    spec = sesh.core.cookies.CookieSpec
    spec.set_cookie = _recording(  # type: ignore[method-assign]
        spec.set_cookie, lambda result, self, value, *rest: [value]
    )
    handler = _KeepEverything(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    logging.getLogger("sesh").setLevel(logging.DEBUG)


_PREFIX = 16  # every recorded value is at least this long


def leaks() -> list[str]:
    """Every log record that carries a recorded value, formatted for the report. Values
    are found by their first 16 characters, looked up at each position of each record: a
    run that fails Redis over logs thousands of records and makes thousands of ids, and
    testing every value against every record took minutes."""
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    by_prefix: dict[str, list[str]] = {}
    for value in SENSITIVE:
        by_prefix.setdefault(value[:_PREFIX], []).append(value)
    found = []
    for record in RECORDS:
        text = formatter.format(record)
        if any(
            text.startswith(value, start)
            for start in range(len(text) - _PREFIX + 1)
            for value in by_prefix.get(text[start : start + _PREFIX], ())
        ):
            found.append(text)
    return found


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = leaks()
    if found:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(
                f"PRIVACY: {len(found)} log records carry a secret value:", red=True
            )
            for text in found[:20]:
                reporter.write_line("  " + text[:300])
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
