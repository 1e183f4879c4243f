"""The Segment-compatible tracking API: Segment payloads translated into Pulse calls.

Teams keep their Segment (or RudderStack) SDKs and point them at Pulse. The
rules of that translation live here; `views/segment.py` only wires HTTP to
them. Segment's conventions win over Pulse's native ones:

- the write key is a Pulse API key with the `ingest` scope, sent as the HTTP
  Basic username (empty password) or as `writeKey` in the body;
- bodies are JSON sent as `application/json` or `text/plain` (sendBeacon),
  optionally gzip-encoded; the 1 MiB limit applies after decompression;
- unknown fields are accepted and ignored (`context` is kept on the signal);
  ids, event names, group ids and names, emails, time zones and locales keep
  the limits of the native request shapes (`schemas`);
- `messageId` is the idempotency key, stored in the Segment namespace
  (`seg:<messageId>`, apart from native keys' `api:`) with the message's
  `content_hash`. A replay (same content; `sentAt`, `timestamp` and other
  delivery metadata may differ) is a success that stores nothing; a
  messageId reused for different content is refused with
  `idempotency_conflict` (a single call answers 400, a batch drops it);
- a track's `event` may not be one of Pulse's own `$…` names
  (`reserved_name`); page and screen become `$page` and `$screen` because
  Pulse itself translates them;
- `timestamp` (else `originalTimestamp`, else the time of receipt) is
  corrected for the client's clock skew by `receivedAt - sentAt`;
- answers are `{"success": true}`; errors keep their HTTP status and carry
  `{"success": false, "code", "message"}` (both SDKs read `code` and
  `message`). An identity conflict answers 400: Segment has no 409 and both
  SDKs treat any 400 as final, which is right since a retry cannot succeed.

track/page/screen become signals (`event`, `$page`, `$screen`) written in
bulk through `ingest.ingest_signals`, under its timing rules (more than 5
minutes ahead or older than the maximum age: a single call answers 400, a
batch drops the item). identify/group/alias go through `people.*`, one message
at a time, in order, before the signals of the same batch; their timestamp
only dates a group membership. Their system signal (`$identify`, `$group`,
`$alias`) carries the message's key and hash, so the same rule holds: an
identify replayed as sent is a duplicate that touches no user, one reusing
its messageId with other traits is an `idempotency_conflict`. A batch is one transaction; a bad item is
dropped alone and the others are stored.

Message ids are not scoped by API key: a self-hosted Pulse is one workspace,
every key belongs to the same operator, and an SDK that retries across a key
rotation must still not store its batch twice.
"""

import base64
import binascii
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from . import idempotency, people, schemas
from . import validation as v
from .api import ApiError, decode_json_object
from .http_body import decoded_body
from .identity import Identifiers, IdentityConflict, as_public
from .ingest import SignalInput, ingest_signals
from .models import Signal
from .signal_names import RESERVED_CODE, RESERVED_MESSAGE, is_reserved

log = logging.getLogger("pulse.segment")

SIGNAL_TYPES = {"track": None, "page": "$page", "screen": "$screen"}
PEOPLE_TYPES = ("identify", "group", "alias")
TYPES = (*SIGNAL_TYPES, *PEOPLE_TYPES)
BATCH = "batch"

CONTENT_TYPES = ("application/json", "text/plain", "")
KEY_PREFIX = idempotency.SEGMENT_PREFIX

# What a message's content hash covers: what Pulse reads from it, as sent. Left out is
# delivery metadata that a retry or Segment's pipeline changes or adds (sentAt, timestamp,
# originalTimestamp, receivedAt, writeKey, messageId itself, integrations, _metadata,
# projectId, channel, version, context.ip, context.library …).
HASHED_IDS = ("userId", "anonymousId", "previousId", "groupId")
HASHED_FIELDS = ("event", "name", "category", "properties", "traits")
HASHED_CONTEXT = ("traits", "groupId", "timezone", "locale")


INVALID_CODE = "invalid_message"


class Invalid(Exception):
    """One message cannot be stored; the message says why (for the client)."""

    def __init__(self, message: str, code: str = INVALID_CODE):
        super().__init__(message)
        self.code = code


