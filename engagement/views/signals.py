"""`POST /api/v1/signals`: one signal or `{"signals": [...]}` of up to 1000.

A client's `idempotency_key` is stored as `api:<key>` with a hash of the item
as sent; reusing a key for a different item rejects that item with
`idempotency_conflict`. Names starting with `$` are Pulse's own and are
rejected with `reserved_name` (idempotency.py, signal_names.py).
"""

from django.conf import settings
from django.utils import timezone

from .. import idempotency
from .. import validation as v
from ..api import ApiError, api_view, json_response, parse_json_object
from ..identity import Identifiers
from ..ingest import SignalInput, ingest_signals
from ..signal_names import is_reserved, reserved_error


def public_name(value, where):
    """A signal name a client may send: not one of Pulse's own `$…` names."""
    name = v.string(200)(value, where)
    if is_reserved(name):
        raise v.Invalid([reserved_error(where)])
    return name


USER = {
    "id": v.Field(v.string(255)),
    "anonymous_id": v.Field(v.string(255)),
    "email": v.Field(v.email),
}
SIGNAL = {
    "user": v.Field(v.nested(USER), required=True),
    "name": v.Field(public_name, required=True),
    "occurred_at": v.Field(v.timestamp, nullable=True),
    "properties": v.Field(v.json_object(), nullable=True),
    "tenant": v.Field(v.string(200), nullable=True),
    "feature": v.Field(v.string(200), nullable=True),
    "idempotency_key": v.Field(v.string(255), nullable=True),
    "item": v.Field(v.string(255), nullable=True),
    "interaction": v.Field(v.string(100), nullable=True),
    "context": v.Field(v.json_object(), nullable=True),
}


def parse_signal(raw) -> SignalInput:
    """Validate one native signal object; raises `validation.Invalid`.

    Also the parser of native-shaped import lines, so an imported line gets the
    same key namespace and the same hash as the live request it copies.
    """
    data = v.validate(raw, SIGNAL)
    user = data["user"]
    ids = Identifiers(user.get("id"), user.get("anonymous_id"), user.get("email"))
    if not ids:
        raise v.Invalid([{"field": "user", "message": "needs at least one of id, anonymous_id, email"}])
    key = data.get("idempotency_key")
    return SignalInput(
        ids=ids,
        name=data["name"],
        occurred_at=data.get("occurred_at"),
        properties=data.get("properties") or {},
        context=data.get("context") or {},
        tenant_key=data.get("tenant"),
        feature=data.get("feature"),
        item=data.get("item"),
        interaction=data.get("interaction"),
        idempotency_key=idempotency.namespaced(idempotency.API_PREFIX, key),
        request_hash=idempotency.native_request_hash(raw) if key else None,
    )


def _raw_items(body: dict) -> list:
    if "signals" not in body:
        return [body]
    extra = sorted(set(body) - {"signals"})
    if extra:
        raise ApiError(400, "invalid_request", "a batch holds only 'signals'",
                       [{"field": name, "message": "unknown field"} for name in extra])
    items = body["signals"]
    if not isinstance(items, list) or not items:
        raise ApiError(400, "invalid_request", "'signals' must be a non-empty array")
    if len(items) > settings.PULSE_MAX_BATCH:
        raise ApiError(413, "batch_too_large",
                       f"a batch holds at most {settings.PULSE_MAX_BATCH} signals")
    return items


@api_view({"POST": "ingest"})
def signals_collection(request):
    items = _raw_items(parse_json_object(request))
    parsed, positions, rejected = [], [], []
    for index, raw in enumerate(items):
        try:
            parsed.append(parse_signal(raw))
            positions.append(index)
        except v.Invalid as exc:
            rejected.append({"index": index, "errors": exc.errors})
    result = ingest_signals(parsed, source="api", now=timezone.now())
    for entry in result.rejected:
        entry["index"] = positions[entry["index"]]
    rejected = sorted(rejected + result.rejected, key=lambda r: r["index"])
    body = {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": rejected}
    if not result.accepted and not result.duplicates:
        raise ApiError(400, "invalid_request", "no signal in the request is valid", rejected)
    return json_response(body, status=202)
