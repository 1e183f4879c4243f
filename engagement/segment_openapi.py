"""OpenAPI fragment of the Segment-compatible API (`/v1/*`); see engagement/segment.py.

Its limits are the native shapes' (schemas.py), which the translation applies.
"""

from django.conf import settings

from . import schemas

SCOPE = "ingest"
SECURITY = [{"segmentWriteKey": []}]

RESULT = {"$ref": "#/components/schemas/SegmentResult"}
FAILURE = {"$ref": "#/components/schemas/SegmentError"}

ID = {"type": ["string", "number"], "maxLength": schemas.ID_MAX,
      "description": "numbers are taken as their string form"}
TIME = {"type": "string", "format": "date-time"}
COMMON = {
    "type": {"type": "string"},
    "messageId": {
        "type": "string",
        "description": "idempotency key (apart from native keys): a message id already stored for "
        "the same message (sentAt, timestamps and other delivery metadata may differ) is a success "
        "that stores nothing; reused for a different message it is refused with "
        "code idempotency_conflict",
    },
    "userId": {**ID, "description": "the user's external id"},
    "anonymousId": {**ID, "description": "the user's anonymous id"},
    "timestamp": {
        **TIME,
        "description": "when it happened, corrected by receivedAt - sentAt; defaults to "
        "originalTimestamp, then to the time of receipt",
    },
    "originalTimestamp": TIME,
    "sentAt": {**TIME, "description": "the client's clock when sending (batch-level in a batch)"},
    "context": {
        "type": "object",
        "description": "kept on the signal; context.traits.email names the user by email; "
        "context.groupId attributes track/page/screen to that tenant; on identify, "
        "context.timezone and context.locale set the user's",
    },
    "integrations": {"type": "object", "description": "accepted and ignored"},
    "writeKey": {"type": "string", "description": "the API key, when not sent as Basic auth"},
}
USER_REQUIRED = {"anyOf": [{"required": ["userId"]}, {"required": ["anonymousId"]}]}


def _message(description: str, properties: dict, required=(), needs_user=True) -> dict:
    schema = {
        "type": "object",
        "description": description,
        "additionalProperties": True,
        "properties": {**COMMON, **properties},
    }
    if required:
        schema["required"] = list(required)
    if needs_user:
        schema.update(USER_REQUIRED)
    return schema


PAGE_PROPERTIES = {
    "name": {"type": "string", "description": "copied into the signal's properties"},
    "category": {"type": "string", "description": "copied into the signal's properties"},
    "properties": {"type": "object"},
}
MESSAGES = {
    "track": _message(
        "A signal named `event`, with `properties`.",
        {"event": {"type": "string", "maxLength": schemas.SIGNAL_NAME_MAX,
                   "description": "not starting with `$` (Pulse's own names)"},
         "properties": {"type": "object"}},
        required=["event"],
    ),
    "identify": _message(
        "Identify the user: `traits` (merged over context.traits) patch the user's properties "
        "(null deletes a key); traits.email becomes the user's email. Appends `$identify`.",
        {"traits": {"type": "object"}},
    ),
    "group": _message(
        "Put the user in the tenant `groupId` (created on first use); traits.name names it and "
        "`traits` patch its traits. Appends `$group`.",
        {"groupId": {**ID, "maxLength": schemas.TENANT_KEY_MAX}, "traits": {"type": "object"}},
        required=["groupId"],
    ),
    "page": _message("A `$page` signal.", PAGE_PROPERTIES),
    "screen": _message("A `$screen` signal.", PAGE_PROPERTIES),
    "alias": _message(
        "Merge the user `previousId` named (anonymous id or earlier user id; defaults to "
        "anonymousId) into the user `userId`. Appends `$alias`.",
        {"previousId": ID},
        required=["userId"],
        needs_user=False,
    ),
}
BATCH = {
    "type": "object",
    "required": ["batch"],
    "additionalProperties": True,
    "properties": {
        "batch": {
            "type": "array",
            "maxItems": settings.PULSE_MAX_BATCH,
            "items": {
                "oneOf": [
                    {"allOf": [{"$ref": f"#/components/schemas/Segment{kind.title()}"},
                               {"required": ["type"], "properties": {"type": {"const": kind}}}]}
                    for kind in MESSAGES
                ]
            },
        },
        "sentAt": COMMON["sentAt"],
        "context": {"type": "object", "description": "merged under each message's context"},
        "writeKey": COMMON["writeKey"],
    },
}


