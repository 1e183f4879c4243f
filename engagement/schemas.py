"""The native API's request shapes, each declared once with its limits.

A shape maps a field name to a `Prop`: how the field is checked
(`validation`) and how the OpenAPI document describes it, built from the same
numbers. So the views' validators (`spec`), the OpenAPI request schemas
(`json_schema`) and the limits the Segment translation and the importer apply
(the `*_MAX` constants) cannot drift apart; a test compares the served
document with what the API refuses.

The limits match the columns they end up in (`EndUser.external_id` is 255
characters, `Tenant.name` 300, …); a test checks that too.
"""

from collections.abc import Callable
from dataclasses import dataclass, replace

from django.conf import settings

from . import validation as v
from .signal_names import is_reserved, reserved_error

ID_MAX = 255  # external_id, anonymous_id, Segment userId / anonymousId / previousId
EMAIL_MAX = 320
SIGNAL_NAME_MAX = 200  # a native signal's name, a Segment track's event
TENANT_KEY_MAX = 200  # a tenant key, Segment groupId
TENANT_NAME_MAX = 300
ROLE_MAX = 100
LOCALE_MAX = 35
TIME_ZONE_MAX = 64
FEATURE_MAX = 200
ITEM_MAX = 255
INTERACTION_MAX = 100
IDEMPOTENCY_KEY_MAX = 255
TENANTS_MAX = 100  # tenant links in one identify
TOKEN_TTL_MIN = 60


@dataclass(frozen=True)
class Prop:
    """One field: its check (value, where) -> clean value, and its JSON schema."""

    check: Callable
    schema: dict
    required: bool = False
    nullable: bool = False


Shape = dict[str, Prop]


def _prop(check, schema: dict, *, required=False, nullable=False, description=None, **extra) -> Prop:
    schema = {**schema, **extra}
    if description:
        schema["description"] = description
    return Prop(check, schema, required=required, nullable=nullable)


def text(max_length: int, *, min_length: int = 1, then: Callable | None = None, **flags) -> Prop:
    """A string of `min_length` (after stripping) to `max_length` characters; `then` checks more."""
    base = v.string(max_length, min_length=min_length)

    def check(value, where):
        value = base(value, where)
        return then(value, where) if then else value

    schema = {"type": "string", "maxLength": max_length}
    if min_length:
        schema["minLength"] = min_length
    return _prop(check, schema, **flags)


def email(**flags) -> Prop:
    return _prop(check_email, {"type": "string", "format": "email", "maxLength": EMAIL_MAX}, **flags)


def time_zone(**flags) -> Prop:
    return _prop(check_time_zone, {"type": "string", "maxLength": TIME_ZONE_MAX,
                                   "format": "iana-time-zone"}, **flags)


def boolean(**flags) -> Prop:
    return _prop(v.boolean, {"type": "boolean"}, **flags)


def timestamp(**flags) -> Prop:
    return _prop(v.timestamp, {"type": "string", "format": "date-time"}, **flags)


def json_object(**flags) -> Prop:
    return _prop(v.json_object(), {"type": "object"}, **flags)


def integer(minimum: int, maximum: Callable[[], int], **flags) -> Prop:
    """A whole number in [minimum, maximum()]; `maximum` is read when checking (it is a setting)."""

    def check(value, where):
        if isinstance(value, bool) or not isinstance(value, int):
            v.fail(where, "must be a whole number")
        if not minimum <= value <= maximum():
            v.fail(where, f"must be between {minimum} and {maximum()}")
        return value

    return _prop(check, {"type": "integer", "minimum": minimum, "maximum": maximum()}, **flags)


def nested(shape: Shape, **flags) -> Prop:
    return _prop(v.nested(spec(shape)), json_schema(shape), **flags)


def list_of(item: Prop, max_items: int, **flags) -> Prop:
    return _prop(v.list_of(item.check, max_items=max_items),
                 {"type": "array", "maxItems": max_items, "items": item.schema}, **flags)


