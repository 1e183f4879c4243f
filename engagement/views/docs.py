"""The OpenAPI document, and JSON answers for API paths Django would answer in HTML."""

from django.views.defaults import page_not_found, server_error

from ..api import error_response, json_response
from ..openapi import document

API_PREFIXES = ("/api/", "/v1/")


def openapi_json(request):
    if request.method not in ("GET", "HEAD"):
        return error_response(405, "method_not_allowed", "use GET on this path")
    return json_response(document())


def not_found(request, exception=None):
    """Unknown API paths get the JSON error shape; everything else Django's page."""
    if request.path.startswith(API_PREFIXES):
        return error_response(404, "not_found", f"no API route at {request.path[:200]}")
    return page_not_found(request, exception)


def server_failure(request):
    if request.path.startswith(API_PREFIXES):
        return error_response(500, "internal_error", "something went wrong on our side")
    return server_error(request)
