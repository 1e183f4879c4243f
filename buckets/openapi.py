"""OpenAPI fragment of `/api/v1/buckets` (listed in PULSE_OPENAPI_FRAGMENTS)."""

from engagement.openapi import ERROR, _json, _op

from .criteria.schema import SCHEMA


def _component(name: str) -> str:
    return "BucketCriteria" if name == "condition" else f"BucketCriteria_{name}"


def _rewrite(node):
    """The criteria schema's local `#/$defs/x` references, pointed at components."""
    if isinstance(node, dict):
        return {key: (f"#/components/schemas/{_component(value.rsplit('/', 1)[1])}"
                      if key == "$ref" and isinstance(value, str) and value.startswith("#/$defs/")
                      else _rewrite(value)) for key, value in node.items()}
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    return node


def criteria_components() -> dict:
    """One component per kind of condition; `BucketCriteria` is any condition."""
    return {_component(name): _rewrite(schema) for name, schema in SCHEMA["$defs"].items()}


CRITERIA = {"$ref": "#/components/schemas/BucketCriteria"}
SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
NOT_FOUND = {"404": {"description": "no such bucket", "content": _json(ERROR)}}
DEFINITION = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        "slug": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,99}$",
                 "description": "required on POST; on PUT it may repeat the path's slug, not change it. "
                 "Route words such as preview are reserved"},
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 5000},
        "kind": {"enum": ["dynamic", "manual"], "default": "dynamic"},
        "criteria": {**CRITERIA, "description": "required for a dynamic bucket, which must be positive; "
                     "absent or null for a manual one"},
        "enabled": {"type": "boolean", "default": True},
        "entry_limit": {
            "type": "object", "additionalProperties": False, "required": ["kind"],
            "description": "which entries fire the enter reactions (every entry is recorded)",
            "properties": {"kind": {"enum": ["always", "once", "once_per_period"], "default": "always"},
                           "period": {"type": "string", "pattern": "^[1-9][0-9]{0,6}[smhd]$",
                                      "description": "once_per_period only: since the last leave"}},
        },
        "reactions": {"type": "array", "maxItems": 50,
                      "items": {"$ref": "#/components/schemas/BucketReaction"}},
    },
}
REACTION = {
    "type": "object", "additionalProperties": False, "required": ["id", "on", "action"],
    "properties": {
        "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$",
               "description": "unique in the bucket"},
        "on": {"enum": ["enter", "leave"]},
        "reasons": {"type": "array", "items": {"enum": ["criteria", "manual"]},
                    "description": "leave reactions only: fire for these reasons (default any)"},
        "action": {"oneOf": [
            {"type": "object", "required": ["message"], "additionalProperties": False,
             "properties": {"message": {"type": "string", "description": "a template key"}}},
            {"type": "object", "required": ["webhook"], "additionalProperties": False,
             "properties": {"webhook": {"type": "string", "description": "a system webhook template key"}}},
            {"type": "object", "required": ["signal"], "additionalProperties": False,
             "properties": {"signal": {"type": "string",
                                       "description": "a signal name, not starting with $"}}},
        ]},
    },
}
MEMBERS_CHANGE = {
    "type": "object", "additionalProperties": False,
    "properties": {"add": {"type": "array", "items": {"type": "string"}, "description": "user refs"},
                   "remove": {"type": "array", "items": {"type": "string"}}},
    "description": "at most 1,000 refs in all",
}
USER_REF = {"name": "user_ref", "in": "path", "required": True, "schema": {"type": "string"}}
CONFLICT = {"409": {"description": "not a manual bucket, or disabled", "content": _json(ERROR)}}
INVALID = ("400: invalid_request with every error at its path in details, e.g. "
           "{field: criteria.all[1].within, message}")

FRAGMENT = {
    "paths": {
        "/api/v1/buckets": {
            "get": _op("Buckets by slug; limit and cursor, answer {items, next_cursor}", "read"),
            "post": _op(f"Define a bucket. {INVALID}; 409 when the slug is taken", "admin",
                        status="201", body=DEFINITION,
                        responses={"409": {"description": "slug taken", "content": _json(ERROR)}}),
        },
        "/api/v1/buckets/preview": {
            "post": _op("How many users match these criteria now, and up to 20 of them as canonical "
                        f"refs: {{count, sample}}; saves nothing. {INVALID}", "read",
                        body={"type": "object", "required": ["criteria"], "additionalProperties": False,
                              "properties": {"criteria": CRITERIA}}),
        },
        "/api/v1/buckets/{slug}": {
            "get": _op("One bucket, with its size (active members) and last_14_days {entered, left, days}",
                       "read", params=[SLUG], responses=NOT_FOUND),
            "put": _op("Replace a bucket's definition; omitted optional fields take their defaults. "
                       f"{INVALID}",
                       "admin", params=[SLUG], body=DEFINITION, responses=NOT_FOUND),
            "delete": _op("Disable a bucket (it is kept); answers the bucket", "admin", params=[SLUG],
                          responses=NOT_FOUND),
        },
        "/api/v1/buckets/{slug}/members": {
            "get": _op("Active members, newest entry first: {items: [{user, entered_at, entry_count, "
                       "source}], next_cursor}; limit and cursor", "read",
                       params=[SLUG], responses=NOT_FOUND),
            "post": _op("Add or remove members of a manual bucket: {added, removed, unknown: [{field, "
                        "message}]} (refs naming no user, by index; the others apply). Removals leave with "
                        "reason manual", "admin",
                        params=[SLUG], body=MEMBERS_CHANGE,
                        responses={**NOT_FOUND, **CONFLICT}),
        },
        "/api/v1/users/{user_ref}/buckets": {
            "get": _op("The user's buckets: {current: [{bucket, entered_at, entry_count}], past: [{bucket, "
                       "entered_at, left_at, reason}]} (the latest 100 past stays)", "read",
                       params=[USER_REF]),
        },
    },
    "components": {"schemas": {**criteria_components(), "BucketReaction": REACTION}},
}
