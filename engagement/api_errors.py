"""The JSON error shape of docs/ARCHITECTURE.md §4: `{"error": {"code", "message", "details"}}`."""

from django.http import JsonResponse


class ApiError(Exception):
    """An answer other than success; `headers` are added to the response (Allow, Retry-After…)."""

    def __init__(
        self, status: int, code: str, message: str, details: list | None = None, headers: dict | None = None
    ):
        super().__init__(message)
        self.status, self.code, self.message, self.details = status, code, message, details or []
        self.headers = headers or {}


def error_response(status: int, code: str, message: str, details=None, headers=None) -> JsonResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    response = JsonResponse(body, status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def method_not_allowed(allowed) -> ApiError:
    allowed = sorted(set(allowed))
    return ApiError(
        405, "method_not_allowed", f"use {' or '.join(allowed)} on this path",
        headers={"Allow": ", ".join(allowed)},
    )
