"""examples/django_shared: a Django project and a FastAPI app, each under a real uvicorn,
sharing one SQLite database: a login on either side is a login on both."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from support.servers import uvicorn

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "django_shared"


def test_logins_cross_between_django_and_fastapi(tmp_path: Path) -> None:
    env = {
        "DJANGO_DB": str(tmp_path / "db.sqlite3"),
        "DJANGO_SECRET_KEY": "a-test-secret-for-the-example-project-0123456789",
        "DJANGO_SETTINGS_MODULE": "project.settings",
    }

    def manage(*arguments: str) -> None:
        command = [sys.executable, "manage.py", *arguments]
        subprocess.run(command, cwd=EXAMPLE, env={**os.environ, **env}, check=True)

    manage("migrate", "--verbosity", "0")
    manage("shell", "-c", "from django.contrib.auth.models import User; "
           "User.objects.create_user('ada', password='pw-ada-0123')")  # fmt: skip
    credentials = {"username": "ada", "password": "pw-ada-0123"}
    with (
        uvicorn(EXAMPLE, "project.asgi:application", env) as django,
        uvicorn(EXAMPLE, "fastapi_app:app", env) as fastapi,
    ):
        # Logged in by Django: FastAPI knows the user.
        login = httpx.post(f"{django}/login/", data=credentials)
        assert login.status_code == 200, login.text
        cookie = {"sessionid": login.cookies["sessionid"]}
        assert httpx.get(f"{fastapi}/whoami", cookies=cookie).json() == {"username": "ada"}

        # Logged in by FastAPI: Django's request.user is that user.
        login = httpx.post(f"{fastapi}/login", data=credentials)
        assert login.status_code == 200, login.text
        cookie = {"sessionid": login.cookies["sessionid"]}
        assert httpx.get(f"{django}/whoami/", cookies=cookie).text == "ada"
        refused = httpx.post(f"{fastapi}/login", data={**credentials, "password": "wrong"})
        assert refused.status_code == 403

        # Logged out by FastAPI: Django no longer knows the user.
        httpx.post(f"{fastapi}/logout", cookies=cookie)
        assert httpx.get(f"{django}/whoami/", cookies=cookie).text == "anonymous"
