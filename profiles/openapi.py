"""OpenAPI fragment of the profile routes (listed in PULSE_OPENAPI_FRAGMENTS)."""

from engagement.openapi import ERROR, USER_REF, _json, _op

READING = {
    "type": "object",
    "required": ["value", "dtype", "computed_at", "age_seconds", "ttl_seconds", "stale"],
    "properties": {
        "value": {"type": ["number", "string", "null"],
                  "description": "numbers rounded to 4 decimals; null is an honest 'no data' once "
                  "computed_at is set, and 'never computed' when it is null"},
        "dtype": {"enum": ["numeric", "categorical"]},
        "computed_at": {"type": ["string", "null"], "format": "date-time"},
        "age_seconds": {"type": ["integer", "null"]},
        "ttl_seconds": {"type": "integer"},
        "stale": {"type": "boolean", "description": "expired (computed_at + ttl <= now), never "
                  "computed, or its computation failed"},
        "error": {"enum": ["computation_failed", "invalidated_while_computing"],
                  "description": "present only when the value could not be brought up to date"},
    },
}
PROFILE = {
    "type": "object",
    "properties": {
        "features": {"type": "object",
                     "additionalProperties": {"$ref": "#/components/schemas/ProfileFeature"}},
        "features_failed": {"type": "array", "items": {"type": "string"},
                            "description": "present only when some feature could not be brought up to date"},
    },
}
PEEK = {"name": "peek", "in": "query", "required": False, "schema": {"enum": ["true", "false"]},
        "description": "true: the stored values only, computing nothing (expired and never-computed "
        "values are stale: true)"}
RESPONSES = {
    "200": {"description": "the profile", "content": _json({"$ref": "#/components/schemas/Profile"})},
    "400": {"description": "bad user ref or query parameter", "content": _json(ERROR)},
    "404": {"description": "no such user", "content": _json(ERROR)},
}

FRAGMENT = {
    "paths": {
        "/api/v1/users/{user_ref}/profile": {
            "get": _op("Every profile feature of the user, recomputing the missing or expired ones "
                       "first (unless peek=true); also with that user's token", "read",
                       params=[USER_REF, PEEK], responses=RESPONSES),
        },
        "/api/v1/users/{user_ref}/profile/rebuild": {
            "post": _op("Recompute every profile feature of the user now and answer the new profile; "
                        "the body is empty or {}", "admin", params=[USER_REF], responses=RESPONSES),
        },
    },
    "components": {"schemas": {"Profile": PROFILE, "ProfileFeature": READING}},
}
