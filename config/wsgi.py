import os
from collections.abc import Callable, Iterable
from typing import Any

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

django_application = get_wsgi_application()

BAD_HEADER_BODY = (
    b'{"type": "client_error", "errors": [{"code": "bad_request", '
    b'"detail": "A request header contains a NUL character.", "attr": null}]}'
)


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """Django's application behind one guard: a NUL in the Content-Type makes Django fail
    while building the request, before any middleware could answer in the error shape."""
    if "\x00" in environ.get("CONTENT_TYPE", ""):
        start_response(
            "400 Bad Request",
            [("Content-Type", "application/json"), ("Content-Length", str(len(BAD_HEADER_BODY)))],
        )
        return [BAD_HEADER_BODY]
    return django_application(environ, start_response)
