"""The commit rules: one pure function from a session's state to a plan.

:func:`plan_commit` takes a :class:`Snapshot` of the session (what the app did to it, what
is stored, its times) at one :class:`Moment`, and returns a :class:`Plan`: the store steps
in order, the cookie to send, whether to add ``Vary: Cookie``. It does no I/O and reads no
clock, so the rules are testable as a table; ``docs/architecture.md`` writes the same
table out, and the engine's two executors (server-side store, cookie store) carry a plan
out without deciding anything of their own.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import msgspec

from .store import Record, pack_meta

Moment = Literal["start", "early", "late"]
"""When a commit happens, which decides what it may still change:

* ``"start"``: the response starts (or a websocket is accepted): store writes, then the
  cookie;
* ``"early"``: ``save()`` before the response started: store writes now; the cookie goes
  out at the response start;
* ``"late"``: the client's cookie can no longer change: after the response started (a
  streaming body, a background task, a websocket's end) or in a worker's
  ``open_session`` block.
"""

Cookie = Literal["keep", "set", "delete"]
"""What the client's cookie needs."""


# msgspec structs, not dataclasses: a snapshot and a plan are built on every request that
# changes its session, and a frozen dataclass of twenty fields costs microseconds to build.
# The state builds its snapshot with positional arguments: with msgspec 0.23 these 22
# fields by keyword cost 21k instructions, positionally 2k (a request of
# benchmarks/instructions.py memory s4 went from 175k to 163k). Tests use keywords. A plan
# has fewer fields: by keyword it costs 0.4k more on s4, so it is built by keyword.
class Snapshot(msgspec.Struct, frozen=True):
    """What the rules read of one session. Built by the session's state; see
    :class:`~sesh.core.state.SessionState` for how each field arises."""

    now: float
    client_side: bool
    """The store keeps the session in its cookie (no store steps, the cookie carries all)."""
    had_cookie: bool
    """The request carried a value under our cookie name."""
    accessed: bool
    unavailable: bool
    abandoned: bool
    record: str | None
    """Store key of the record behind the session; None when there is none."""
    ended: str | None
    """Store key of a record the app ended (``invalidate()``, or the session emptied)."""
    rotated_from: str | None
    """Store key of the record ``regenerate()`` replaces."""
    baseline: Mapping[str, bytes]
    """The values as stored, encoded."""
    changed: Mapping[str, bytes]
    """Values set or changed in place since, encoded."""
    removed: tuple[str, ...]
    empty: bool
    created_at: float
    deadline: float
    touched_at: float
    browser: bool
    idle_timeout: float | None
    expiry_changed: bool
    touch_due: bool
    resign: bool
    """The client's cookie is out of date (an older secret signed it)."""
    cookie_due: Cookie
    """A cookie an earlier ``save()`` decided on, not sent yet."""
    user_key: str | None = None
    """The session key that names the logged-in user (``SessionConfig.user_key``); None for
    a session with no engine."""


class Create(msgspec.Struct, frozen=True):
    """Store ``record`` under the session's id, drawn now if it has none; ``fresh``: under
    a new id even though it has one (the user changed without ``login()``)."""

    record: Record
    ttl: float
    fresh: bool = False


class Update(msgspec.Struct, frozen=True):
    key: str
    changed: Mapping[str, bytes]
    removed: tuple[str, ...]
    meta: bytes
    ttl: float


class Touch(msgspec.Struct, frozen=True):
    key: str
    meta: bytes
    ttl: float


class Delete(msgspec.Struct, frozen=True):
    """Remove a record the app ended; whether it was still there does not matter."""

    key: str


class Retire(msgspec.Struct, frozen=True):
    """Remove the record a rotation replaced. If it was already gone (a logout won the
    race), the record just created is removed too: nothing is brought back."""

    key: str


class Index(msgspec.Struct, frozen=True):
    """Note the record behind the session (the one just created, if any) in the per-user
    index of ``user`` (the encoded value under ``user_key``), until the session's deadline.
    Planned after the write, and before a rotation retires the old record, so that a
    "log out everywhere" that missed the new record still deletes the old one, and the
    rotation then removes the new one."""

    user: bytes
    ttl: float


Step = Create | Update | Touch | Delete | Retire | Index


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    steps: tuple[Step, ...] = ()
    cookie: Cookie = "keep"
    vary: bool = False
    data: Mapping[str, bytes] = msgspec.field(default_factory=dict)
    """Every value as it will be stored once the plan is carried out."""
    meta: bytes = b""
    """The metadata written with it (the cookie store seals it with ``data``)."""
    deadline: float = 0.0
    touched_at: float = 0.0
    browser: bool = False
    record: str | None = None
    """The record behind the session once the plan is carried out, unless a ``Create``
    step makes a new one."""
    abandon: bool = False
    """Nothing is saved, now or later (a 5xx answer)."""
    warning: str | None = None
    """Why something the app did is dropped; the engine logs it."""
    user_rotated: bool = False
    """The id was rotated because the user changed without ``login()``."""


_KEPT = Plan()
_KEPT_READ = Plan(vary=True)


