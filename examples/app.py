"""The sesh demo: a plain ASGI app (no framework) with a session on the memory store.

Run it with ``make demo`` and open http://127.0.0.1:8000.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from urllib.parse import parse_qs

from sesh.core import Session, SessionMiddleware
from sesh.core.types import Receive, Scope, Send

REMEMBER_ME = 30 * 24 * 60 * 60

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>sesh demo</title>
<style>body{{font:16px system-ui;max-width:40em;margin:2em auto}} dt{{font-weight:bold}}</style>
</head><body>
<h1>sesh demo</h1>
<p id="visits">You have visited this page <strong>{visits}</strong> times.</p>
{who}
<h2>This session</h2>
<dl>
<dt>Created</dt><dd id="created">{created}</dd>
<dt>Expires</dt><dd id="expires">{expires}</dd>
<dt>Cookie</dt><dd id="cookie">{cookie}</dd>
</dl>
</body></html>
"""

LOGIN = """<form method="post" action="/login">
<label>Name <input name="name" required maxlength="40"></label>
<label><input type="checkbox" name="remember" value="1"> Remember me for 30 days</label>
<button>Log in</button></form>"""

LOGOUT = """<p id="user">Logged in as <strong>{name}</strong>.</p>
<form method="post" action="/logout"><button>Log out</button></form>"""


def when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


async def read_form(receive: Receive) -> dict[str, str]:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if len(body) > 10_000:
            return {}
        if not message.get("more_body"):
            break
    fields = parse_qs(body.decode("utf-8", "replace"))
    return {name: values[0] for name, values in fields.items()}


async def respond(send: Send, status: int, body: str = "", location: str | None = None) -> None:
    headers = [(b"content-type", b"text/html; charset=utf-8")]
    if location is not None:
        headers.append((b"location", location.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body.encode()})


def page(session: Session) -> str:
    session["visits"] = session.get("visits", 0) + 1
    name = session.get("user")
    who = LOGIN if name is None else LOGOUT.format(name=html.escape(name))
    lifetime = "until the browser closes" if session.get("browser_session") else "persistent"
    return PAGE.format(
        visits=session["visits"],
        who=who,
        created=when(session.created_at),
        expires=when(session.expires_at),
        cookie=lifetime,
    )


async def demo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    session: Session = scope["session"]
    route = (scope["method"], scope["path"])
    if route == ("GET", "/"):
        await respond(send, 200, page(session))
    elif route == ("POST", "/login"):
        form = await read_form(receive)
        name = form.get("name", "").strip()[:40]
        if name:
            session.regenerate()  # a new id at every login: no session fixation
            session["user"] = name
            if form.get("remember"):
                session.set_expiry(REMEMBER_ME)
            else:
                session.set_expiry(0)
            session["browser_session"] = not form.get("remember")
        await respond(send, 303, location="/")
    elif route == ("POST", "/logout"):
        session.invalidate()
        await respond(send, 303, location="/")
    else:
        await respond(send, 404, "<h1>Not found</h1>")


app = SessionMiddleware(demo)
