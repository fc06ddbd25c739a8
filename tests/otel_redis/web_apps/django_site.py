"""A one-module Django site for the web-door tests (settings, URLs and views together).

``DJANGO_SETTINGS_MODULE=tests.otel_redis.web_apps.django_site``; the WSGI handler is in ``django_wsgi``.
``WEB_APP_INSTRUMENT=1`` adds otel_redis' Django middleware.
"""

from __future__ import annotations

import os

from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.urls import path

SECRET_KEY = "test-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = __name__
USE_TZ = True
INSTALLED_APPS: list[str] = []
MIDDLEWARE = ["otel_redis.django.RequestLoggingMiddleware"] if os.environ.get("WEB_APP_INSTRUMENT") == "1" else []
LOGGING_CONFIG = None


def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def item(request: HttpRequest, item_id: int) -> JsonResponse:
    request.user_id = f"user-{item_id}"  # type: ignore[attr-defined]
    return JsonResponse({"item": item_id, "name": "widget"})


def boom(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("kaput")


def stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(f"chunk-{i}\n" for i in range(3))


urlpatterns = [
    path("healthz", healthz),
    path("items/<int:item_id>", item),
    path("boom", boom),
    path("stream", stream),
]
