"""Flash messages: a note for the user's next page, kept in the session and read once, as
Flask's ``flash`` and Django's messages framework keep theirs.

    flash(session, "Saved.", "success")        # then redirect
    ...
    for category, message in flashes(session):  # on the next page: gone once read
        ...

Any framework's session works (``session_data(request)``, FastAPI's ``SessionDep``, a
bareASGI ``session_data``), and so does any store: the messages are one session key.
"""

from __future__ import annotations

from typing import NamedTuple

from .session import Session

__all__ = ["FLASH_KEY", "MAX_FLASHES", "Flash", "flash", "flashes"]

FLASH_KEY = "_flashes"
"""The session key that holds the waiting messages, as ``[category, message]`` pairs."""
MAX_FLASHES = 50
"""Messages kept waiting at most: a client that never shows a page (an API client posting
in a loop) must not grow its session without bound. Past it, the oldest goes."""


class Flash(NamedTuple):
    """One message; unpacks as ``category, message`` (Flask's ``with_categories``)."""

    category: str
    message: str


def flash(session: Session, message: str, category: str = "message") -> None:
    """Keep ``message`` for the next page that reads :func:`flashes`. ``category`` is any
    word the templates style by (Flask's default, ``"message"``; or ``"error"``, ...)."""
    if not isinstance(message, str) or not isinstance(category, str):
        raise TypeError(
            f"a flash message and its category are str: {type(message).__name__}, "
            f"{type(category).__name__}"
        )
    waiting = [list(entry) for entry in _waiting(session)]
    waiting.append([category, message])
    session[FLASH_KEY] = waiting[-MAX_FLASHES:]


def flashes(session: Session, *categories: str) -> list[Flash]:
    """The messages waiting, oldest first, and gone from the session once read. Given
    ``categories``, only those are read; the others wait for another call."""
    waiting = _waiting(session)
    if not waiting:
        return []
    read: list[Flash] = []
    kept: list[list[str]] = []
    for entry in waiting:
        if not categories or entry.category in categories:
            read.append(entry)
        else:
            kept.append(list(entry))
    if kept:
        session[FLASH_KEY] = kept
    else:
        del session[FLASH_KEY]
    return read


def _waiting(session: Session) -> list[Flash]:
    """What the session holds, as messages; a value this module did not write (another
    library's key of the same name) is passed over rather than shown to a user."""
    stored = session.get(FLASH_KEY)
    if not isinstance(stored, list):
        return []
    return [
        Flash(entry[0], entry[1])
        for entry in stored
        if isinstance(entry, list | tuple)
        and len(entry) == 2
        and all(isinstance(part, str) for part in entry)
    ]
