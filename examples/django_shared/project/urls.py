"""Django's side: a login form's target, who is logged in, and a logout."""

from __future__ import annotations

from django.contrib.auth import authenticate, login, logout
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def log_in(request: HttpRequest) -> HttpResponse:
    user = authenticate(
        request, username=request.POST.get("username"), password=request.POST.get("password")
    )
    if user is None:
        return HttpResponse("wrong username or password", status=403)
    login(request, user)
    return HttpResponse(f"logged in as {user.get_username()}")


def whoami(request: HttpRequest) -> HttpResponse:
    user = request.user
    return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")


def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("logged out")


# csrf_exempt: an example without forms; a real project keeps CSRF on.
urlpatterns = [
    path("login/", csrf_exempt(log_in)),
    path("whoami/", whoami),
    path("logout/", csrf_exempt(log_out)),
]
