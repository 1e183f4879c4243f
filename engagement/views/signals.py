"""`POST /api/v1/signals`: one signal or `{"signals": [...]}` of up to 1000.

A client's `idempotency_key` is stored as `api:<key>` with a hash of the item
as sent; reusing a key for a different item rejects that item with
`idempotency_conflict`. Names starting with `$` are Pulse's own and are
rejected with `reserved_name` (idempotency.py, signal_names.py).
"""

from django.conf import settings
from django.utils import timezone

from .. import validation as v
from ..api import ApiError, allows, api_view, json_response, parse_json_object
from ..ingest import ingest_signals
from ..native import parse_signal


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
    result = ingest_signals(parsed, source="api", now=timezone.now(), public=not allows(request, "read"))
    for entry in result.rejected:
        entry["index"] = positions[entry["index"]]
    rejected = sorted(rejected + result.rejected, key=lambda r: r["index"])
    body = {"accepted": result.accepted, "duplicates": result.duplicates, "rejected": rejected}
    if not result.accepted and not result.duplicates:
        raise ApiError(400, "invalid_request", "no signal in the request is valid", rejected)
    return json_response(body, status=202)
