"""FastAPI: the session, the current user and permissions as dependencies.

    from sesh.adapters.fastapi import SessionDep

    @app.get("/")
    async def home(session: SessionDep) -> dict[str, int]: ...

Install the middleware once (``app.add_middleware(SessionMiddleware, ...)`` from
``sesh.adapters.starlette`` or ``sesh.core``). Works in http and websocket routes, in
``async def`` and plain ``def`` endpoints. Changes made in a ``BackgroundTasks`` task are
saved after the response for server-side stores; a cookie store cannot carry them (the
cookie left with the response), so they are dropped with a warning.

The user comes from a :class:`sesh.core.identity.Users` (the app's loader):

    users = Users(load_user, auth_hash=lambda user: user.password_hash)
    CurrentUser = Annotated[User, Depends(current_user(users))]      # 401 without one
    OptionalUser = Annotated[User | None, Depends(optional_user(users))]

    @app.delete("/users/{id}", dependencies=[Depends(PermissionDependency([IsAdmin], users))])
"""

# No `from __future__ import annotations` here: older FastAPI (0.110, the oldest tested) cannot
# resolve the string annotations of an instance's __call__ (PermissionDependency) and
# takes its parameter for a query parameter.

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from sesh.core import Session
from sesh.core.csrf import CSRF_FIELD, SAFE_METHODS, csrf_valid, header_token
from sesh.core.errors import LoginTooOld
from sesh.core.identity import Users, require_recent_login
from sesh.core.middleware import no_session

__all__ = [
    "BasePermission",
    "IsAuthenticated",
    "PermissionDependency",
    "SessionDep",
    "csrf_protect",
    "current_user",
    "get_session",
    "optional_user",
    "recent_login",
]

U = TypeVar("U")


def get_session(connection: HTTPConnection) -> Session:
    """The request's (or websocket's) session; a dependency for ``Depends(get_session)``."""
    session = connection.scope.get("session")
    if not isinstance(session, Session):
        raise no_session(
            connection.scope,
            "add the middleware, e.g. app.add_middleware(SessionMiddleware, secret_key=...) "
            "with SessionMiddleware from sesh.adapters.starlette",
        )
    return session


SessionDep = Annotated[Session, Depends(get_session)]
"""An endpoint parameter annotated ``SessionDep`` receives the session."""


def _not_logged_in() -> HTTPException:
    return HTTPException(401, "not logged in")


def optional_user(users: Users[U]) -> Callable[[HTTPConnection], Awaitable[U | None]]:
    """A dependency giving the request's user, or None."""

    async def optional(connection: HTTPConnection) -> U | None:
        get_session(connection)  # the middleware's absence is an error, not "nobody"
        return await users.current(connection)

    return optional


def current_user(users: Users[U]) -> Callable[[HTTPConnection], Awaitable[U]]:
    """A dependency giving the request's user; 401 when nobody is logged in."""

    async def current(connection: HTTPConnection) -> U:
        get_session(connection)
        user = await users.current(connection)
        if user is None:
            raise _not_logged_in()
        return user

    return current


class BasePermission:
    """One rule a route requires: subclass it and say when the user may go on. A request
    with no user that fails a permission gets 401; one with a user gets 403."""

    async def has_permission(self, request: HTTPConnection, user: Any) -> bool:
        """Whether ``user`` (None when nobody is logged in) may make this request."""
        raise NotImplementedError


class IsAuthenticated(BasePermission):
    """Somebody is logged in."""

    async def has_permission(self, request: HTTPConnection, user: Any) -> bool:
        return user is not None


class PermissionDependency:
    """``dependencies=[Depends(PermissionDependency([IsAuthenticated, IsAdmin], users))]``:
    every permission must allow the request, checked in order."""

    def __init__(self, permissions: Sequence[type[BasePermission]], users: Users[Any]) -> None:
        if not permissions or not all(
            isinstance(p, type) and issubclass(p, BasePermission) for p in permissions
        ):
            raise TypeError("permissions is a list of BasePermission subclasses")
        self.permissions = [permission() for permission in permissions]
        self.users = users

    async def __call__(self, request: HTTPConnection) -> None:
        get_session(request)
        user = await self.users.current(request)
        for permission in self.permissions:
            if not await permission.has_permission(request, user):
                if user is None:
                    raise _not_logged_in()
                raise HTTPException(403, "not allowed")


def recent_login(max_age: float) -> Callable[[HTTPConnection], None]:
    """A dependency refusing (401) a session whose login is older than ``max_age`` seconds:
    for a password change, say. Ask the user to log in again."""

    def check(connection: HTTPConnection) -> None:
        try:
            require_recent_login(get_session(connection), max_age)
        except LoginTooOld as error:
            raise HTTPException(401, "log in again to do this") from error

    return check


async def csrf_protect(request: HTTPConnection) -> None:
    """A dependency refusing (403) an unsafe request (POST, PUT, ...) without the session's
    CSRF token, in the ``X-CSRF-Token`` header or a form's ``csrf_token`` field. Websockets
    pass (check their ``Origin``: sesh's ``allowed_origins``), so it can guard a whole app:
    ``FastAPI(dependencies=[Depends(csrf_protect)])``."""
    if not isinstance(request, Request) or request.method in SAFE_METHODS:
        return
    token = header_token(request.scope["headers"])
    if token is None:
        value = (await request.form()).get(CSRF_FIELD)  # urlencoded or multipart; cached
        token = value if isinstance(value, str) else None
    if not csrf_valid(get_session(request), token):
        raise HTTPException(403, "CSRF token missing or wrong")
