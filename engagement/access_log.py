"""One `pulse.access` line per request, naming the route pattern and never the path.

    event=request method=GET route=/api/v1/users/<user_ref> status=200 bytes=312 duration_ms=4 client=10.0.0.7

A path such as `/api/v1/users/email:ada@example.com` would keep the address in
the logs after the user is erased, so the line carries the URL pattern that
matched (`-` when none did); the query string and bodies are never logged.
gunicorn's own access log is off (config/gunicorn.conf.py): this middleware,
first in MIDDLEWARE, sees every response Django sends, static files included.

The client is `client_address.client_address(request)`: REMOTE_ADDR, or
behind a proxy listed in PULSE_TRUSTED_PROXIES the address it forwarded.
"""

import logging
import re
import time

from .client_address import client_address

log = logging.getLogger("pulse.access")

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"})
NO_ROUTE = "-"
STATIC_ROUTE = "<path>"
_CONVERTER = re.compile(r"<\w+:(\w+)>")


class AccessLogMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        log.info(
            "event=request method=%s route=%s status=%d bytes=%s duration_ms=%d client=%s",
            method_of(request), route_of(request), response.status_code, size_of(response),
            (time.monotonic() - started) * 1000, client_address(request) or "-",
        )
        return response


def method_of(request) -> str:
    """The HTTP method; anything outside the standard set is `OTHER` (it is client text)."""
    method = getattr(request, "method", None) or ""
    return method if method in METHODS else "OTHER"


def route_of(request) -> str:
    """The URL pattern that matched, with a leading slash (`/api/v1/users/<user_ref>`).

    Converters are dropped (`<path:user_ref>` is `<user_ref>`). A path no
    pattern matched is `-`. Static files are served before URL resolution;
    they are `/static/<path>` (STATIC_URL).
    """
    match = getattr(request, "resolver_match", None)
    if match is not None:
        route = getattr(match, "route", None) or ""
        return "/" + _CONVERTER.sub(r"<\1>", route).lstrip("/")
    static = _static_prefix()
    if static and str(getattr(request, "path", "")).startswith(static):
        return static + STATIC_ROUTE
    return NO_ROUTE


def _static_prefix() -> str | None:
    from django.conf import settings

    url = getattr(settings, "STATIC_URL", None) or ""
    if not url or "://" in url:
        return None
    return "/" + url.strip("/") + "/"


def size_of(response) -> str:
    """Body bytes: Content-Length when set, else the content's length; `-` for a stream without one."""
    declared = response.get("Content-Length")
    if declared and declared.isdigit():
        return declared
    if getattr(response, "streaming", False):
        return "-"
    return str(len(response.content))
