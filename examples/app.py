"""The sesh demo: FastAPI on the sesh engine. ``make demo`` serves it on 127.0.0.1, on the
port in ``PORT`` (8000 by default).

It keeps sessions in memory; in a SQL database when ``SESH_DATABASE_URL`` is set (say
``sqlite+aiosqlite:///sessions.db``, which several ``uvicorn --workers`` share); in Redis
when ``SESH_REDIS_URL`` is; and says which.
It shows a visit counter, a login that regenerates the id, a logout that invalidates the
session, "remember me", the list of your devices (every session logged in as you, each of
which you can sign out, or all of them but this one), a long job whose progress a
background task (or a Celery worker, when ``SESH_BROKER_URL`` is set: see jobs.py) writes
into the session while the page polls it, and a websocket that
reads the same session. Every form carries the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import BackgroundTasks, Depends, FastAPI, Form, Request, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse

from sesh.adapters.fastapi import SessionDep, csrf_protect
from sesh.core import Session, SessionMiddleware
from sesh.core.csrf import csrf_token
from sesh.core.flash import flash, flashes
from sesh.core.identity import list_sessions, login, logout, logout_everywhere, revoke, user_id
from sesh.core.store import ClosableStore
from sesh.core.tokens import short_hash
from sesh.stores.sql import SQLStore

from jobs import BROKER_URL, JOB_STEPS, config, make_store, run_job

REMEMBER_ME = 30 * 24 * 60 * 60

store, STORE_NAME = make_store()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if isinstance(store, SQLStore):
        await store.create_table()  # a real app migrates instead: python -m sesh.stores.sql ddl
    yield
    if isinstance(store, ClosableStore):
        await store.aclose()


# Every POST (login included) must carry the session's CSRF token: see the forms below.
app = FastAPI(
    title="sesh demo", openapi_url=None, lifespan=lifespan, dependencies=[Depends(csrf_protect)]
)
app.add_middleware(SessionMiddleware, store=store, config=config)

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sesh demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
:root {{ --ink: #1d2330; --muted: #5b6475; --line: #dde2ea; --accent: #2f6fdf; }}
body {{ font: 16px/1.5 system-ui, sans-serif; color: var(--ink); background: #f6f7fb;
       max-width: 46em; margin: 2em auto; padding: 0 1em; }}
header p {{ color: var(--muted); margin-top: 0; }}
section {{ background: #fff; border: 1px solid var(--line); border-radius: 10px;
          padding: .5em 1.25em 1em; margin: 1em 0; }}
h2 {{ font-size: 1.05em; margin-bottom: .25em; }}
.what {{ color: var(--muted); font-size: .92em; margin-top: 0; }}
dl {{ display: grid; grid-template-columns: 10em 1fr; gap: .25em 1em; margin: 0; }}
dt {{ color: var(--muted); }} dd {{ margin: 0; }}
code {{ background: #eef1f6; padding: 0 .3em; border-radius: 4px; }}
button {{ background: var(--accent); color: #fff; border: 0; border-radius: 6px;
         padding: .4em 1em; font: inherit; cursor: pointer; }}
input[name=name] {{ font: inherit; padding: .3em; }}
form {{ margin: .5em 0; }}
table {{ border-collapse: collapse; width: 100%; font-size: .92em; }}
td, th {{ text-align: left; padding: .3em .5em .3em 0; border-bottom: 1px solid var(--line); }}
td form {{ margin: 0; }}
.flash {{ border-radius: 8px; padding: .4em 1em; margin: .5em 0; background: #e7f0ff; }}
.flash.warning {{ background: #fff3d6; }}
</style></head><body>
<header><h1>sesh demo</h1>
<p>Sessions on <strong id="store">{store}</strong>. Each box below shows one feature.</p>
</header>
{flashes}
<section><h2>A visit counter</h2>
<p class="what">A value in the session, changed on every request.</p>
<p id="visits">You have visited this page <strong>{visits}</strong> times.</p></section>
<section><h2>Log in and out</h2>
<p class="what">Logging in gives the session a new id (the old one is dead at once: no
session fixation). "Remember me" keeps the cookie for 30 days, otherwise it ends with the
browser. Logging out deletes the session on the server, not just the cookie.</p>
{who}</section>
{devices}
<section><h2>A background job</h2>
<p class="what">A task on the server writes its progress into your session while this page
polls it: the same session, used outside the request.</p>
<form method="post" action="/job">{csrf}<button id="start-job">Start a job</button></form>
<p>Job: <span id="job">{job}</span></p></section>
<section><h2>A websocket</h2>
<p class="what">A websocket on the same site reads the same session.</p>
<p id="socket">connecting...</p></section>
<section><h2>This session</h2>
<dl><dt>Id (its hash)</dt><dd><code id="session-id">{session_id}</code></dd>
<dt>Created</dt><dd id="created">{created}</dd>
<dt>Expires</dt><dd id="expires">{expires}</dd>
<dt>Cookie</dt><dd id="cookie">{cookie}</dd></dl>
<p class="what">The cookie is HttpOnly: no script on this page can read it.</p></section>
<script>
const job = document.getElementById("job");
async function poll() {{
  const state = await (await fetch("/job")).json();
  job.textContent = state.job;
  if (state.running) setTimeout(poll, 200);
}}
if ({running}) poll();
const scheme = location.protocol === "https:" ? "wss" : "ws";
const socket = new WebSocket(`${{scheme}}://${{location.host}}/ws`);
socket.onmessage = (event) => {{ document.getElementById("socket").textContent = event.data; }};
</script>
</body></html>
"""

