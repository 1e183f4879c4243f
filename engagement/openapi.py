"""The core's OpenAPI fragment, and the document assembled from every app's fragment.

Each app lists its fragment in PULSE_OPENAPI_FRAGMENTS; `x-pulse-scope` on an
operation names the API-key scope it needs.
"""

from .registry import entries

ERROR = {"$ref": "#/components/schemas/Error"}


def _op(summary, scope, *, status="200", body=None, params=(), responses=None):
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
        operation["requestBody"] = {"required": True, "content": _json(body)}
        operation["responses"]["400"] = {"description": "invalid body", "content": _json(ERROR)}
        operation["responses"]["413"] = {"description": "body over 1 MiB", "content": _json(ERROR)}
        operation["responses"]["415"] = {"description": "not JSON", "content": _json(ERROR)}
    return operation


def _json(schema):
    return {"application/json": {"schema": schema}}


USER_REF = {
    "name": "user_ref", "in": "path", "required": True, "schema": {"type": "string"},
    "description": "a bare external id, or anon:<id>, email:<address>, ext:<id>",
}
IDENTIFIERS = {
    "id": {"type": "string", "minLength": 1, "maxLength": 255},
    "anonymous_id": {"type": "string", "minLength": 1, "maxLength": 255},
    "email": {"type": "string", "format": "email", "maxLength": 320},
}
SIGNAL = {
    "type": "object",
    "additionalProperties": False,
    "required": ["user", "name"],
    "properties": {
        "user": {"type": "object", "additionalProperties": False, "minProperties": 1,
                 "properties": IDENTIFIERS, "description": "at least one identifier"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "occurred_at": {"type": "string", "format": "date-time"},
        "properties": {"type": "object"},
        "tenant": {"type": "string", "minLength": 1, "maxLength": 200},
        "feature": {"type": "string", "minLength": 1, "maxLength": 200},
        "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 255},
        "item": {"type": "string", "minLength": 1, "maxLength": 255},
        "interaction": {"type": "string", "minLength": 1, "maxLength": 100},
        "context": {"type": "object"},
    },
}
IDENTIFY = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **IDENTIFIERS,
        "properties": {"type": "object", "description": "shallow patch; null deletes a key"},
        "timezone": {"type": "string"},
        "locale": {"type": "string"},
        "reengagement_opt_out": {"type": "boolean"},
        "tenants": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key"],
                "properties": {
                    "key": {"type": "string"}, "name": {"type": "string"},
                    "joined_at": {"type": "string", "format": "date-time"},
                    "role": {"type": "string"},
                },
            },
        },
    },
}

FRAGMENT = {
    "paths": {
        "/api/v1/users": {
            "post": _op("Identify a user: resolve, merge, patch properties, join tenants",
                        "ingest", body=IDENTIFY, responses={
                            "201": {"description": "created"},
                            "409": {"description": "identity_conflict", "content": _json(ERROR)}}),
        },
        "/api/v1/users/{user_ref}": {
            "get": _op("A user with memberships and recent signals", "read", params=[USER_REF],
                       responses={"404": {"description": "no such user"}}),
            "delete": _op("Erase a user (GDPR)", "admin", params=[USER_REF],
                          responses={"404": {"description": "no such user"}}),
        },
        "/api/v1/signals": {
            "post": _op("Ingest one signal or {signals: [...]} of up to 1000", "ingest",
                        status="202", body={"oneOf": [SIGNAL, {
                            "type": "object", "required": ["signals"],
                            "properties": {"signals": {"type": "array", "maxItems": 1000,
                                                       "items": SIGNAL}}}]}),
        },
        "/api/v1/openapi.json": {"get": _op("This document", None)},
        "/healthz": {"get": _op("Database, Redis and scheduler status", None,
                                responses={"503": {"description": "database down"}})},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
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
    doc = {
        "openapi": "3.1.0",
        "info": {"title": "Pulse API", "version": "1"},
        "paths": {},
        "components": {"securitySchemes": {}, "schemas": {}},
    }
    for fragment in entries("PULSE_OPENAPI_FRAGMENTS"):
        doc["paths"].update(fragment.get("paths", {}))
        for section, values in fragment.get("components", {}).items():
            doc["components"].setdefault(section, {}).update(values)
    return doc
