"""Real ASGI servers for end-to-end tests: uvicorn on a free loopback port."""

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
