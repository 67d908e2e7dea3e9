"""The session engine: one implementation of the request flow, driven by every integration.

Every integration (the ASGI middleware, the bareASGI adapter, ``open_session``) uses the
same entry points:

* ``await engine.open(scope)``: the session for a request, its record loaded;
* ``await engine.response_starts(session, status, headers)``: the commit, carried out
  before the response start is passed on; returns the headers to send instead;
* ``await engine.exchange_ends(session, error)``: saves what changed after the start.

Each of ``open`` and ``exchange_ends`` is a sync half and an async one: ``start`` then,
when ``must_load``, ``load``; ``ends`` then, when it says so, ``commit_late``. The ASGI
middleware, which every request of every ASGI framework goes through, calls the halves,
so that a request with nothing to load or save makes neither coroutine (1.3k
instructions per request on ``benchmarks/instructions.py memory s1``, s3 and s4); other
integrations call ``open`` and ``exchange_ends``.

``wrap_send`` and ``wrap_receive`` are the one ``send`` and ``receive`` wrapper that ASGI
integrations put around the app. Each of these raises :class:`StoreUnavailable` when the
store failed and the policy is ``"fail"``; the integration then sends ``outage_answer``.

The engine decides nothing about what to write: :func:`~sesh.core.commit.plan_commit` does,
and the two executors here (server-side store, cookie store) carry its plan out.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING, Any, TypeVar

from .codec import decode_value
from .commit import (
    Cookie,
    Create,
    Delete,
    Index,
    Moment,
    Plan,
    Retire,
    Touch,
    Update,
    plan_commit,
)
from .config import OUTAGE_CLOSE, OUTAGE_REASON, SessionConfig, SessionOptions
from .cookies import read_values
from .errors import ConfigurationError, SessionNotFound, SessionTooLarge, StoreUnavailable
from .session import Session, attached, state_of
from .state import SessionState
from .store import (
    USER_INDEX_LIMIT,
    ClientStore,
    ClosableStore,
    CookieNameBinding,
    ForeignIds,
    PurgeableStore,
    Record,
    Store,
    UserIndexStore,
    ValuesOnlyFormat,
)
from .tokens import ForeignTokens, IdScheme, as_user_id, short_hash, user_ref
from .types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger("sesh")
SKIPPED = "sesh.skipped"
"""The scope key set on a request that ``skip_paths`` leaves without a session."""

MAX_SET_COOKIE = 4096
"""Bytes of one ``Set-Cookie`` (name, value and attributes) that every browser keeps."""
IN_COOKIE = "cookie"
"""The "store key" of a session that lives in its cookie."""

OUTAGE_MEMORY = 1.0
"""Seconds after a store failure under "continue" for which new sessions start read-only."""
_SECURE_SCHEMES = frozenset({"https", "wss"})
# Messages that start a response; a websocket's denial response counts as http.
_STARTS = frozenset({"http.response.start", "websocket.http.response.start", "websocket.accept"})
_CREATE_ATTEMPTS = 3  # a collision of 256-bit ids means a broken random source
T = TypeVar("T")
Headers = Sequence[tuple[bytes, bytes]]


class SessionEngine:
    """Reads the session cookie, loads and commits sessions through a store.

    ``store`` is a server-side :class:`~sesh.core.store.Store` (the cookie carries an id) or
    a :class:`~sesh.core.store.ClientStore` (the cookie carries the session). ``config`` is
    a :class:`SessionConfig`, or its options are given as keywords, not both.
    """

    def __init__(
        self,
        store: Store | ClientStore,
        config: SessionConfig | None = None,
        **options: Unpack[SessionOptions],
    ) -> None:
        if isinstance(store, type):
            raise ConfigurationError(
                f"store is the class {store.__name__}, not a store: pass an instance, "
                f"{store.__name__}(...)"
            )
        # Exactly one of the two is set: which kind of store this is.
        self.client: ClientStore | None = None
        self.server: Store | None = None
        if isinstance(store, ClientStore):
            self.client = store
        elif isinstance(store, Store):
            self.server = store
        else:
            raise ConfigurationError(
                "store must implement sesh.core.store.Store (load, create, update, touch, "
                "delete) or sesh.core.store.ClientStore (seal, unseal); got "
                f"{type(store).__name__}"
            )
        if config is not None and options:
            raise ConfigurationError(
                "give a SessionConfig or keyword options, not both: add "
                f"{', '.join(sorted(options))} to the SessionConfig"
            )
        if config is not None and not isinstance(config, SessionConfig):
            raise ConfigurationError(f"config must be a SessionConfig, not {type(config).__name__}")
        self.store = store
        self.config = config if config is not None else SessionConfig(**options)
        if isinstance(store, CookieNameBinding):
            self.client = store.for_cookie(self.config.cookie_name)
        if self.client is not None and not self.config.autoload:
            raise ConfigurationError(
                "autoload=False defers a store round trip, and a cookie store makes none: the "
                "session arrives with its cookie. Drop autoload=False, or use a server-side store"
            )
        self.ids: IdScheme = self.config.tokens
        """How ids are made, carried by the cookie, read back and filed: sesh's own, or
        those of the framework a :class:`~sesh.core.store.ForeignIds` store shares."""
        if isinstance(store, ForeignIds):
            self.ids = ForeignTokens(store)
            self._check_foreign(store)
        self.index = store if isinstance(store, UserIndexStore) else None
        """The store's per-user index, if it keeps one."""
        self._warned_user_rotated = False
        self._down_until = 0.0  # under "continue": new sessions are read-only until then
        self._warned_accept = False  # that the server sends no headers with websocket.accept
        self.values_only: str | None = None
        """The name of the store's cookie format when it carries only the values."""
        if isinstance(store, ValuesOnlyFormat):
            self.values_only = store.format_name
            if self.config.idle_timeout is not None:
                raise ConfigurationError(
                    f"idle_timeout needs the time of the last visit in the cookie, and "
                    f"{store.format_name} carries only the values: use sesh's own "
                    "store=CookieStore(secret_key) or a server-side store, or drop idle_timeout"
                )

    def _check_foreign(self, store: ForeignIds) -> None:
        config, who = self.config, store.framework
        if config.secret_key is not None:
            raise ConfigurationError(
                f"{type(store).__name__} shares {who}'s cookie, which carries the bare session "
                f"key {who} reads: drop secret_key (the store's own secret signs the data)"
            )
        if config.cookie_name != store.cookie_name:
            raise ConfigurationError(
                f"{type(store).__name__} shares {who}'s cookie: set "
                f"cookie_name={store.cookie_name!r} ({who}'s name for it), not "
                f"{config.cookie_name!r}"
            )
        if config.idle_timeout is not None:
            raise ConfigurationError(
                f"{who}'s session rows keep no time of the last visit, so idle_timeout cannot "
                f"apply to {type(store).__name__}: drop it (each save moves the expiry, as in "
                f"{who})"
            )

    # -- a request arrives -------------------------------------------------------------------

    def skips(self, scope: Scope) -> bool:
        """Whether ``skip_paths`` leaves this request without a session. If so, the scope
        is marked (``SKIPPED``), so that asking for its session says why there is none."""
        if not self.config.skips(scope):
            return False
        scope[SKIPPED] = True
        return True

    def start(self, scope: Scope) -> Session:
        """The session for this request, before any store I/O: its cookie read and checked.

        A valid cookie of a server-side store leaves a record to :meth:`load`.
        """
        config = self.config
        values = read_values(scope["headers"], config.cookie.pattern)
        if values is None:
            logger.info("session cookie ignored: the cookie headers exceed the size limit")
            values = []
        secure = scope.get("scheme") in _SECURE_SCHEMES or (
            config.trust_forwarded_proto and _forwarded_secure(scope)
        )
        state = SessionState(self, secure, bool(values))
        session = attached(state)
        if scope["type"] == "websocket" and not self._websocket_checks(scope, state):
            return session  # a handshake from another site: a session of its own, never kept
        if not values:
            if self._down_until:
                self._while_down(session)
            return session
        if self.client is None:
            tokens = self.ids
            now = config.clock() - config.leeway if tokens.signed else 0.0  # bare ids: no time
            verified = _one_valid(values, tokens.load, now)
            if verified is not None:
                state.expect(verified.session_id, verified.resign)
            elif self._down_until:
                self._while_down(session)
            return session
        unsealed = _one_valid(values, self.client.unseal)
        if unsealed is not None:
            state.adopt(
                session,
                unsealed.session_id,
                IN_COOKIE,
                unsealed.record,
                config.clock(),
                resign=unsealed.resign,
            )
        return session

    def _websocket_checks(self, scope: Scope, state: SessionState) -> bool:
        """Whether a websocket handshake may have the session its cookie names: not from a
        page of another origin (cross-site websocket hijacking: the browser sends the
        cookie whichever site opened the socket). And when its server cannot send headers
        with ``websocket.accept`` (``websocket_cookies``: by default, as its ASGI
        spec_version says), no cookie can reach the client, so the session can be read and
        changed but no new one started."""
        can = self.config.websocket_cookies
        if not (_accepts_headers(scope) if can == "auto" else can):
            if not self._warned_accept:
                self._warned_accept = True
                logger.warning(
                    "this server sends no headers with websocket.accept (websocket_cookies="
                    "False, or ASGI spec_version below 2.1): websockets read and change "
                    "existing sessions, but start none"
                )
            state.response_started()
        origin = _header(scope, b"origin")
        if origin is None or self.config.origin_allowed(origin, _host(scope)):
            return True
        logger.info("session withheld from a websocket opened by a page of another origin")
        state.response_started()  # nor may it set a cookie
        return False

    def _while_down(self, session: Session) -> None:
        """A new session, soon after the store failed under "continue": read-only, as the
        sessions that failed to load, until ``OUTAGE_MEMORY`` has passed."""
        if self.config.clock() < self._down_until:
            state_of(session).go_unavailable(session)
        else:
            self._down_until = 0.0

    def must_load(self, session: Session) -> bool:
        """Whether :meth:`open` would :meth:`load` this session now (a valid cookie named a
        stored one, and ``autoload`` is on)."""
        return self.config.autoload and state_of(session).pending() is not None

    async def open(self, scope: Scope) -> Session:
        """:meth:`start`, then :meth:`load` unless ``autoload`` is off."""
        session = self.start(scope)
        if self.must_load(session):
            await self.load(session)
        return session

    async def load(self, session: Session, *, degrade: bool = True) -> None:
        """Fetch the record of a session that came with a valid cookie (a no-op otherwise).

        When the store fails, ``on_store_error="fail"`` raises :class:`StoreUnavailable`;
        ``"continue"`` leaves the session empty, read-only and ``unavailable``. A worker,
        with no response to degrade, passes ``degrade=False``: then it always raises.
        """
        state = state_of(session)
        session_id = state.pending()
        if session_id is None:
            return
        key = self.ids.key(session_id)
        try:
            assert self.server is not None  # only a server-side store's cookie names a record
            record = await self.server.load(key)
        except StoreUnavailable as error:
            if not degrade:
                raise
            self._outage(session, "loading", error)
            return
        if record is None:
            logger.info("session cookie names no live session (%s)", short_hash(session_id))
            state.reset(session)
        elif not state.adopt(session, session_id, key, record, self.config.clock()):
            state.reset(session)

    # -- the response starts -------------------------------------------------------------------

    async def response_starts(
        self, session: Session, status: int, headers: Iterable[Any], *, websocket: bool = False
    ) -> Iterable[Any]:
        """Commit the session as the response starts; the headers the response must carry
        (``headers`` itself when nothing changes). ``status`` >= 500 abandons the session:
        nothing is saved, now or later. A websocket accept passes ``websocket=True``."""
        unchanged = self._start_unchanged(state_of(session), status, headers, websocket)
        if unchanged is not None:
            return unchanged
        return await self._commit_at_start(session, status, headers, websocket)

    async def _commit_at_start(
        self, session: Session, status: int, headers: Iterable[Any], websocket: bool
    ) -> Iterable[Any]:
        """:meth:`response_starts` once :meth:`_start_unchanged` found a commit due."""
        try:
            plan, set_cookie = await self._commit(session, "start", status)
        except StoreUnavailable as error:
            self._outage(session, "saving", error)  # "continue": on, without a cookie
            state_of(session).response_started()
            return headers
        return self._response_headers(headers, plan, set_cookie, websocket)

    def _start_unchanged(
        self, state: SessionState, status: int, headers: Iterable[Any], websocket: bool
    ) -> Iterable[Any] | None:
        """:meth:`response_starts` when there is nothing to commit (the session unchanged,
        nothing due: most requests), which needs no I/O; None when there is."""
        plan = state.starts_unchanged(status)
        if plan is None:
            return None
        return self._response_headers(headers, plan, None, websocket)

    def _response_headers(
        self, headers: Iterable[Any], plan: Plan, set_cookie: bytes | None, websocket: bool
    ) -> Iterable[Any]:
        if websocket:  # Vary means nothing to a websocket
            return headers if set_cookie is None else [*headers, (b"set-cookie", set_cookie)]
        if set_cookie is None and not plan.vary:
            return headers
        return _with_session_headers(headers, set_cookie, plan.vary, self.config.cookie.name)

    async def save(self, session: Session) -> None:
        """Write the session's changes now (``Session.save()``); before the response starts,
        the cookie, if it must change, goes out with it. The app asked for this write, so a
        store failure raises :class:`StoreUnavailable` to it whatever the policy."""
        await self._commit(session, state_of(session).moment())

    async def exchange_ends(self, session: Session, error: BaseException | None = None) -> None:
        """The app returned (``error`` is what it raised, if anything): save what changed
        after the response started. An error abandons the changes, except a websocket
        whose client went away: that is how a socket normally ends."""
        if self.ends(session, error):
            await self.commit_late(session)

    @staticmethod
    def ends(session: Session, error: BaseException | None = None) -> bool:
        """The first half of :meth:`exchange_ends`, with no I/O: whether changes made after
        the response started remain to be saved by :meth:`commit_late`."""
        state = state_of(session)
        if error is not None and not state.client_went_away():
            state.abandon()
            return False
        return state.exchange_ended()

    async def commit_late(self, session: Session) -> None:
        """The second half of :meth:`exchange_ends`: save the changes made after the
        response started. A store failure is logged: the response has gone already."""
        try:
            await self._commit(session, "late")
        except StoreUnavailable as failure:
            logger.warning(
                "session store unreachable (%s: %s): changes made after the response "
                "started were not saved",
                type(self.store).__name__,
                failure,
            )

    def _outage(self, session: Session, doing: str, error: StoreUnavailable) -> None:
        """Apply the outage policy: raise for "fail", degrade the session for "continue"."""
        where = f"{type(self.store).__name__}: {error}"
        if self.config.on_store_error == "fail":
            logger.warning("session store unreachable while %s (%s): answering 503", doing, where)
            state_of(session).abandon()
            raise error
        # A new session meets the store only when it is saved, after the app wrote to it:
        # for a while, new sessions start read-only too, as sessions that failed to load.
        self._down_until = self.config.clock() + OUTAGE_MEMORY
        outcome = "continuing without" if doing == "loading" else "this request's changes are lost"
        logger.warning(
            "session store unreachable while %s (%s): %s; new sessions are read-only for %gs",
            doing,
            where,
            outcome,
            OUTAGE_MEMORY,
        )
        state_of(session).go_unavailable(session)

    # -- committing: the plan, then one of two executors --------------------------------------

    async def _commit(
        self, session: Session, moment: Moment, status: int = 200
    ) -> tuple[Plan, bytes | None]:
        """Plan the commit and carry it out; the plan, and the ``Set-Cookie`` value to send
        (only at the response start). Raises :class:`StoreUnavailable` as the store does."""
        state = state_of(session)
        snapshot = state.snapshot(session)
        plan = plan_commit(snapshot, moment, status)
        if plan.abandon:
            state.abandon()
            return plan, None
        if plan.warning is not None:
            logger.warning("%s", plan.warning)
        if plan.user_rotated and not self._warned_user_rotated:
            self._warned_user_rotated = True
            logger.warning(
                "session[%r] changed without sesh.core.identity.login(): the session id was "
                "rotated anyway (logged once); call login() when a user logs in",
                self.config.user_key,
            )
        cookie = plan.cookie
        if self.client is not None:
            key = IN_COOKIE if cookie == "set" else plan.record
        else:
            done, key = await self._run_on_store(state, plan)
            if not done:  # ended elsewhere: the cookie stays, the client may hold a newer one
                state.vanished(session, moment)
                return plan, None
        set_cookie = self._set_cookie(state, plan, cookie, snapshot.now, moment)
        state.committed(session, plan, moment, key)
        return plan, set_cookie

    async def _run_on_store(self, state: SessionState, plan: Plan) -> tuple[bool, str | None]:
        """Carry out the plan's steps on the server-side store, in order. False when a
        conditional write found the record gone (the session ended elsewhere); otherwise
        True and the key of the record behind the session afterwards."""
        store = self.server
        assert store is not None  # the engine runs store steps only on a server-side store
        created: str | None = None
        try:
            for step in plan.steps:
                if isinstance(step, Create):
                    created = await self._create(state, store, step)
                elif isinstance(step, Update):
                    if not await store.update(
                        step.key, step.changed, step.removed, step.meta, step.ttl
                    ):
                        return False, None
                elif isinstance(step, Touch):
                    if not await store.touch(step.key, step.meta, step.ttl):
                        return False, None
                elif isinstance(step, Delete):
                    await store.delete(step.key)
                elif isinstance(step, Index):
                    await self._index(step, created or plan.record)
                elif isinstance(step, Retire) and not await store.delete(step.key):
                    # Logged out meanwhile: the new record must not outlive the old one.
                    assert created is not None
                    await store.delete(created)
                    return False, None
        except StoreUnavailable:
            if created is not None:  # nothing half-written: the old session stays as it was
                with suppress(StoreUnavailable):
                    await store.delete(created)
            raise
        return True, created if created is not None else plan.record

    async def _index(self, step: Index, key: str | None) -> None:
        """Note the session under ``key`` in its user's index, and end the sessions the
        index drops for it (the user's oldest, past ``USER_INDEX_LIMIT``)."""
        if self.index is None or key is None:
            return
        try:
            user_id = as_user_id(decode_value(step.user))
        except ValueError:
            user_id = None
        if user_id is None:
            logger.warning(
                "session[%r] holds neither a str nor an int: not noted as a user's session",
                self.config.user_key,
            )
            return
        user = user_ref(user_id)
        dropped = await self.index.index_add(user, key, step.ttl, USER_INDEX_LIMIT)
        if dropped:
            logger.info("a user passed %d sessions: the oldest ended", USER_INDEX_LIMIT)
        for old in dropped:
            await self.index.delete(old)

    async def _create(self, state: SessionState, store: Store, step: Create) -> str:
        # The id the app may already have read, unless the plan asks for a new one.
        session_id = state.new_id() if step.fresh else state.cookie_id()
        for _ in range(_CREATE_ATTEMPTS):
            key = self.ids.key(session_id)
            if await store.create(key, step.record, step.ttl):
                return key
            session_id = state.new_id()
        raise RuntimeError("could not create a session: three fresh ids already existed")

    def _set_cookie(
        self, state: SessionState, plan: Plan, cookie: Cookie, now: float, moment: Moment
    ) -> bytes | None:
        """The ``Set-Cookie`` value for ``cookie``, or None when it stays as it is. Made
        (and checked against the browser's limit) even before the start, so that a save()
        learns at once that it would not fit; only the start sends it."""
        if cookie == "keep":
            return None
        spec = self.config.cookie
        if cookie == "delete":
            header = spec.delete_cookie(state.secure)
        else:
            max_age = None if plan.browser else max(0, math.ceil(plan.deadline - now))
            header = spec.set_cookie(self._cookie_value(state, plan), max_age, state.secure)
            if len(header) > MAX_SET_COOKIE and self.client is not None:
                # The store's compact form (deflate, say) may fit; it costs more to make.
                compact = self._cookie_value(state, plan, compact=True)
                header = spec.set_cookie(compact, max_age, state.secure)
            if len(header) > MAX_SET_COOKIE:
                raise SessionTooLarge(len(header), MAX_SET_COOKIE)
        return header if moment == "start" else None

    def _cookie_value(self, state: SessionState, plan: Plan, compact: bool = False) -> str:
        if self.client is None:
            return self.ids.dump(state.cookie_id(), plan.deadline)
        record = Record(dict(plan.data), plan.meta)
        return self.client.seal(state.cookie_id(), record, compact=compact)

    # -- the store's optional capabilities ------------------------------------------------

    async def purge_expired(self) -> int:
        """Remove expired records now, if the store keeps them until removed
        (:class:`~sesh.core.store.PurgeableStore`); how many went. 0 for a store whose
        records expire by themselves (Redis) or that has none (a cookie store)."""
        if isinstance(self.store, PurgeableStore):
            return await self.store.purge_expired()
        return 0

    async def aclose(self) -> None:
        """Release the store's connections (:class:`~sesh.core.store.ClosableStore`), at the
        app's shutdown; nothing to do for a store that holds none."""
        if isinstance(self.store, ClosableStore):
            await self.store.aclose()

    # -- outside a request --------------------------------------------------------------------

    def check_opens_stored(self) -> None:
        """Raise :class:`ConfigurationError` unless this engine's sessions can be opened
        outside a request: a cookie store keeps each one in its browser."""
        if self.client is not None:
            raise ConfigurationError(
                "a cookie store keeps each session in its browser: it cannot be opened outside "
                "a request (by a worker, say); use a server-side store (RedisStore, SQLStore, "
                "MemoryStore)"
            )

    @asynccontextmanager
    async def open_stored(self, session_id: str) -> AsyncIterator[Session]:
        """A stored session by its id, outside any request; see
        :func:`sesh.core.open_session`. Outages raise :class:`StoreUnavailable` whatever the
        policy: a worker has no response to degrade."""
        self.check_opens_stored()
        if not self.ids.is_id(session_id):
            raise SessionNotFound("not a session id: pass session.id, not the cookie's value")
        state = SessionState(self)
        state.response_started()  # a worker's session has no cookie to change
        session = attached(state)
        state.expect(session_id, False)
        await self.load(session, degrade=False)
        if state.is_new():
            raise SessionNotFound("no live session has this id (it ended, or never existed)")
        yield session
        await self._commit(session, "late")

    # -- the ASGI wrappers -------------------------------------------------------------------

    def wrap_send(self, scope: Scope, session: Session, send: Send) -> Send:
        """The app's ``send``: commits at the response start, and answers the outage in the
        app's place when the store fails (then drops what the app sends after)."""
        return _SendWithSession(self, scope, session, send)

    @staticmethod
    def wrap_receive(session: Session, receive: Receive) -> Receive:
        """A websocket's ``receive``, noting when the client went away, so that the error a
        framework raises for it (Starlette's ``WebSocketDisconnect``) ends it normally."""
        state = state_of(session)

        async def receive_noting_disconnect() -> Message:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                state.saw_disconnect()
            return message

        return receive_noting_disconnect


