"""The apps that the HTTP benchmark serves with uvicorn: ``BENCH_SYSTEM`` picks one."""

from __future__ import annotations

import os
from typing import Any

from scenarios import SCENARIOS, systems


def create() -> Any:
    """uvicorn --factory http_apps:create"""
    [system] = [s for s in systems("redis://unused", "") if s.name == os.environ["BENCH_SYSTEM"]]
    return system.build(None if not system.baseline else SCENARIOS["s3"].act)