def required(prop: Prop) -> Prop:
    return replace(prop, required=True)


# --- derived forms ------------------------------------------------------------


def spec(shape: Shape) -> dict[str, v.Field]:
    """The `validation.validate` spec of a shape."""
    return {name: v.Field(p.check, required=p.required, nullable=p.nullable) for name, p in shape.items()}


def json_schema(shape: Shape) -> dict:
    """The JSON schema of a shape: no unknown fields, `null` allowed where the check allows it."""
    properties = {}
    for name, prop in shape.items():
        schema = dict(prop.schema)
        if prop.nullable:
            schema["type"] = [schema["type"], "null"]
        properties[name] = schema
    out = {"type": "object", "additionalProperties": False, "properties": properties}
    needed = [name for name, prop in shape.items() if prop.required]
    if needed:
        out["required"] = needed
    return out


# --- checks shared with the Segment translation ---------------------------------


def check_email(value, where):
    return v.email_address(EMAIL_MAX)(value, where)


def check_time_zone(value, where):
    return v.time_zone_name(TIME_ZONE_MAX)(value, where)


def check_locale(value, where):
    return v.string(LOCALE_MAX)(value, where)


def public_signal_name(value, where):
    """A signal name a client may send: not one of Pulse's own `$…` names."""
    if is_reserved(value):
        raise v.Invalid([reserved_error(where)])
    return value


def _max_token_ttl() -> int:
    return int(settings.PULSE_USER_TOKEN_MAX_TTL.total_seconds())


# --- the shapes ----------------------------------------------------------------------

USER_IDENTIFIERS: Shape = {
    "id": text(ID_MAX, description="the user's external id"),
    "anonymous_id": text(ID_MAX),
    "email": email(),
}
TENANT_LINK: Shape = {
    "key": text(TENANT_KEY_MAX, required=True),
    "name": text(TENANT_NAME_MAX, nullable=True),
    "joined_at": timestamp(nullable=True),
    "role": text(ROLE_MAX, min_length=0, nullable=True),
}
IDENTIFY: Shape = {
    **USER_IDENTIFIERS,
    "properties": json_object(description="shallow patch; null deletes a key"),
    "timezone": time_zone(description="an IANA time zone such as Europe/Paris"),
    "locale": text(LOCALE_MAX),
    "reengagement_opt_out": boolean(),
    "tenants": list_of(nested(TENANT_LINK), max_items=TENANTS_MAX),
}
SIGNAL: Shape = {
    "user": nested(USER_IDENTIFIERS, required=True, minProperties=1,
                   description="at least one identifier"),
    "name": text(SIGNAL_NAME_MAX, then=public_signal_name, required=True,
                 description="names starting with $ are Pulse's own: rejected with code reserved_name"),
    "occurred_at": timestamp(nullable=True),
    "properties": json_object(nullable=True),
    "tenant": text(TENANT_KEY_MAX, nullable=True),
    "feature": text(FEATURE_MAX, nullable=True),
    "idempotency_key": text(
        IDEMPOTENCY_KEY_MAX, nullable=True,
        description="the same key with the same content is a duplicate that stores nothing; "
        "with different content the item is rejected with code idempotency_conflict. Native "
        "keys never collide with Segment messageIds"),
    "item": text(ITEM_MAX, nullable=True),
    "interaction": text(INTERACTION_MAX, nullable=True),
    "context": json_object(nullable=True),
}
TOKEN_REQUEST: Shape = {
    "ttl_seconds": integer(TOKEN_TTL_MIN, _max_token_ttl,
                           description="seconds the token lives; default PULSE_USER_TOKEN_TTL"),
}


# Each shape under its name in the OpenAPI document's `components.schemas`.
SHAPES: dict[str, Shape] = {
    "Identify": IDENTIFY,
    "TenantLink": TENANT_LINK,
    "Signal": SIGNAL,
    "TokenRequest": TOKEN_REQUEST,
}


def components() -> dict:
    return {name: json_schema(shape) for name, shape in SHAPES.items()}