# --- the HTTP body ----------------------------------------------------------


def basic_auth_key(request: HttpRequest) -> str | None:
    """The write key from `Authorization: Basic base64(<key>:)`, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded.strip():
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username = decoded.partition(":")[0]
    return username or None


def body_write_key(payload: dict) -> str | None:
    key = payload.get("writeKey")
    return key if isinstance(key, str) and key else None


def read_payload(request: HttpRequest) -> dict:
    """The JSON object in the body: JSON or text/plain, gzip or not, at most 1 MiB inflated."""
    if (request.content_type or "").lower() not in CONTENT_TYPES:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json or text/plain")
    return decode_json_object(decoded_body(request), not_object_code="invalid_json")


# --- messages ----------------------------------------------------------------


@dataclass
class PeopleCall:
    """An identify, group or alias message, validated."""

    type: str
    ids: Identifiers
    occurred_at: datetime
    idempotency_key: str | None = None
    traits: dict = field(default_factory=dict)
    timezone: str | None = None
    locale: str | None = None
    group_id: str | None = None
    group_name: str | None = None
    previous_id: str | None = None
    user_id: str | None = None
    request_hash: str | None = None


@dataclass
class Outcome:
    accepted: int = 0
    duplicates: int = 0
    dropped: list[dict] = field(default_factory=list)

    def drop(self, index: int, message: str, code: str = INVALID_CODE) -> None:
        self.dropped.append({"index": index, "code": code, "message": message})


def parse_message(
    raw: Any,
    kind: str,
    *,
    now: datetime,
    sent_at: Any = None,
    batch_context: dict | None = None,
) -> SignalInput | PeopleCall:
    """Validate one Segment message of type `kind`; raises `Invalid`.

    `sent_at` and `batch_context` come from the enclosing batch, if any; the
    message's own `sentAt` and `context` win over them.
    """
    if not isinstance(raw, dict):
        raise Invalid("a message must be a JSON object")
    if not isinstance(kind, str) or kind not in TYPES:
        raise Invalid(f"type must be one of {', '.join(TYPES)}")
    if batch_context:
        _check_json(batch_context, "context")
    context = {**(batch_context or {}), **_object(raw, "context")}
    own_sent_at = raw.get("sentAt")
    occurred_at = _occurred_at(raw, now=now, sent_at=sent_at if own_sent_at is None else own_sent_at)
    key = _idempotency_key(raw.get("messageId"))
    content = content_hash(kind, raw, context) if key else None
    user_id = _identifier(raw, "userId")
    context_traits = context.get("traits") if isinstance(context.get("traits"), dict) else {}

    if kind == "alias":
        previous_id = _identifier(raw, "previousId") or _identifier(raw, "anonymousId")
        if not user_id or not previous_id:
            raise Invalid("an alias needs userId and previousId")
        return PeopleCall(
            "alias", Identifiers(external_id=user_id), occurred_at, key,
            previous_id=previous_id, user_id=user_id, request_hash=content,
        )

    anonymous_id = _identifier(raw, "anonymousId")
    if not user_id and not anonymous_id:
        raise Invalid("a message needs userId or anonymousId")

    if kind == "identify":
        # RudderStack's SDK sends identify traits in context.traits only.
        traits = {**context_traits, **_object(raw, "traits")}
        ids = Identifiers(user_id, anonymous_id, _email(traits) or _email(context_traits))
        return PeopleCall(
            "identify", ids, occurred_at, key, traits=traits,
            timezone=_time_zone(context.get("timezone")), locale=_locale(context.get("locale")),
            request_hash=content,
        )

    ids = Identifiers(user_id, anonymous_id, _email(context_traits))
    if kind == "group":
        group_id = _identifier(raw, "groupId", max_length=schemas.TENANT_KEY_MAX)
        if not group_id:
            raise Invalid("a group call needs groupId")
        traits = _object(raw, "traits")
        name = traits.get("name")
        name = name.strip() if isinstance(name, str) else None
        return PeopleCall(
            "group", ids, occurred_at, key, traits=traits, group_id=group_id,
            group_name=name[:schemas.TENANT_NAME_MAX] if name else None, request_hash=content,
        )

    properties = _object(raw, "properties")
    if kind == "track":
        name = raw.get("event")
        if not isinstance(name, str) or not name.strip():
            raise Invalid("a track call needs an event name")
        if len(name) > schemas.SIGNAL_NAME_MAX:
            raise Invalid(f"event must be at most {schemas.SIGNAL_NAME_MAX} characters")
        _check_text(name, "event")
        if is_reserved(name):
            raise Invalid(f"event: {RESERVED_MESSAGE}", RESERVED_CODE)
    else:
        name = SIGNAL_TYPES[kind]
        for attribute in ("name", "category"):
            if raw.get(attribute) is not None:
                properties[attribute] = raw[attribute]
                _check_json(properties[attribute], attribute)
    return SignalInput(
        ids=ids,
        name=name,
        occurred_at=occurred_at,
        properties=properties,
        context=context,
        tenant_key=_identifier(context, "groupId", max_length=schemas.TENANT_KEY_MAX, where="context"),
        idempotency_key=key,
        request_hash=content,
    )


def content_hash(kind: str, raw: dict, context: dict) -> str:
    """The request hash of a message: its type, ids, event or name, properties, traits and the
    context fields Pulse reads, as sent; no timestamp or other delivery metadata.

    So a retry with a new `sentAt`, and the line of a Segment export carrying the
    corrected `timestamp`, `receivedAt` and the pipeline's own fields, hash like the
    live message. Ids are hashed as the strings Pulse reads (SDKs send numbers too);
    an empty object or null is the same as an absent field. `context` is the message's
    merged with its batch's, as the message is stored.
    """
    content: dict = {"type": kind}
    for name in HASHED_IDS:
        value = raw.get(name)
        if value is not None and not isinstance(value, bool) and str(value).strip():
            content[name] = value if isinstance(value, str) else str(value)
    for name in HASHED_FIELDS:
        if raw.get(name) not in (None, {}):
            content[name] = raw[name]
    read_context = {name: context[name] for name in HASHED_CONTEXT if context.get(name) not in (None, {})}
    if read_context:
        content["context"] = read_context
    return idempotency.digest(content)


def _identifier(raw: dict, name: str, *, max_length: int = schemas.ID_MAX, where: str = "") -> str | None:
    """An id field: strings as they are, numbers as strings (SDKs send both); empty is absent."""
    value = raw.get(name)
    label = f"{where}.{name}" if where else name
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise Invalid(f"{label} must be a string or a number")
    value = value if isinstance(value, str) else str(value)
    if not value.strip():
        return None
    if len(value) > max_length:
        raise Invalid(f"{label} must be at most {max_length} characters")
    _check_text(value, label)
    return value


def _object(raw: dict, name: str) -> dict:
    value = raw.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f"{name} must be an object")
    _check_json(value, name)
    return dict(value)


def _email(traits: dict) -> str | None:
    """traits.email as an identifier when it is an address; anything else stays a mere trait."""
    try:
        return schemas.check_email(traits.get("email"), "email")
    except v.Invalid:
        return None


def _time_zone(value) -> str | None:
    try:
        return schemas.check_time_zone(value, "context.timezone")
    except v.Invalid:
        return None


def _locale(value) -> str | None:
    try:
        return schemas.check_locale(value, "context.locale")
    except v.Invalid:
        return None


def _idempotency_key(message_id) -> str | None:
    if message_id is None or isinstance(message_id, bool):
        return None
    if not isinstance(message_id, (str, int, float)):
        raise Invalid("messageId must be a string")
    message_id = str(message_id)
    if not message_id.strip():
        return None
    _check_text(message_id, "messageId")
    return idempotency.namespaced(KEY_PREFIX, message_id)


def _occurred_at(raw: dict, *, now: datetime, sent_at) -> datetime:
    """`timestamp` (else `originalTimestamp`) + (receivedAt - sentAt); now when neither is sent.

    A `sentAt` that is not a date-time is ignored: it only corrects the clock.
    """
    name = "timestamp" if raw.get("timestamp") is not None else "originalTimestamp"
    if raw.get(name) is None:
        return now
    try:
        occurred_at = v.timestamp(raw[name], name)
    except v.Invalid:
        raise Invalid(f"{name} must be an ISO 8601 date-time such as 2026-01-31T12:00:00Z") from None
    try:
        sent = v.timestamp(sent_at, "sentAt") if sent_at is not None else None
    except v.Invalid:
        sent = None
    if sent is None:
        return occurred_at
    try:
        return occurred_at + (now - sent)
    except OverflowError:
        raise Invalid(f"{name} is out of range once corrected by sentAt") from None


def _check_json(value, where: str, depth: int = 0) -> None:
    """What the database would refuse or choke on: NULs, lone surrogates, NaN, absurd nesting."""
    if depth > v.MAX_JSON_DEPTH:
        raise Invalid(f"{where} nests deeper than {v.MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        _check_text(value, where)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise Invalid(f"{where} holds a number out of range")
    elif value is v.OUT_OF_RANGE:
        raise Invalid(f"{where} holds an integer outside the 64-bit range")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, where)
            _check_json(item, where, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json(item, where, depth + 1)


def _check_text(value: str, where: str) -> None:
    if "\x00" in value:
        raise Invalid(f"{where} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Invalid(f"{where} holds text that is not valid Unicode") from None


# --- storing -------------------------------------------------------------------


def receive(kind: str, payload: dict, *, now: datetime, actor: str, public: bool = False) -> dict:
    """Store one call (`kind` is a message type) or a batch; return the 200 body.

    `actor` (`api_key:<name>`) goes on the system signals of identify, group and alias.
    `public` (a write key without the read scope): an email never links ids to its owner.

    Raises ApiError(400) when a single call is invalid or when no message of a
    batch could be stored; a batch otherwise succeeds and lists what it dropped.
    """
    if kind == BATCH:
        raw_items = payload.get("batch")
        if not isinstance(raw_items, list):
            raise ApiError(400, "invalid_request", "batch must be an array of messages")
        if len(raw_items) > settings.PULSE_MAX_BATCH:
            raise ApiError(
                413, "batch_too_large", f"a batch holds at most {settings.PULSE_MAX_BATCH} messages"
            )
        batch_context = payload.get("context") if isinstance(payload.get("context"), dict) else None
        kinds = [raw.get("type") if isinstance(raw, dict) else None for raw in raw_items]
    else:
        raw_items, batch_context, kinds = [payload], None, [kind]

    outcome = Outcome()
    signals: list[tuple[int, SignalInput]] = []
    calls: list[tuple[int, PeopleCall]] = []
    for index, (raw, item_kind) in enumerate(zip(raw_items, kinds, strict=True)):
        try:
            message = parse_message(
                raw, item_kind, now=now, sent_at=payload.get("sentAt"), batch_context=batch_context
            )
        except Invalid as exc:
            outcome.drop(index, str(exc), exc.code)
            continue
        (signals if isinstance(message, SignalInput) else calls).append((index, message))

    store(signals, calls, now=now, actor=actor, outcome=outcome, public=public)

    if outcome.dropped:
        codes = Counter(d["code"] for d in outcome.dropped)
        log.info(
            "event=segment_dropped kind=%s accepted=%d duplicates=%d dropped=%d codes=%s",
            kind, outcome.accepted, outcome.duplicates, len(outcome.dropped),
            ",".join(f"{code}:{count}" for code, count in sorted(codes.items())),
        )
        if kind != BATCH:
            raise ApiError(400, outcome.dropped[0]["code"], outcome.dropped[0]["message"])
        if not outcome.accepted and not outcome.duplicates:
            raise ApiError(400, "invalid_batch", "no message in the batch could be stored",
                           outcome.dropped)
        return {"success": True, "dropped": outcome.dropped}
    return {"success": True}


def store(
    signals: list[tuple[int, SignalInput]],
    calls: list[tuple[int, PeopleCall]],
    *,
    now: datetime,
    actor: str,
    outcome: Outcome,
    public: bool = False,
) -> None:
    """Identify/group/alias in order, then every signal in one bulk ingest; one transaction.

    The user-changing calls go first so the signals of the same batch see the
    users, merges and tenants they set up (a `group` then `track` attributes
    the track to the group's tenant). The calls' messageIds are judged in one
    query first: a replay is a duplicate that touches no user, a reused
    messageId with other content is dropped with `idempotency_conflict`.
    """
    with transaction.atomic():
        verdicts = idempotency.verdicts([(c.idempotency_key, c.request_hash) for _, c in calls])
        if public:
            for (_, call), ids in zip(calls, as_public([c.ids for _, c in calls]), strict=True):
                call.ids = ids
        for (index, call), verdict in zip(calls, verdicts, strict=True):
            if verdict == idempotency.DUPLICATE:
                outcome.duplicates += 1
                continue
            if verdict == idempotency.CONFLICT:
                outcome.drop(index, CONFLICT_MESSAGE, idempotency.CONFLICT_CODE)
                continue
            try:
                stored = run_people_call(call, now=now, actor=actor)
            except (IdentityConflict, idempotency.IdempotencyConflict) as exc:
                outcome.drop(index, str(exc), exc.code)
                continue
            if stored:
                outcome.accepted += 1
            else:
                outcome.duplicates += 1
        if signals:
            _ingest(signals, now=now, outcome=outcome, public=public)


CONFLICT_MESSAGE = "messageId was already used for a different message"


def _ingest(
    signals: list[tuple[int, SignalInput]], *, now: datetime, outcome: Outcome, public: bool = False
) -> None:
    """One bulk ingest; items it rejects (timing, reused messageIds, identity conflicts) are
    dropped alone."""
    result = ingest_signals([s for _, s in signals], source=Signal.Source.SEGMENT, now=now, public=public)
    outcome.accepted += result.accepted
    outcome.duplicates += result.duplicates
    positions = [index for index, _ in signals]
    for rejected in result.rejected:
        errors = rejected["errors"]
        code = errors[0].get("code", "timestamp_out_of_range")
        reasons = "; ".join(_reason(e) for e in errors)
        outcome.drop(positions[rejected["index"]], reasons, code)


def _reason(error: dict) -> str:
    if error.get("code") == idempotency.CONFLICT_CODE:
        return CONFLICT_MESSAGE
    if error.get("field") == "occurred_at":
        return f"timestamp {error['message']}"
    return error["message"]


def run_people_call(call: PeopleCall, *, now: datetime, actor: str) -> bool:
    """Apply an identify, group or alias whose messageId `store` found new; False when a
    concurrent request stored the same message meanwhile.

    The system signal the call appends (`$identify`, `$group`, `$alias`)
    carries the message's key and hash, so a replay finds it. A concurrent
    replay fails on the unique key and is rolled back whole: a duplicate when
    its content matches, else `IdempotencyConflict`.
    """
    try:
        with transaction.atomic():
            _apply(call, now=now, actor=actor)
    except IntegrityError:
        key = call.idempotency_key
        stored = idempotency.stored_hashes([key]) if key else {}
        if key not in stored:
            raise
        if idempotency.same_request(stored[key], call.request_hash):
            return False
        raise idempotency.IdempotencyConflict(CONFLICT_MESSAGE) from None
    return True


def _apply(call: PeopleCall, *, now: datetime, actor: str) -> tuple[int | None, str]:
    key, content = call.idempotency_key, call.request_hash
    if call.type == "identify":
        resolution = people.identify(
            call.ids, now=now, actor=actor, properties=call.traits or None,
            timezone=call.timezone, locale=call.locale, idempotency_key=key, request_hash=content,
        )
        return resolution.user.pk, "$identify"
    if call.type == "group":
        user, _ = people.group(
            call.ids, call.group_id, now=now, actor=actor, name=call.group_name, traits=call.traits or None,
            joined_at=min(call.occurred_at, now), idempotency_key=key, request_hash=content,
        )
        return user.pk, "$group"
    if call.previous_id == call.user_id:
        return None, "$alias"  # aliasing an id to itself changes nothing
    return people.alias(
        call.previous_id, call.user_id, now=now, actor=actor, idempotency_key=key, request_hash=content,
    ).pk, "$alias"
