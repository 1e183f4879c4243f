"""OpenAPI fragment of the engagement loops' routes (listed in PULSE_OPENAPI_FRAGMENTS)."""

from ..openapi import USER_REF, _json, _op

NOT_FOUND_USER = {"404": {"description": "no such user"}}
SCORE = {"type": "number", "description": "the score at the moment of the request, 4 decimals"}
ITEM = {
    "type": "object",
    "properties": {
        "item": {"type": "string"}, "score": SCORE, "interactions": {"type": "integer"},
        "by_type": {"type": "object", "additionalProperties": {"type": "integer"},
                    "description": "count per interaction type (view, query, mention, …)"},
        "first_interaction_at": {"type": "string", "format": "date-time"},
        "last_interaction_at": {"type": "string", "format": "date-time"},
        "context": {"type": "string", "description": "the first 200 characters of the latest "
                    "interaction's text"},
    },
}
ENGAGEMENT = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": ITEM},
        "stats": {"type": "object", "properties": {
            "total_interactions": {"type": "integer"}, "unique_items": {"type": "integer"},
            "avg_interactions_per_item": {"type": "number"},
            "most_engaged_items": {"type": "array", "items": {"type": "string"}},
            "last_interaction_at": {"type": ["string", "null"], "format": "date-time"}}},
    },
}
RANK_REQUEST = {
    "type": "object", "additionalProperties": False, "required": ["items"],
    "properties": {"items": {"type": "array", "maxItems": 1000,
                             "items": {"type": "string", "minLength": 1, "maxLength": 255}}},
}
CALIBRATIONS = {
    "type": "object",
    "properties": {
        "tenant": {"type": "string"},
        "calibrations": {"type": "array", "items": {"type": "object", "properties": {
            "key": {"type": "string"}, "value": {"type": "number"},
            "sample_size": {"type": "integer"}, "window_days": {"type": "integer"},
            "computed_at": {"type": "string", "format": "date-time"}}}},
    },
}


def _ok(schema):
    return {"200": {"description": "success", "content": _json(schema)}}


FRAGMENT = {
    "paths": {
        "/api/v1/users/{user_ref}/engagement": {
            "get": _op(
                "The items this user engages with, by score at the moment of the request, and totals",
                "read",
                params=[USER_REF, {"name": "limit", "in": "query", "required": False,
                                   "schema": {"type": "integer", "minimum": 1, "maximum": 100,
                                              "default": 10}}],
                responses={**_ok(ENGAGEMENT), **NOT_FOUND_USER},
            ),
        },
        "/api/v1/users/{user_ref}/rank": {
            "post": _op(
                "Order items for this user: the ones they engaged with by score, then the others "
                "in the order given (duplicates keep their first place)",
                "read", params=[USER_REF], body=RANK_REQUEST,
                responses={**_ok({"type": "object", "properties": {
                    "items": {"type": "array", "items": {"type": "string"}}}}), **NOT_FOUND_USER},
            ),
        },
        "/api/v1/calibrations": {
            "get": _op(
                "The calibrations learned for one tenant (an empty list on a cold start)", "read",
                params=[{"name": "tenant", "in": "query", "required": True,
                         "schema": {"type": "string", "maxLength": 200}}],
                responses={**_ok(CALIBRATIONS), "404": {"description": "no such tenant"}},
            ),
        },
    },
}