def plan_unchanged(accessed: bool, moment: Moment) -> Plan:
    """The plan when nothing is due and the app changed nothing (no verb called, every value
    as stored): what :func:`plan_commit` returns then, without building a :class:`Snapshot`.
    Most requests only read their session; the state tells this case apart cheaply
    (``SessionState.needs_plan``), and the rule tests check the two functions agree."""
    return _KEPT_READ if accessed and moment == "start" else _KEPT


def plan_commit(s: Snapshot, moment: Moment, status: int = 200) -> Plan:
    """The plan that commits ``s`` at ``moment``; ``status`` is the response's (0 for a
    websocket accept). The table in ``docs/architecture.md`` says the same in prose."""
    at_start = moment == "start"
    if status >= 500 or s.abandoned:
        return Plan(abandon=True, vary=at_start and s.accessed)
    if s.unavailable:
        return Plan(vary=at_start and s.accessed)

    cookie_may_change = moment != "late"
    changes = bool(s.changed or s.removed)
    now = s.now
    data = dict(s.baseline)
    for key in s.removed:
        del data[key]
    data.update(s.changed)
    touched_at = now if (changes or s.expiry_changed or s.touch_due) else s.touched_at
    expiry = s.deadline if s.idle_timeout is None else min(s.deadline, touched_at + s.idle_timeout)
    ttl = expiry - now
    meta = pack_meta(s.created_at, s.deadline, touched_at, s.browser)
    steps: list[Step] = []
    cookie = s.cookie_due
    record = s.record
    warning = None
    user_key = s.user_key
    user_changed = user_key is not None and (user_key in s.changed or user_key in s.removed)
    user_rotated = False

    if s.ended is not None:  # logged out (or emptied): the old record goes (below)
        cookie = "delete" if s.had_cookie else "keep"
    if s.record is None:
        wants_record = s.rotated_from is not None or (not s.empty and (changes or s.expiry_changed))
        if wants_record and ttl <= 0:  # its lifetime is over already (max_age=0): none kept
            if s.rotated_from is not None:
                steps.append(Delete(s.rotated_from))
            cookie = "delete"
        elif s.rotated_from is not None:  # regenerate(): the new record, then the old one goes
            steps += [Create(Record(data, meta), ttl), Retire(s.rotated_from)]
            cookie = "set"
        elif not s.empty and (changes or s.expiry_changed):  # a new session
            if cookie_may_change:
                steps.append(Create(Record(data, meta), ttl))
                cookie = "set"
            else:
                warning = (
                    "a new session written after the response started was dropped: its "
                    "cookie could not reach the client"
                )
    elif changes or s.expiry_changed:
        if ttl <= 0:  # the session ran out while this request used it
            steps.append(Delete(s.record))
            cookie = "delete"
            record = None
        elif user_changed and status < 400 and cookie_may_change and not s.client_side:
            # The user changed without login() (code written for cookie sessions): a new
            # id anyway, or whoever planted the old one in the browser would share the login.
            steps += [Create(Record(data, meta), ttl, fresh=True), Retire(s.record)]
            cookie = "set"
            record = None
            user_rotated = True
        else:
            if user_changed and not cookie_may_change and not s.client_side:
                warning = (
                    "the user in the session changed after the response started, when its id "
                    "could no longer be rotated: call sesh.core.identity.login() before"
                )
            steps.append(Update(s.record, s.changed, s.removed, meta, ttl))
            if s.expiry_changed or s.resign:
                cookie = "set"
    elif s.touch_due:
        steps.append(Touch(s.record, meta, ttl))
        if s.resign:
            cookie = "set"
    elif s.resign:
        cookie = "set"

    if s.ended is not None:
        # After what replaces it (a login as another user): if writing that fails, the
        # old session is still there, as an outage must leave it.
        steps.append(Delete(s.ended))

    if s.client_side:  # the cookie is the store: it carries every change, and nothing else does
        wrote = any(not isinstance(step, Delete | Retire) for step in steps)
        steps = []
        if wrote:
            cookie = "set"
        if cookie == "delete":
            record = None
        if wrote and not cookie_may_change:
            warning = (
                "session changes after the response started were dropped: a cookie-store "
                "session travels in the response headers, which were already sent"
            )
    user = None if user_key is None or s.client_side else data.get(user_key)
    if user is not None:
        _index(steps, Index(user, s.deadline - now), user_changed or s.expiry_changed)
    if not cookie_may_change:
        if cookie == "set" and s.expiry_changed and not s.client_side:
            warning = "set_expiry() after the response started: the cookie keeps its old lifetime"
        cookie = "keep"
    return Plan(
        steps=tuple(steps),
        cookie=cookie,
        vary=at_start and (s.accessed or cookie != "keep"),
        data=data,
        meta=meta,
        deadline=s.deadline,
        touched_at=touched_at,
        browser=s.browser,
        record=record,
        warning=warning,
        user_rotated=user_rotated,
    )


def _index(steps: list[Step], index: Index, changed: bool) -> None:
    """Put ``index`` into ``steps`` where it belongs: right after a ``Create`` (a new
    session, or a rotation, whose ``Retire`` must come after it), or after an ``Update``
    that changed the user or the deadline. A session written with the same user and
    deadline is in the index already."""
    for position, step in enumerate(steps):
        if isinstance(step, Create):
            steps.insert(position + 1, index)
            return
    if changed and any(isinstance(step, Update) for step in steps):
        steps.append(index)
