"""The core's OpenAPI fragment, and the document assembled from every app's fragment.

Each app lists its fragment in PULSE_OPENAPI_FRAGMENTS; `x-pulse-scope` on an
operation names the API-key scope it needs.
"""

import re

from django.conf import settings

from . import schemas
from .registry import entries

ERROR = {"$ref": "#/components/schemas/Error"}


def _op(summary, scope, *, status="200", body=None, body_required=True, params=(), responses=None):
    operation = {
        "summary": summary,
        "x-pulse-scope": scope,
        "security": [] if scope is None else [{"bearer": []}],
        "parameters": list(params),
        "responses": {status: {"description": "success"}, **(responses or {})},
    }
    if scope is not None:
        for code, text in (("401", "missing or wrong key"), ("403", "key lacks the scope"),
                           ("429", "rate limited; see Retry-After")):
            operation["responses"][code] = {"description": text, "content": _json(ERROR)}
    if body:
        operation["requestBody"] = {"required": body_required, "content": _json(body)}
        operation["responses"]["400"] = {"description": "invalid body", "content": _json(ERROR)}
        operation["responses"]["413"] = {"description": "body over 1 MiB", "content": _json(ERROR)}
        operation["responses"]["415"] = {"description": "not JSON", "content": _json(ERROR)}
    return operation


def _json(schema):
    return {"application/json": {"schema": schema}}


USER_REF = {
    "name": "user_ref", "in": "path", "required": True, "schema": {"type": "string"},
    "description": "one path segment naming one user, exactly as stored: a bare external id, "
    "or ext:<id>, anon:<id>, email:<address>, or b64:<base64url of one of those> for an "
    "identifier holding a '/'. Percent-encode it once; nothing is trimmed.",
}
# Request bodies: generated from the shapes the views validate with (schemas.py).
IDENTIFY = {"$ref": "#/components/schemas/Identify"}
SIGNAL = {"$ref": "#/components/schemas/Signal"}
TOKEN_REQUEST = {"$ref": "#/components/schemas/TokenRequest"}
LIFECYCLE_RESPONSE = {
    "type": "object", "additionalProperties": False, "required": ["response"],
    "properties": {"response": {"enum": ["confused", "busy", "no_thanks", "stop"]}},
}
SIGNAL_BATCH = {
    "type": "object", "additionalProperties": False, "required": ["signals"],
    "properties": {"signals": {"type": "array", "minItems": 1, "maxItems": settings.PULSE_MAX_BATCH,
                               "items": SIGNAL}},
}

FRAGMENT = {
    "paths": {
        "/api/v1/users": {
            "post": _op("Identify a user: resolve, merge, patch properties, join tenants. With "
                        "only the ingest scope the answer is {id, created, merged_user_ids}; "
                        "a key that also has read gets the whole user",
                        "ingest", body=IDENTIFY, responses={
                            "201": {"description": "created"},
                            "409": {"description": "identity_conflict: names which of the "
                                    "request's identifiers collide, never whose they are",
                                    "content": _json(ERROR)}}),
        },
        "/api/v1/users/{user_ref}": {
            "get": _op("A user with memberships, recent signals and every app's section; a "
                       "section that fails is left out and its key listed in sections_failed",
                       "read", params=[USER_REF],
                       responses={"404": {"description": "no such user"}}),
            "delete": _op("Erase a user (GDPR)", "admin", params=[USER_REF],
                          responses={"404": {"description": "no such user"}}),
        },
        "/api/v1/users/{user_ref}/token": {
            "post": _op("Mint a short-lived user token for this user (default 1 hour); body "
                        "optional: {ttl_seconds}", "send", status="201", params=[USER_REF],
                        body=TOKEN_REQUEST, body_required=False,
                        responses={"404": {"description": "no such user"}}),
        },
        "/api/v1/users/{user_ref}/lifecycle": {
            "post": _op("Answer the goodbye: confused (help flow), busy (remind in 14 days), no_thanks "
                        "(dormant) while the goodbye is outstanding; stop in any state (sets "
                        "reengagement_opt_out, ends an open goodbye, help flow or reminder). The "
                        "answer is {lifecycle: LIFECYCLE}", "send", params=[USER_REF],
                        body=LIFECYCLE_RESPONSE, responses={
                            "404": {"description": "no such user"},
                            "409": {"description": "invalid_transition: not valid in the user's "
                                    "state now", "content": _json(ERROR)}}),
        },
        "/api/v1/signals": {
            "post": _op(f"Ingest one signal or {{signals: [...]}} of up to {settings.PULSE_MAX_BATCH}. "
                        "The answer is "
                        "{accepted, duplicates, rejected: [{index, errors: [{field, message, code?}]}]}; "
                        "codes: idempotency_conflict, reserved_name, identity_conflict", "ingest",
                        status="202", body={"oneOf": [SIGNAL, SIGNAL_BATCH]}),
        },
        "/api/v1/openapi.json": {"get": _op("This document", None)},
        "/": {"get": {**_op("A small HTML page: Pulse is running, its version, links to the admin, "
                            "this document and /healthz", None),
                      "responses": {"200": {"description": "success", "content": {"text/html": {}}}}}},
        "/healthz": {"get": _op("Database, Redis and scheduler status", None,
                                responses={"503": {"description": "database down"}})},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            **schemas.components(),
            "Error": {
                "type": "object",
                "properties": {"error": {"type": "object", "properties": {
                    "code": {"type": "string"}, "message": {"type": "string"},
                    "details": {"type": "array"}}}},
            }
        },
    },
}


def document() -> dict:
    """Every app's fragment merged per path and method, with each operation's scope read
    from its view, so the document cannot drift from what the plumbing enforces."""
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Pulse API", "version": "1"},
        "paths": {},
        "components": {"securitySchemes": {}, "schemas": {}},
    }
    for fragment in entries("PULSE_OPENAPI_FRAGMENTS"):
        merge_paths(doc["paths"], fragment.get("paths", {}))
        for section, values in fragment.get("components", {}).items():
            doc["components"].setdefault(section, {}).update(values)
    doc["components"]["securitySchemes"]["userToken"] = {
        "type": "http", "scheme": "bearer",
        "description": "a user token (ut_…) from POST /api/v1/users/{user_ref}/token; "
        "accepted only where an operation says x-pulse-user-token, and only for its own user",
    }
    for path, view in api_routes():
        _apply_view_scopes(doc["paths"].get(path, {}), view)
    return doc


def merge_paths(paths: dict, added: dict) -> None:
    """Add a fragment's operations; the same path and method twice is a mistake, not an override."""
    for path, operations in added.items():
        target = paths.setdefault(path, {})
        for method, operation in operations.items():
            if method in target:
                raise ValueError(f"OpenAPI fragments both define {method.upper()} {path}")
            target[method] = operation


def api_routes(patterns=None, prefix: str = ""):
    """(OpenAPI path, view) for every URL pattern outside the admin."""
    from django.urls import URLPattern, URLResolver, get_resolver

    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if route.startswith("admin/"):
            continue
        if isinstance(entry, URLResolver):
            yield from api_routes(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route), entry.callback


def _apply_view_scopes(operations: dict, view) -> None:
    scopes = getattr(view, "pulse_scopes", None)
    if scopes is None:
        return
    token_methods = getattr(view, "pulse_user_token", ())
    for method, scope in scopes.items():
        operation = operations.get(method.lower())
        if operation is None:
            continue
        operation["x-pulse-scope"] = scope
        if method in token_methods:
            operation["x-pulse-user-token"] = True
            operation["security"] = [*operation.get("security", []), {"userToken": []}]
