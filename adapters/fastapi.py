"""FastAPI: the session as a dependency.

    from sesh.adapters.fastapi import SessionDep

    @app.get("/")
    async def home(session: SessionDep) -> dict[str, int]: ...

Install the middleware once (``app.add_middleware(SessionMiddleware, ...)`` from
``sesh.adapters.starlette`` or ``sesh.core``). Works in http and websocket routes, in
``async def`` and plain ``def`` endpoints. Changes made in a ``BackgroundTasks`` task are
saved after the response for server-side stores; a cookie store cannot carry them (the
cookie left with the response), so they are dropped with a warning.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from sesh.core import NoSessionMiddleware, Session
from sesh.core import session_data as _session_data

__all__ = ["SessionDep", "get_session"]


def get_session(connection: HTTPConnection) -> Session:
    """The request's (or websocket's) session; a dependency for ``Depends(get_session)``."""
    try:
        return _session_data(connection)
    except NoSessionMiddleware:
        raise NoSessionMiddleware(
            "no session here: add the middleware, e.g. app.add_middleware(SessionMiddleware, "
            "secret_key=...) with SessionMiddleware from sesh.adapters.starlette"
        ) from None


SessionDep = Annotated[Session, Depends(get_session)]
"""An endpoint parameter annotated ``SessionDep`` receives the session."""
