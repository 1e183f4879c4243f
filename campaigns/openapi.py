"""The messages app's OpenAPI fragment (PULSE_OPENAPI_FRAGMENTS)."""

from engagement.openapi import ERROR, USER_REF, _json, _op

LOCALE_VARIANT = {
    "type": "object", "additionalProperties": False, "required": ["subject", "text"],
    "properties": {"subject": {"type": "string"}, "text": {"type": "string"}, "html": {"type": "string"}},
    "description": "restricted Django template syntax (no load, include, extends, debug, url); "
    "variables: user.{id,email,properties,locale,timezone}, context, preferences_url",
}
TEMPLATE_DOC = {
    "type": "object", "additionalProperties": False, "required": ["channel", "category", "default_locale",
                                                                   "variants"],
    "properties": {
        "channel": {"enum": ["in_app", "webhook"]},
        "category": {"enum": ["transactional", "lifecycle", "marketing", "system"]},
        "feature": {"type": "string", "description": "what a read reports as ENGAGE; default: the key"},
        "default_locale": {"type": "string"},
        "variants": {"type": "object", "additionalProperties": LOCALE_VARIANT},
        "actions": {"type": "array", "items": {
            "type": "object", "required": ["id", "labels"],
            "properties": {"id": {"type": "string"},
                           "labels": {"type": "object", "additionalProperties": {"type": "string"}}}}},
        "url": {"type": "string", "format": "uri", "description": "webhook templates only: http(s)"},
    },
}
MESSAGE_REQUEST = {
    "type": "object", "additionalProperties": False, "required": ["user", "template"],
    "properties": {
        "user": {"type": "string", "description": "a user_ref"},
        "template": {"type": "string"},
        "context": {"type": "object"},
        "idempotency_key": {"type": "string", "maxLength": 255,
                            "description": "a repeated key returns the existing message (created: false); "
                            "with other content it is 409 idempotency_conflict"},
        "scheduled_for": {"type": "string", "format": "date-time"},
    },
}
KEY = {"name": "key", "in": "path", "required": True, "schema": {"type": "string"}}
MESSAGE_ID = {"name": "message_id", "in": "path", "required": True, "schema": {"type": "integer"}}
NOT_FOUND = {"404": {"description": "not found", "content": _json(ERROR)}}
LIST_PARAMS = [{"name": n, "in": "query", "schema": {"type": "string"}} for n in ("limit", "cursor")]
PREFERENCES = {
    "type": "object", "additionalProperties": False,
    "properties": {"unsubscribed_all": {"type": "boolean"},
                   "categories": {"type": "object", "additionalProperties": {"type": "boolean"}}},
}

FRAGMENT = {
    "paths": {
        "/api/v1/templates": {
            "get": _op("Templates with their current version ({templates, next_cursor})", "read",
                       params=LIST_PARAMS),
        },
        "/api/v1/templates/{key}": {
            "get": _op("A template and its current version", "read", params=[KEY], responses=NOT_FOUND),
            "put": _op("Create or replace a template (templates as code). A change makes a new version; "
                       "a new webhook template's signing_secret is in this answer only. 400 lists the "
                       "path of every error", "admin", params=[KEY], body=TEMPLATE_DOC,
                       responses={"201": {"description": "created"}}),
        },
        "/api/v1/messages": {
            "post": _op("Queue a message: 202 {message, created}. Unknown user 404, unknown template "
                        "400 unknown_template, reused key 409 idempotency_conflict", "send", status="202",
                        body=MESSAGE_REQUEST, responses={**NOT_FOUND, "409": {"description": "conflict"}}),
            "get": _op("Messages, newest first; filters user, template, status, source", "read",
                       params=LIST_PARAMS + [{"name": n, "in": "query", "schema": {"type": "string"}}
                                             for n in ("user", "template", "status", "source")]),
        },
        "/api/v1/messages/{message_id}": {
            "get": _op("One message", "read", params=[MESSAGE_ID], responses=NOT_FOUND),
        },
        "/api/v1/messages/{message_id}/read": {
            "post": _op("Mark a delivered message read: {first_read, read_at}; only the first read "
                        "counts (and emits ENGAGE). The owner's user token may call it", "send",
                        params=[MESSAGE_ID],
                        responses={**NOT_FOUND, "409": {"description": "not delivered"}}),
        },
        "/api/v1/users/{user_ref}/messages": {
            "get": _op("The user's in-app inbox, newest first: {messages, unread, next_cursor}; "
                       "?unread=true for unread only", "read",
                       params=[USER_REF, *LIST_PARAMS, {"name": "unread", "in": "query",
                                                        "schema": {"type": "boolean"}}],
                       responses=NOT_FOUND),
        },
        "/api/v1/users/{user_ref}/preferences": {
            "get": _op("The user's preferences {unsubscribed_all, categories}", "read", params=[USER_REF],
                       responses=NOT_FOUND),
            "post": _op("Change preferences (a patch); each change appends a $preferences signal", "send",
                        params=[USER_REF], body=PREFERENCES, responses=NOT_FOUND),
        },
    },
}
