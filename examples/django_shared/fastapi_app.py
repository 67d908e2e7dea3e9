"""The async side: a FastAPI app that shares the Django project's sessions and logins.

    python manage.py migrate && python manage.py createsuperuser
    uvicorn project.asgi:application --port 8001   # Django
    uvicorn fastapi_app:app --port 8002             # this app

Log in on either, and the other knows who you are (one cookie, ``sessionid``, for both:
behind one domain, or on one host as here). It reads the same database and secrets as
``project/settings.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, Form, HTTPException
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from sesh.adapters.fastapi import SessionDep
from sesh.core import SessionMiddleware
from sesh.stores.django import DjangoStore

HERE = Path(__file__).resolve().parent
DATABASE = os.environ.get("DJANGO_DB", str(HERE / "db.sqlite3"))
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-example-only-change-me")

engine = create_async_engine(f"sqlite+aiosqlite:///{DATABASE}")
store = DjangoStore(engine, secret_key=SECRET_KEY)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await store.create_table()  # sesh's one table beside Django's: each user's sessions
    yield
    await store.aclose()


app = FastAPI(title="sharing Django's sessions", lifespan=lifespan)
app.add_middleware(SessionMiddleware, store=store, cookie_name="sessionid")


def check_password(password: str, encoded: str) -> bool:
    """Django's default password hasher (PBKDF2-SHA256), checked without Django."""
    algorithm, iterations, salt, expected = [*encoded.split("$"), "", "", ""][:4]
    if algorithm != "pbkdf2_sha256" or not iterations.isdigit():
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
    return hmac.compare_digest(base64.b64encode(digest).decode(), expected)


async def password_of(user_id: str) -> str | None:
    async with engine.connect() as conn:
        query = text("SELECT password FROM auth_user WHERE id = :id AND is_active")
        found: str | None = (await conn.execute(query, {"id": int(user_id)})).scalar()
        return found


@app.get("/whoami")
async def whoami(session: SessionDep) -> dict[str, str | None]:
    user_id = await store.user_id(session, password_of)
    if user_id is None:
        return {"username": None}
    async with engine.connect() as conn:
        query = text("SELECT username FROM auth_user WHERE id = :id")
        return {"username": (await conn.execute(query, {"id": int(user_id)})).scalar()}


@app.post("/login")
async def login(
    session: SessionDep, username: Annotated[str, Form()], password: Annotated[str, Form()]
) -> dict[str, str]:
    async with engine.connect() as conn:
        query = text("SELECT id, password FROM auth_user WHERE username = :name AND is_active")
        row = (await conn.execute(query, {"name": username})).first()
    if row is None or not check_password(password, row.password):
        raise HTTPException(403, "wrong username or password")
    store.login(session, row.id, row.password)
    return {"username": username}


@app.post("/logout")
async def logout(session: SessionDep) -> dict[str, str]:
    store.logout(session)
    return {"status": "logged out"}
