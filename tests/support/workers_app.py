"""An app for several uvicorn workers sharing one SQLite file (SESH_DATABASE_URL): each
answer says which process served it and how many visits the session has seen."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from sesh.core import SessionMiddleware
from sesh.stores.sql import SQLStore

store = SQLStore(os.environ["SESH_DATABASE_URL"])


async def visit(request: Request) -> JSONResponse:
    session = request.scope["session"]
    session["visits"] = session.get("visits", 0) + 1
    return JSONResponse({"pid": os.getpid(), "visits": session["visits"]})


@asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    await store.create_table()
    yield
    await store.aclose()


app = SessionMiddleware(
    Starlette(routes=[Route("/", visit)], lifespan=lifespan),
    store=store,
    secret_key="a-workers-test-secret-that-is-long-enough-0123",
)