def _body(schema: dict) -> dict:
    return {
        "required": True,
        "description": "JSON, sent as application/json or text/plain, optionally with "
        "Content-Encoding: gzip; at most 1 MiB once decompressed.",
        "content": {media: {"schema": schema} for media in ("application/json", "text/plain")},
    }


def _failure(description: str, headers: dict | None = None) -> dict:
    response = {"description": description, "content": {"application/json": {"schema": FAILURE}}}
    if headers:
        response["headers"] = headers
    return response


def _op(summary: str, schema: dict, *, batch: bool = False) -> dict:
    invalid = (
        "bad JSON or gzip, no `batch` array, or no message of the batch could be stored "
        "(`dropped` says why)"
        if batch
        else "bad JSON or gzip, an invalid message (no userId/anonymousId, timestamp more than "
        "5 minutes ahead or older than the maximum age…, a track event starting with `$`: "
        "code reserved_name), a messageId reused for a different message (code "
        "idempotency_conflict), or an identity conflict (code identity_conflict: Segment has no 409)"
    )
    ok = (
        "stored, duplicates included; messages that could not be stored are skipped and listed "
        "in `dropped`"
        if batch
        else "stored (a replayed messageId is a success too)"
    )
    responses = {
        "200": {"description": ok, "content": {"application/json": {"schema": RESULT}}},
        "400": _failure(invalid),
        "401": _failure("missing or unknown write key"),
        "403": _failure("the key lacks the ingest scope"),
        "405": _failure("not POST"),
        "413": _failure("the body exceeds 1 MiB once decompressed" + (
            f", or the batch holds more than {settings.PULSE_MAX_BATCH} messages" if batch else "")),
        "415": _failure("neither application/json nor text/plain, or a content encoding other "
                        "than gzip"),
        "429": _failure(
            "rate limited",
            {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds to wait"}},
        ),
    }
    return {
        "summary": summary,
        "tags": ["Segment-compatible"],
        "x-pulse-scope": SCOPE,
        "security": SECURITY,
        "requestBody": _body(schema),
        "responses": responses,
    }


def _ref(kind: str) -> dict:
    return {"$ref": f"#/components/schemas/Segment{kind.title()}"}


_BATCH_SUMMARY = (
    "Several messages of any type (each with its own `type`) in one transaction; bad ones are "
    "skipped, the others stored"
)

FRAGMENT = {
    "paths": {
        **{
            f"/v1/{kind}": {"post": _op(f"Segment {kind} call", _ref(kind))}
            for kind in MESSAGES
        },
        "/v1/batch": {"post": _op(_BATCH_SUMMARY, {"$ref": "#/components/schemas/SegmentBatch"},
                                  batch=True)},
        "/v1/import": {"post": _op("Same as /v1/batch", {"$ref": "#/components/schemas/SegmentBatch"},
                                   batch=True)},
    },
    "components": {
        "securitySchemes": {
            "segmentWriteKey": {
                "type": "http",
                "scheme": "basic",
                "description": "A Pulse API key with the ingest scope as the username and an "
                "empty password, as Segment's SDKs send it; the key may instead be the body's "
                "`writeKey`.",
            }
        },
        "schemas": {
            **{f"Segment{kind.title()}": schema for kind, schema in MESSAGES.items()},
            "SegmentBatch": BATCH,
            "SegmentResult": {
                "type": "object",
                "required": ["success"],
                "properties": {
                    "success": {"const": True},
                    "dropped": {"type": "array", "items": {"$ref": "#/components/schemas/SegmentDrop"}},
                },
            },
            "SegmentDrop": {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                },
            },
            "SegmentError": {
                "type": "object",
                "required": ["success", "code", "message"],
                "properties": {
                    "success": {"const": False},
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "dropped": {"type": "array", "items": {"$ref": "#/components/schemas/SegmentDrop"}},
                },
            },
        },
    },
}
