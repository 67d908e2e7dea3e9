"""Real ASGI servers for end-to-end tests, on free loopback ports: uvicorn and granian."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def uvicorn(
    app_dir: Path, app: str, env: dict[str, str] | None = None, *, factory: bool = False
) -> Iterator[str]:
    """Serve ``app`` (``module:attribute`` in ``app_dir``, or a factory of one); yields
    its base URL."""
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--app-dir", str(app_dir), app,
         "--host", "127.0.0.1", "--port", "0", "--no-access-log",
         *(["--factory"] if factory else [])],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert server.stderr is not None
    try:
        for line in server.stderr:  # uvicorn says where it listens once it is ready
            found = re.search(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", line)
            if found:
                # Keep reading its log, so that a full pipe never blocks it.
                threading.Thread(target=server.stderr.read, daemon=True).start()
                yield found[1]
                break
        else:
            raise RuntimeError(f"{app} exited before it was ready")
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextmanager
def granian(app_dir: Path, app: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Serve ``app`` (``module:attribute`` in ``app_dir``) with granian; yields its base URL."""
    from support.redis_servers import free_port

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", app],
        cwd=app_dir,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert server.stdout is not None
    try:
        for line in server.stdout:  # granian says where it listens, then starts its worker
            if "Started worker" in line:
                threading.Thread(target=server.stdout.read, daemon=True).start()
                yield f"http://127.0.0.1:{port}"
                break
        else:
            raise RuntimeError(f"{app} exited before it was ready")
    finally:
        server.terminate()
        server.wait(timeout=10)
