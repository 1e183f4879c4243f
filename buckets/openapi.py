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
    },
}
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
            "get": _op("One bucket", "read", params=[SLUG], responses=NOT_FOUND),
            "put": _op("Replace a bucket's definition; omitted optional fields take their defaults. "
                       f"{INVALID}",
                       "admin", params=[SLUG], body=DEFINITION, responses=NOT_FOUND),
            "delete": _op("Disable a bucket (it is kept); answers the bucket", "admin", params=[SLUG],
                          responses=NOT_FOUND),
        },
    },
    "components": {"schemas": criteria_components()},
}
