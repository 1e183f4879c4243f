"""The request/response plumbing every native JSON view uses (docs/ARCHITECTURE.md, "The API").

`api_view` declares, per HTTP method, the scope a route needs, and which
methods a user token of the route's own user may call. It answers 405 (with
`Allow`) for other methods, authenticates the API key or user token (401 with
`WWW-Authenticate`), checks the scope (403) and the rate limit (429), and
turns `ApiError` and identity conflicts into the error shape of
`api_errors`. Views receive `request.principal` (the key or the token),
`request.actor` (`api_key:<name>` or `user_token`) and, on token routes,
`request.acting_user`.
"""

import logging
from collections.abc import Callable, Iterable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import keys, ratelimit, user_tokens
from .api_errors import ApiError, error_response, method_not_allowed
from .http_body import decoded_body
from .identity import IdentityConflict, find_user
from .refs import InvalidRef, parse_user_ref
from .validation import strict_json_loads

__all__ = [
    "ApiError", "api_view", "error_response", "json_response", "optional_json_object", "parse_json_object",
    "user_for_ref",
]

log = logging.getLogger("pulse.api")

BEARER_CHALLENGE = 'Bearer realm="pulse"'
TOKEN_SCOPE = "user_token"  # the rate-limit bucket of user tokens, per user


class RateLimited(ApiError):
    def __init__(self, verdict):
        super().__init__(
            429, "rate_limited", f"rate limit of {verdict.limit} requests per minute exceeded",
            headers={"Retry-After": str(verdict.retry_after)},
        )
        self.retry_after = verdict.retry_after


def unauthorized(message: str = "a valid API key is required") -> ApiError:
    return ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": BEARER_CHALLENGE})


