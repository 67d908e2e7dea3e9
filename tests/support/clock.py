"""A clock the tests move by hand, instead of sleeping."""

from __future__ import annotations


class FakeClock:
    """Callable like ``time.time``; starts at a fixed epoch and moves only on ``advance``."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
