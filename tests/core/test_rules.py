"""The commit rules as a table, without ASGI: plan_commit and plan_unchanged agree."""

from __future__ import annotations

from typing import Any

import pytest

from sesh.core.commit import Moment, Snapshot, plan_commit, plan_unchanged
from sesh.core.store import pack_meta


def unchanged_snapshot(**fields: Any) -> Snapshot:
    """A stored session that the app read (or not) and did not change, nothing due."""
    base: dict[str, Any] = {
        "now": 1_000.0,
        "client_side": False,
        "had_cookie": True,
        "accessed": True,
        "unavailable": False,
        "abandoned": False,
        "record": "key",
        "ended": None,
        "rotated_from": None,
        "baseline": {"user": b"\xa3ada"},
        "changed": {},
        "removed": (),
        "empty": False,
        "created_at": 900.0,
        "deadline": 5_000.0,
        "touched_at": 900.0,
        "browser": False,
        "idle_timeout": None,
        "expiry_changed": False,
        "touch_due": False,
        "resign": False,
        "cookie_due": "keep",
    }
    return Snapshot(**(base | fields))


@pytest.mark.parametrize("moment", ["start", "early", "late"])
@pytest.mark.parametrize("accessed", [True, False])
@pytest.mark.parametrize("client_side", [True, False])
@pytest.mark.parametrize("record", ["key", None])
def test_the_shortcut_agrees_with_the_rules(
    moment: Moment, accessed: bool, client_side: bool, record: str | None
) -> None:
    """What SessionState.needs_plan lets the engine skip is exactly what plan_commit would
    have decided: no step, the cookie kept, Vary only for a session read at the start."""
    snapshot = unchanged_snapshot(
        accessed=accessed,
        client_side=client_side,
        record=record,
        baseline={} if record is None else {"user": b"\xa3ada"},
        empty=record is None,
    )
    full = plan_commit(snapshot, moment)
    short = plan_unchanged(accessed, moment)
    assert (full.steps, full.cookie, full.vary) == (short.steps, short.cookie, short.vary)
    assert full.steps == ()
    assert full.vary == (accessed and moment == "start")


def test_a_touch_due_is_not_the_shortcut() -> None:
    """The table distinguishes the cases the shortcut must not take: a due touch writes."""
    plan = plan_commit(unchanged_snapshot(touch_due=True, idle_timeout=600.0), "start")
    assert [type(step).__name__ for step in plan.steps] == ["Touch"]
    assert plan.meta == pack_meta(900.0, 5_000.0, 1_000.0, False)