LOGIN = """<form method="post" action="/login" id="login">{csrf}
<label>Name <input name="name" required maxlength="40"></label>
<label><input type="checkbox" name="remember" value="1"> Remember me for 30 days</label>
<button>Log in</button></form>"""

LOGOUT = """<p id="user">Logged in as <strong>{name}</strong>.</p>
<form method="post" action="/logout">{csrf}<button id="logout">Log out</button></form>"""

DEVICES = """<section id="devices"><h2>Your devices</h2>
<p class="what">Every session logged in as you, from the store's index of each user's
sessions. Sign one out (it is logged out at its next request), or all but this one.</p>
<table><tr><th>Device</th><th>Logged in</th><th>Last seen</th><th></th></tr>
{rows}</table>
<form method="post" action="/devices/others">{csrf}
<button id="logout-others">Log out everywhere else</button></form></section>"""

DEVICE = """<tr class="device{mine}"><td>{agent}{this}</td><td>{login_at}</td><td>{seen}</td>
<td>{action}</td></tr>"""

REVOKE = """<form method="post" action="/devices/revoke">{csrf}
<input type="hidden" name="handle" value="{handle}"><button class="revoke">Sign out</button>
</form>"""


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(job: dict[str, Any] | None) -> str:
    if job is None:
        return "none yet"
    done = "done (100%)" if job["step"] >= JOB_STEPS else f"{job['step'] * 100 // JOB_STEPS}%"
    return f"{done} on {job['runner']}" if job.get("runner") else done


def flash_list(session: Session) -> str:
    """The flash messages waiting (read once: a reload shows none)."""
    shown = "".join(
        f'<p class="flash {html.escape(category)}">{html.escape(message)}</p>'
        for category, message in flashes(session)
    )
    return f'<div id="flashes">{shown}</div>'


def csrf_field(session: Session) -> str:
    return f'<input type="hidden" name="csrf_token" value="{csrf_token(session)}">'