def bearer_key(request: HttpRequest) -> str | None:
    """The credential from `Authorization: Bearer …` or the `X-Api-Key` header."""
    header = request.headers.get("Authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("X-Api-Key")


def authorize(request: HttpRequest, scope: str, raw_key: str | None, *, challenge=BEARER_CHALLENGE):
    """Authenticate an API key, check the scope and the rate limit; raise ApiError or return it."""
    key = keys.authenticate(raw_key)
    if key is None:
        raise ApiError(401, "unauthorized", "a valid API key is required",
                       headers={"WWW-Authenticate": challenge})
    if not key.allows(scope):
        raise ApiError(403, "forbidden", f"this API key lacks the '{scope}' scope")
    _rate_limit(key.pk, scope)
    keys.touch_last_used(key, timezone.now())
    request.api_key = request.principal = key
    request.actor = f"api_key:{key.name}"
    return key


def _rate_limit(bucket, scope: str) -> None:
    verdict = ratelimit.check(bucket, scope)
    if not verdict.allowed:
        raise RateLimited(verdict)


def authorize_token(request: HttpRequest, raw: str, kwargs: dict) -> None:
    """A user token acts only for its own user: the route's `user_ref` must name it (else 403)."""
    token = user_tokens.verify(raw, now=timezone.now())
    if token is None:
        raise unauthorized("the user token is invalid or expired")
    user = _user_named(kwargs.get("user_ref"))
    if user is None or user.pk != token.user_id:
        raise ApiError(403, "forbidden", "a user token acts only for its own user")
    _rate_limit(f"u{token.user_id}", TOKEN_SCOPE)
    request.api_key = None
    request.principal = token
    request.actor = token.name
    request.acting_user = user


def _user_named(user_ref: str | None):
    if user_ref is None:
        return None
    try:
        return find_user(parse_user_ref(user_ref))
    except InvalidRef:
        return None


def user_for_ref(request: HttpRequest, user_ref: str):
    """The live user a path's ref names (the token's user on token requests); 400 or 404."""
    acting = getattr(request, "acting_user", None)
    if acting is not None:
        return acting
    try:
        ids = parse_user_ref(user_ref)
    except InvalidRef as exc:
        raise ApiError(400, "invalid_user_ref", str(exc)) from None
    user = find_user(ids)
    if user is None:
        raise ApiError(404, "not_found", "no such user")
    return user


def api_view(scopes: dict[str, str], *, user_token: Iterable[str] = ()) -> Callable:
    """Decorate a native JSON view.

    `scopes` maps each allowed method to the scope it needs, e.g.
    `{"GET": "read", "DELETE": "admin"}`. `user_token` lists the methods a
    user token may call; the route must then take a `user_ref`, and the token
    is accepted only for that user. Those routes answer CORS requests from
    `PULSE_CORS_ORIGINS`.
    """
    scopes = {method.upper(): scope for method, scope in scopes.items()}
    token_methods = tuple(m.upper() for m in user_token)
    unknown = set(token_methods) - set(scopes)
    if unknown:
        raise ValueError(f"user_token names methods the view does not serve: {sorted(unknown)}")

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method == "OPTIONS" and token_methods:
                return _cors(request, HttpResponse(status=204), token_methods, preflight=True)
            response = _dispatch(view, scopes, token_methods, request, args, kwargs)
            return _cors(request, response, token_methods) if token_methods else response

        wrapped.pulse_scopes = dict(scopes)
        wrapped.pulse_methods = tuple(scopes)
        wrapped.pulse_user_token = token_methods
        return wrapped

    return decorate


def public_view(methods: Iterable[str]) -> Callable:
    """A route that needs no credential (`/healthz`, the OpenAPI document): JSON 405s, no CSRF."""
    allowed = tuple(m.upper() for m in methods)

    def decorate(view):
        @csrf_exempt
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.method not in allowed:
                exc = method_not_allowed(allowed)
                return error_response(exc.status, exc.code, exc.message, headers=exc.headers)
            return view(request, *args, **kwargs)

        wrapped.pulse_scopes = dict.fromkeys(allowed)
        wrapped.pulse_methods = allowed
        wrapped.pulse_user_token = ()
        return wrapped

    return decorate


def _dispatch(view, scopes, token_methods, request, args, kwargs):
    if request.method == "HEAD" and "GET" in scopes:
        return _head(view, scopes, token_methods, request, args, kwargs)
    try:
        if request.method not in scopes:
            raise method_not_allowed([*scopes, "HEAD"] if "GET" in scopes else scopes)
        raw = bearer_key(request)
        if user_tokens.looks_like_token(raw):
            if request.method not in token_methods:
                raise unauthorized("this route does not accept user tokens; use an API key")
            authorize_token(request, raw, kwargs)
        else:
            authorize(request, scopes[request.method], raw)
        return view(request, *args, **kwargs)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
    except IdentityConflict as exc:
        return error_response(409, exc.code, str(exc))


def _head(view, scopes, token_methods, request, args, kwargs):
    """HEAD is GET without the body (RFC 9110 §9.3.2): same status, same headers, same auth."""
    request.method = "GET"
    try:
        response = _dispatch(view, scopes, token_methods, request, args, kwargs)
    finally:
        request.method = "HEAD"
    if not getattr(response, "streaming", False):
        response["Content-Length"] = str(len(response.content))
        response.content = b""
    return response


def _cors(request, response, methods, *, preflight: bool = False):
    origin = request.headers.get("Origin")
    allowed = settings.PULSE_CORS_ORIGINS
    if origin and (origin in allowed or "*" in allowed):
        response["Access-Control-Allow-Origin"] = origin
        response["Access-Control-Expose-Headers"] = "Retry-After"
        if preflight:
            response["Access-Control-Allow-Methods"] = ", ".join(methods)
            response["Access-Control-Allow-Headers"] = "Authorization, Content-Type, Content-Encoding"
            response["Access-Control-Max-Age"] = "600"
    response["Vary"] = "Origin"
    return response


def allows(request: HttpRequest, scope: str) -> bool:
    """Whether the caller's credential holds `scope` (a user token holds none)."""
    return request.principal.allows(scope)


def parse_json_object(request: HttpRequest) -> dict:
    """Strict JSON body: application/json, plain or gzip, at most 1 MiB inflated, an object."""
    content_type = request.content_type or ""
    if content_type != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    return decode_json_object(decoded_body(request))


def optional_json_object(request: HttpRequest) -> dict:
    """A JSON object body (checked like any other), or {} when the request has no body at all:
    for actions whose body is optional or empty (a token request, a read receipt)."""
    has_body = request.META.get("CONTENT_LENGTH", "").strip() not in ("", "0") or (
        "chunked" in request.META.get("HTTP_TRANSFER_ENCODING", "").lower()
    )
    return parse_json_object(request) if has_body else {}


def decode_json_object(body: bytes, *, not_object_code: str = "invalid_body") -> dict:
    """Parse a body that must hold a JSON object; NaN and Infinity are refused."""
    try:
        data = strict_json_loads(body or b"null", finite=False)
    except (ValueError, RecursionError) as exc:
        raise ApiError(400, "invalid_json", f"the body is not valid JSON: {_reason(exc)}") from None
    if not isinstance(data, dict):
        raise ApiError(400, not_object_code, "the body must be a JSON object")
    return data


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecursionError):
        return "it nests too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8"
    return str(exc)[:200]


def json_response(data, status: int = 200) -> JsonResponse:
    return JsonResponse(data, status=status, safe=False)
