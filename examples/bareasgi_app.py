"""The bareASGI drop-in: the same two calls as bareASGI-session, sesh's engine underneath.

.venv/bin/python -m uvicorn --app-dir examples bareasgi_app:app
"""

from __future__ import annotations

from bareasgi import Application, HttpRequest, HttpResponse

from sesh.adapters.bareasgi import MemorySessionStorage, add_session_middleware, session_data


async def count(request: HttpRequest) -> HttpResponse:
    session = session_data(request)
    session["visits"] = session.get("visits", 0) + 1
    return HttpResponse.from_text(f"visit number {session['visits']}")


app = Application()
app.http_router.add({"GET"}, "/", count)
add_session_middleware(app, MemorySessionStorage())