async def devices(session: Session, name: str) -> str:
    rows = []
    for info in await list_sessions(session, name, current=session):
        action = "" if info.current else REVOKE.format(csrf=csrf_field(session), handle=info.handle)
        rows.append(
            DEVICE.format(
                mine=" current" if info.current else "",
                agent=html.escape((info.user_agent or "unknown browser")[:80]),
                this=" <strong>(this device)</strong>" if info.current else "",
                login_at=when(info.login_at or info.created_at),
                seen=when(info.last_seen),
                action=action,
            )
        )
    return DEVICES.format(rows="".join(rows), csrf=csrf_field(session))


@app.get("/", response_class=HTMLResponse)
async def home(session: SessionDep) -> str:
    session["visits"] = session.get("visits", 0) + 1
    name = user_id(session)
    job = session.get("job")
    csrf = csrf_field(session)
    return PAGE.format(
        store=html.escape(STORE_NAME),
        flashes=flash_list(session),
        visits=session["visits"],
        who=LOGIN.format(csrf=csrf)
        if name is None
        else LOGOUT.format(name=html.escape(name), csrf=csrf),
        devices="" if name is None else await devices(session, name),
        csrf=csrf,
        job=describe(job),
        running="true" if job is not None and job["step"] < JOB_STEPS else "false",
        session_id=short_hash(session.id),
        created=when(session.created_at),
        expires=when(session.expires_at),
        cookie="until the browser closes" if session.get("browser_session") else "persistent",
    )


@app.post("/login")
async def log_in(
    request: Request,
    session: SessionDep,
    name: Annotated[str, Form(max_length=40)],
    remember: Annotated[str | None, Form()] = None,
) -> RedirectResponse:
    # The demo takes anyone at their word; an app checks a password first. login() gives
    # the session a new id (no session fixation) and notes it in the name's index.
    login(
        session,
        name.strip() or "anonymous",
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )
    session.set_expiry(REMEMBER_ME if remember else 0)
    session["browser_session"] = not remember
    flash(session, f"Welcome, {user_id(session)}.")  # shown by the page it redirects to
    return RedirectResponse("/", status_code=303)


@app.post("/logout")
async def log_out(session: SessionDep) -> RedirectResponse:
    logout(session)
    flash(session, "You are logged out.")  # the new, empty session carries it
    return RedirectResponse("/", status_code=303)


@app.post("/devices/revoke")
async def revoke_device(session: SessionDep, handle: Annotated[str, Form()]) -> RedirectResponse:
    name = user_id(session)
    if name is not None:
        # False, and nothing done, if the handle is not one of this user's sessions.
        if await revoke(session, name, handle):
            flash(session, "That device is signed out.")
        else:
            flash(session, "No such device of yours.", "warning")
    return RedirectResponse("/", status_code=303)


@app.post("/devices/others")
async def log_out_others(session: SessionDep) -> RedirectResponse:
    name = user_id(session)
    if name is not None:
        ended = await logout_everywhere(session, name, keep=session)
        flash(session, f"Signed out {ended} other device{'s' if ended != 1 else ''}.")
    return RedirectResponse("/", status_code=303)


@app.post("/job")
async def start_job(session: SessionDep, tasks: BackgroundTasks) -> RedirectResponse:
    session["job"] = {"step": 0}
    await session.save()  # stored now: the job (and the next page) build on it
    if BROKER_URL:
        from jobs import run_job_on_celery

        await asyncio.to_thread(run_job_on_celery.delay, session.id)  # kombu blocks
    else:
        tasks.add_task(run_job, store, session.id)
    return RedirectResponse("/", status_code=303)


@app.get("/job")
async def job_state(session: SessionDep) -> dict[str, Any]:
    job = session.get("job")
    return {"job": describe(job), "running": job is not None and job["step"] < JOB_STEPS}


@app.websocket("/ws")
async def socket(websocket: WebSocket, session: SessionDep) -> None:
    await websocket.accept()
    name = user_id(session) or "a visitor"
    await websocket.send_text(f"hello {name}, this socket sees {session.get('visits', 0)} visits")
    await websocket.close()