class _SendWithSession:
    """The ``send`` that :meth:`SessionEngine.wrap_send` gives the app.

    Its ``__call__`` is not a coroutine: every message that needs no store I/O (all but a
    response start that commits) goes on with ``send()``'s own awaitable, rather than a
    coroutine of ours per message. An object, not a closure: two closures cost 4.3k
    instructions to make per request, this 2.6k (benchmarks/steps.py memory s1).
    """

    __slots__ = ("_answered", "_engine", "_scope", "_send", "_session")

    def __init__(self, engine: SessionEngine, scope: Scope, session: Session, send: Send) -> None:
        self._engine = engine
        self._scope = scope
        self._session = session
        self._send = send
        self._answered = False  # the store failed: sesh answered in the app's place

    def __call__(self, message: Message) -> Awaitable[None]:
        if self._answered:
            return _dropped()
        kind = message["type"]
        if kind not in _STARTS:
            return self._send(message)
        status, headers, websocket = (
            message.get("status", 0),
            message.get("headers", ()),
            kind == "websocket.accept",
        )
        new = self._engine._start_unchanged(state_of(self._session), status, headers, websocket)
        if new is None:
            return self._commit_then_send(message, status, headers, websocket)
        if new is not headers:
            message["headers"] = new
        return self._send(message)

    async def _commit_then_send(
        self, message: Message, status: int, headers: Iterable[Any], websocket: bool
    ) -> None:
        try:
            new = await self._engine._commit_at_start(self._session, status, headers, websocket)
        except StoreUnavailable:
            self._answered = True
            await answer_outage(self._engine.config, self._scope, _request_over, self._send)
            return
        if new is not headers:
            message["headers"] = new
        await self._send(message)


