"""Real ASGI servers for end-to-end tests, on free loopback ports: uvicorn and granian."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def _serve(
    command: list[str], ready: Callable[[str], str | None], env: dict[str, str] | None, **popen: Any
) -> Iterator[str]:
    """Run a server until ``ready`` finds its base URL in a line of its log; yield it."""
    server = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
        **popen,
    )
    assert server.stdout is not None
    said = []
    try:
        for line in server.stdout:
            said.append(line)
            url = ready(line)
            if url is not None:
                # Keep reading its log, so that a full pipe never blocks it.
                threading.Thread(target=server.stdout.read, daemon=True).start()
                yield url
                break
        else:
            raise RuntimeError(f"{command} exited before it was ready:\n{''.join(said[-40:])}")
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def uvicorn(
    app_dir: Path,
    app: str,
    env: dict[str, str] | None = None,
    *,
    factory: bool = False,
    workers: int = 1,
) -> Iterator[str]:
    """Serve ``app`` (``module:attribute`` in ``app_dir``, or a factory of one) in
    ``workers`` processes; yields its base URL once every worker has started."""
    from support.redis_servers import free_port

    port = 0 if workers == 1 else free_port()  # workers share a socket the parent binds
    where = ""
    started = 0

    def ready(line: str) -> str | None:  # uvicorn says where it listens, and each worker starts
        nonlocal where, started
        found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
        where = found[1] if found is not None else where
        started += "Application startup complete" in line
        return where if where and started >= workers else None

    command = [
        sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), app,
        "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
        "--workers", str(workers), *(["--factory"] if factory else []),
    ]  # fmt: skip
    with _serve(command, ready, env) as url:
        yield url


@contextmanager
def granian(app_dir: Path, app: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve ``app`` (``module:attribute`` in ``app_dir``) with granian; yields its base URL."""
    from support.redis_servers import free_port

    port = free_port()
    command = [
        sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
        "--port", str(port), "--workers", "1", app,
    ]  # fmt: skip
    # granian says where it listens, and then that its worker has started: ready then.
    with _serve(
        command,
        lambda line: f"http://127.0.0.1:{port}" if "Started worker" in line else None,
        env,
        cwd=app_dir,
    ) as url:
        yield url


@contextmanager
def celery_worker(app_dir: Path, app: str, env: dict[str, str]) -> Iterator[str]:
    """A real Celery worker for ``app`` (a module in ``app_dir``): prefork, as Celery's
    default, with one child; yields its node name once it says it is ready."""
    name = f"sesh-test-{os.getpid()}@localhost"
    command = [
        sys.executable, "-m", "celery", "-A", app, "worker", "--pool", "prefork",
        "--concurrency", "1", "--hostname", name, "--loglevel", "INFO",
        "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    with _serve(
        command, lambda line: name if f"{name} ready." in line else None, env, cwd=app_dir
    ) as node:
        yield node
