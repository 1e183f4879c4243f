"""The OpenAPI document, the front page, and JSON answers for API paths Django would answer in HTML."""

from django.http import JsonResponse
from django.views.defaults import page_not_found, server_error

from ..api import error_response, json_response, public_view
from ..openapi import document

NATIVE_PREFIX = "/api/"
SEGMENT_PREFIX = "/v1/"


@public_view(("GET", "HEAD"))
def openapi_json(request):
    return json_response(document())


def not_found(request, exception=None):
    """Unknown API paths answer in their API's error shape (the path is never echoed)."""
    if request.path.startswith(SEGMENT_PREFIX):
        return _segment_error(404, "not_found", "no such Segment-compatible endpoint")
    if request.path.startswith(NATIVE_PREFIX):
        return error_response(404, "not_found", "no API route at this path")
    return page_not_found(request, exception)


def server_failure(request):
    if request.path.startswith(SEGMENT_PREFIX):
        return _segment_error(500, "internal_error", "something went wrong on our side")
    if request.path.startswith(NATIVE_PREFIX):
        return error_response(500, "internal_error", "something went wrong on our side")
    return server_error(request)


def _segment_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"success": False, "code": code, "message": message}, status=status)