async def _dropped() -> None:
    """What the app sends after sesh answered the outage in its place goes nowhere."""


async def answer_outage(config: SessionConfig, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer in the app's place when the store failed under "fail": ``outage_answer`` for
    http; a websocket is closed with 1013 (try again later), whatever the answer."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": OUTAGE_CLOSE, "reason": OUTAGE_REASON})
        return
    await config.outage_answer(scope, receive, send)


def _accepts_headers(scope: Scope) -> bool:
    """Whether the server can send headers with ``websocket.accept`` (ASGI 2.1 and later;
    a scope that declares no spec_version is 2.0)."""
    version = str(scope.get("asgi", {}).get("spec_version", "2.0"))
    major, _, minor = version.partition(".")
    return major.isdigit() and minor.isdigit() and (int(major), int(minor)) >= (2, 1)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def _forwarded_secure(scope: Scope) -> bool:
    """Whether the proxy in front says the client came over https (the first hop of
    ``X-Forwarded-Proto``, or the ``proto`` of ``Forwarded``'s first element)."""
    proto = _header(scope, b"x-forwarded-proto")
    if proto is not None:
        return proto.split(b",")[0].strip().lower() in (b"https", b"wss")
    forwarded = _header(scope, b"forwarded")
    if forwarded is not None:
        for pair in forwarded.split(b",")[0].split(b";"):
            name, _, value = pair.strip().partition(b"=")
            if name.lower() == b"proto":
                return value.strip(b'"').lower() in (b"https", b"wss")
    return False


