"""The WSGI handler of the test Django site (``gunicorn tests.otel_redis.web_apps.django_wsgi:application``)."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.otel_redis.web_apps.django_site")

from django.core.wsgi import get_wsgi_application  # noqa: E402 - after the settings module is named

if os.environ.get("WEB_APP_INSTRUMENT") == "1":
    import otel_redis

    otel_redis.configure()

application = get_wsgi_application()
