"""The commit rules as a table, without ASGI: plan_commit and plan_unchanged agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sesh.core.commit import Create, Index, Moment, Snapshot, plan_commit, plan_unchanged
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


# -- docs/architecture.md's table is the rules ---------------------------------------------------

ARCHITECTURE = Path(__file__).parents[2] / "docs" / "architecture.md"
CHANGED: dict[str, Any] = {"changed": {"user": b"\xa3bob"}}
NEW: dict[str, Any] = {"record": None, "baseline": {}, "had_cookie": False}
# Each row of the table, as the state it describes (and the moment, if not the start).
ROWS: dict[str, tuple[dict[str, Any], Moment, int]] = {
    "status >= 500, or abandoned": (CHANGED, "start", 500),
    'store unavailable ("continue")': ({"unavailable": True}, "start", 200),
    "ended (`invalidate()`, or emptied)": (
        {**NEW, "had_cookie": True, "ended": "old", "empty": True, "accessed": True},
        "start",
        200,
    ),
    "rotated (`regenerate()`)": ({"record": None, "rotated_from": "old"}, "start", 200),
    "new session with values or expiry": ({**NEW, **CHANGED}, "start", 200),
    "stored, changed or expiry changed": (CHANGED, "start", 200),
    "stored, the user changed without `login()` (answer below 400)": (
        {"changed": {"_auth_user_id": b"\xa11"}, "user_key": "_auth_user_id"},
        "start",
        200,
    ),
    "stored, touch due": ({"touch_due": True}, "start", 200),
    "stored, re-sign due only": ({"resign": True}, "start", 200),
    "cookie store": ({**CHANGED, "client_side": True}, "start", 200),
    "after the response started": ({**CHANGED, "expiry_changed": True}, "late", 200),
}
STEP_NAMES = ("Create", "Update", "Touch", "Delete", "Retire", "Index")


def plan_snapshot(fields: dict[str, Any]) -> Snapshot:
    return unchanged_snapshot(**fields)


def table_rows() -> dict[str, tuple[str, str]]:
    """The commit-rules table of docs/architecture.md: state -> (store steps, cookie)."""
    text = ARCHITECTURE.read_text()
    blocks = text[text.index("## The commit rules") :].split("\n\n")
    table = next(block for block in blocks if block.startswith("|"))
    rows = {}
    for line in table.splitlines()[2:]:
        state, steps, cookie = (cell.strip() for cell in line.strip("|").split("|"))
        rows[state] = (steps, cookie)
    return rows


def test_the_architecture_table_has_a_case_for_every_row() -> None:
    assert set(table_rows()) == set(ROWS)


@pytest.mark.parametrize("row", list(ROWS))
def test_the_architecture_table_says_what_plan_commit_does(row: str) -> None:
    fields, moment, status = ROWS[row]
    plan = plan_commit(plan_snapshot(fields), moment, status)
    steps_text, cookie_text = table_rows()[row]
    # The steps the row names before any "past its deadline"/"old gone" aside, in order.
    if steps_text.startswith("as above"):  # the same state's steps at the start
        expected = [
            type(step).__name__ for step in plan_commit(plan_snapshot(fields), "start").steps
        ]
    else:
        main = steps_text.split(";")[0]
        expected = [n for _, n in sorted((main.index(n), n) for n in STEP_NAMES if n in main)]
    assert [type(step).__name__ for step in plan.steps] == expected
    first = cookie_text.split(";")[0].split()[0]
    expected_cookie = {"kept": "keep", "set": "set", "deleted": "delete"}[first]
    assert plan.cookie == expected_cookie


# -- the user: index steps and the safety net -----------------------------------------------

USER = "_auth_user_id"
ADA, BOB = b"\xa3ada", b"\xa3bob"


def step_names(plan: Any) -> list[str]:
    return [type(step).__name__ for step in plan.steps]


def user_snapshot(**fields: Any) -> Snapshot:
    return unchanged_snapshot(user_key=USER, baseline={USER: ADA}, **fields)


def test_a_new_session_of_a_user_is_indexed_until_its_deadline() -> None:
    plan = plan_commit(
        unchanged_snapshot(user_key=USER, record=None, baseline={}, changed={USER: ADA}),
        "start",
    )
    assert step_names(plan) == ["Create", "Index"]
    assert plan.steps[1] == Index(ADA, 4_000.0)


def test_a_rotation_indexes_the_new_record_before_retiring_the_old() -> None:
    plan = plan_commit(user_snapshot(record=None, rotated_from="old"), "start")
    assert step_names(plan) == ["Create", "Index", "Retire"]
    assert not plan.user_rotated


@pytest.mark.parametrize("change", [{"changed": {USER: BOB}}, {"removed": (USER,)}])
def test_a_user_changed_without_login_rotates_at_a_good_answer(change: dict[str, Any]) -> None:
    plan = plan_commit(user_snapshot(**change), "start", 302)
    assert step_names(plan)[0] == "Create"
    assert step_names(plan)[-1] == "Retire"
    create = plan.steps[0]
    assert isinstance(create, Create)
    assert create.fresh
    assert plan.cookie == "set"
    assert plan.user_rotated


def test_no_rotation_at_an_error_answer_or_late() -> None:
    plan = plan_commit(user_snapshot(changed={USER: BOB}), "start", 403)
    assert step_names(plan) == ["Update", "Index"]
    assert plan.cookie == "keep"
    late = plan_commit(user_snapshot(changed={USER: BOB}), "late")
    assert step_names(late) == ["Update", "Index"]
    assert late.warning is not None
    assert "login()" in late.warning


def test_an_unchanged_user_is_not_indexed_again() -> None:
    assert step_names(plan_commit(user_snapshot(changed={"cart": b"\x90"}), "start")) == ["Update"]
    assert step_names(plan_commit(user_snapshot(expiry_changed=True), "start")) == [
        "Update",
        "Index",
    ]


def test_a_cookie_store_has_no_index_steps() -> None:
    plan = plan_commit(user_snapshot(client_side=True, changed={USER: BOB}), "start")
    assert plan.steps == ()
    assert not plan.user_rotated