def _host(scope: Scope) -> bytes:
    """The host (and port) the request was sent to: its Host header, else the server's."""
    host = _header(scope, b"host")
    if host is not None:
        return host
    server = scope.get("server")
    return f"{server[0]}:{server[1]}".encode() if server else b""


async def _request_over() -> Message:
    """The ``receive`` of an outage answer given after the app ran: the app had the body."""
    return {"type": "http.disconnect"}


def _one_valid(values: list[bytes], check: Callable[..., T | None], *args: Any) -> T | None:
    """The one value under our name that passes ``check(value, *args)``; None if none
    does, or if two different ones do (cookie tossing: which one the browser meant is
    unknowable). At most one log record, however many values were rejected. Extra
    arguments rather than a closure made per request: 1.0k instructions on memory s3."""
    found: T | None = None
    found_value = b""
    rejected: list[bytes] = []
    for value in values:
        verified = check(value, *args)
        if verified is None:
            rejected.append(value)
        elif found is None or found == verified:
            found, found_value = verified, value
        else:
            logger.warning(
                "session cookie ignored: two different valid values were sent (%s, %s)",
                short_hash(found_value),
                short_hash(value),
            )
            return None
    if rejected:
        logger.info(
            "session cookie rejected: %d of %d values (%s)",
            len(rejected),
            len(values),
            short_hash(rejected[0]),
        )
    return found


