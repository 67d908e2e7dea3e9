"""The Django views the tests call: what a Django project does with its sessions."""

from __future__ import annotations

import json

from django.contrib.auth import authenticate, get_user_model, login, logout
from django.http import HttpRequest, HttpResponse
from django.urls import path


def log_in(request: HttpRequest) -> HttpResponse:
    user = authenticate(request, username=request.GET["user"], password=request.GET["password"])
    if user is None:
        return HttpResponse("refused", status=403)
    login(request, user)
    return HttpResponse("ok")


def log_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return HttpResponse("ok")


def whoami(request: HttpRequest) -> HttpResponse:
    user = request.user
    return HttpResponse(user.get_username() if user.is_authenticated else "anonymous")


def set_value(request: HttpRequest) -> HttpResponse:
    for key, value in request.GET.items():
        request.session[key] = json.loads(value)
    return HttpResponse("ok")


def show(request: HttpRequest) -> HttpResponse:
    values = dict(request.session.items())
    expiry = {
        "age": request.session.get_expiry_age(),
        "browser": request.session.get_expire_at_browser_close(),
    }
    return HttpResponse(json.dumps({"values": values, "expiry": expiry}, default=str))


def set_expiry(request: HttpRequest) -> HttpResponse:
    request.session.set_expiry(int(request.GET["seconds"]))
    return HttpResponse("ok")


def change_password(request: HttpRequest) -> HttpResponse:
    user = get_user_model().objects.get(username=request.GET["user"])
    user.set_password(request.GET["password"])
    user.save()
    return HttpResponse("ok")


urlpatterns = [
    path("login/", log_in),
    path("logout/", log_out),
    path("whoami/", whoami),
    path("set/", set_value),
    path("show/", show),
    path("expiry/", set_expiry),
    path("password/", change_password),
]
