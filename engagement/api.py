"""The request/response plumbing every native JSON view uses.

`api_view` handles method checks, API-key authentication, scopes and rate
limits, and turns `ApiError` (and identity conflicts) into the error shape of
DESIGN.md §4: `{"error": {"code", "message", "details"}}`.
"""

import logging
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import keys, ratelimit
from .identity import IdentityConflict
from .validation import strict_json_loads

log = logging.getLogger("pulse.api")



class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, details: list | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []


def error_response(status: int, code: str, message: str, details=None, headers=None):
    body = {"error": {"code": code, "message": message, "details": details or []}}
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def bearer_key(request: HttpRequest) -> str | None:
    """The key from `Authorization: Bearer …` or the `X-Api-Key` header."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-Api-Key")


def authorize(request: HttpRequest, scope: str, raw_key: str | None):
    """Authenticate, check the scope and the rate limit; raise ApiError or return the key."""
    key = keys.authenticate(raw_key)
    if key is None:
        raise ApiError(401, "unauthorized", "a valid API key is required")
    if not key.allows(scope):
        raise ApiError(403, "forbidden", f"this API key lacks the '{scope}' scope")
    verdict = ratelimit.check(key.pk, scope)
    if not verdict.allowed:
        raise RateLimited(verdict)
    keys.touch_last_used(key, timezone.now())
    return key


class RateLimited(ApiError):
    def __init__(self, verdict):
        super().__init__(
            429, "rate_limited", f"rate limit of {verdict.limit} requests per minute exceeded"
        )
        self.retry_after = verdict.retry_after


def api_view(scope: str, methods: tuple[str, ...]) -> Callable:
    """Decorate a native JSON view: `view(request, *args, **kwargs)` gets `request.api_key`."""

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            try:
                if request.method not in methods:
                    raise ApiError(
                        405, "method_not_allowed", f"use {' or '.join(methods)} on this path"
                    )
                request.api_key = authorize(request, scope, bearer_key(request))
                return view(request, *args, **kwargs)
            except RateLimited as exc:
                return error_response(
                    429, exc.code, exc.message, headers={"Retry-After": str(exc.retry_after)}
                )
            except ApiError as exc:
                return error_response(exc.status, exc.code, exc.message, exc.details)
            except IdentityConflict as exc:
                return error_response(409, exc.code, str(exc))

        wrapped.pulse_scope = scope
        wrapped.pulse_methods = methods
        return wrapped

    return decorate


def read_body(request: HttpRequest, limit: int | None = None) -> bytes:
    """The raw body, refusing anything over the limit (413) before and after reading."""
    limit = limit or settings.PULSE_MAX_BODY_BYTES
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise ApiError(400, "invalid_request", "Content-Length is not a number") from None
    if declared > limit:
        raise _too_large(limit)
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _too_large(limit)
    return body


def _too_large(limit: int) -> ApiError:
    return ApiError(413, "payload_too_large", f"the body exceeds {limit} bytes")


def parse_json_object(request: HttpRequest) -> dict:
    """Strict JSON body: application/json, at most 1 MiB, an object at the top."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    return decode_json_object(read_body(request))


def decode_json_object(body: bytes, *, not_object_code: str = "invalid_body") -> dict:
    """Parse a body that must hold a JSON object; NaN and Infinity are refused."""
    try:
        data = strict_json_loads(body or b"null", finite=False)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, not_object_code, "the body must be a JSON object")
    return data


def json_response(data, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False)