def _with_session_headers(
    headers: Iterable[Any], set_cookie: bytes | None, vary: bool, cookie_name: str
) -> list[Any]:
    """The response's headers with our ``Set-Cookie`` and ``Vary: Cookie`` merged in: one
    ``Set-Cookie`` for our name (ours wins over one the app set itself, with a warning),
    and exactly one ``Cookie`` token in ``Vary``."""
    merged = list(headers)
    if set_cookie is not None:
        ours = cookie_name.encode("latin-1") + b"="
        kept = [
            (name, value)
            for name, value in merged
            if not (bytes(name).lower() == b"set-cookie" and bytes(value).startswith(ours))
        ]
        if len(kept) != len(merged):
            logger.warning(
                "the app set the session cookie %r itself; sesh's Set-Cookie replaces it "
                "(change the session through the session, or use another cookie name)",
                cookie_name,
            )
        merged = [*kept, (b"set-cookie", set_cookie)]
    if vary:
        _add_vary_cookie(merged)
    return merged


def _add_vary_cookie(headers: list[Any]) -> None:
    first = None
    for index, (name, value) in enumerate(headers):
        if bytes(name).lower() != b"vary":
            continue
        tokens = {token.strip().lower() for token in bytes(value).split(b",")}
        if b"cookie" in tokens or b"*" in tokens:
            return
        if first is None:
            first = index
    if first is None:
        headers.append((b"vary", b"Cookie"))
    else:
        name, value = headers[first]
        headers[first] = (name, bytes(value) + b", Cookie")


def new_engine(
    store: Store | ClientStore | None,
    config: SessionConfig | None,
    options: SessionOptions,
) -> SessionEngine:
    """The engine of an integration: ``store=None`` means a new MemoryStore."""
    if store is None:
        from sesh.stores.memory import MemoryStore  # the default, imported only when used

        store = MemoryStore()
    return SessionEngine(store, config, **options)
