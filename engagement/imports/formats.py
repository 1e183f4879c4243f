"""What one line of an import file means: a signal, an identify/group call, or an alias.

Signal files mix two shapes, told apart per line: the native shape (what
`POST /api/v1/signals` takes for one signal, validated by the same
`parse_signal`) and a Segment export line (`{"type": "track", "userId": …}`),
translated by the Segment API's own parser. User files hold the `POST /api/v1/users` shape (JSON Lines)
or a CSV whose columns map onto it.

Every item carries an idempotency key in the namespace of its shape: a native
line's own `idempotency_key` as `api:<key>` and a Segment line's `messageId`
as `seg:<messageId>`, exactly as the live APIs store them, with the same
request hash; a line without one gets `import:<sha256 of its canonical JSON>`.
So the same line imported twice, from any copy of the file, is stored once, an
export overlapping live traffic is recognised, and a line reusing a live key
for different content is rejected with `idempotency_conflict`. Names starting
with `$` are refused (`reserved_name`), as by the APIs.
"""

import re
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from .. import segment
from .. import validation as v
from ..ingest import SignalInput
from ..native import parse_identify, parse_signal
from ..user_changes import GROUP, TenantLink, UserChange
from .reader import content_key


@dataclass
class AliasChange:
    previous_id: str
    user_id: str
    key: str
    occurred_at: datetime | None = None
    request_hash: str | None = None


Item = SignalInput | UserChange | AliasChange


def key_of(item: Item) -> str:
    return item.idempotency_key if isinstance(item, SignalInput) else item.key


def hash_of(item: Item) -> str | None:
    return item.request_hash


# --- signal files ----------------------------------------------------------------


def parse_signal_line(value: dict, *, now: datetime) -> Item:
    """One line of a signal file; raises `validation.Invalid`."""
    if "type" in value and "user" not in value:
        item = parse_segment_line(value, now=now)
    else:
        item = parse_signal(value)
        item.idempotency_key = item.idempotency_key or content_key("import:", value)
    occurred_at = item.occurred_at
    if occurred_at and occurred_at > now + settings.PULSE_MAX_FUTURE_SKEW:
        raise v.Invalid([{"field": "occurred_at", "message": "is in the future: history cannot be"}])
    return item


def parse_segment_line(value: dict, *, now: datetime) -> Item:
    """Translate one message of a Segment export with the Segment API's own rules.

    `segment.parse_message` gives the same names (`event`, `$page`, `$screen`)
    and keys (`seg:<messageId>`) as live traffic, so an export overlapping what
    the API already received is recognised. An export's `timestamp` is already
    corrected for clock skew, so `sentAt` is not applied a second time.
    """
    raw = {name: item for name, item in value.items() if name != "sentAt"}
    try:
        message = segment.parse_message(raw, value.get("type"), now=now)
    except segment.Invalid as exc:
        error = {"field": "(line)", "message": str(exc)}
        if exc.code != segment.INVALID_CODE:
            error["code"] = exc.code
        raise v.Invalid([error]) from None
    key = message.idempotency_key or content_key("import:", value)
    if isinstance(message, SignalInput):
        message.idempotency_key = key
        return message
    if message.type == "alias":
        return AliasChange(
            message.previous_id, message.user_id, key, message.occurred_at, message.request_hash
        )
    if message.type == "group":
        link = TenantLink(key=message.group_id, name=message.group_name, joined_at=message.occurred_at)
        return UserChange(
            ids=message.ids, key=key, signal_name=GROUP, occurred_at=message.occurred_at,
            tenants=(link,), tenant_traits=message.traits or None, request_hash=message.request_hash,
        )
    return UserChange(
        ids=message.ids, key=key, occurred_at=message.occurred_at,
        properties=message.traits or None, timezone=message.timezone, locale=message.locale,
        request_hash=message.request_hash,
    )


# --- user files ------------------------------------------------------------------


def parse_user_object(value: dict) -> UserChange:
    """One `POST /api/v1/users` body, parsed as the API parses it; raises `validation.Invalid`."""
    change = parse_identify(value)
    change.key = content_key("import:user:", value)
    return change


CSV_COLUMNS = {
    "id": "id",
    "external_id": "id",
    "anonymous_id": "anonymous_id",
    "email": "email",
    "timezone": "timezone",
    "locale": "locale",
    "tenant": "tenants",
    "tenants": "tenants",
    "role": "role",
    "joined_at": "joined_at",
    "reengagement_opt_out": "reengagement_opt_out",
}
IDENTIFIER_COLUMNS = {"id", "anonymous_id", "email"}
SPLIT_TENANTS = re.compile(r"[;,]")
TRUE, FALSE = {"true", "t", "yes", "y", "1"}, {"false", "f", "no", "n", "0"}


class CsvHeaderError(ValueError):
    pass


def csv_columns(header: list[str]) -> list[tuple[str, str]]:
    """(kind, name) per header cell: a known column, or ("property", its name)."""
    columns, seen = [], {}
    for position, cell in enumerate(header, start=1):
        name = cell.strip()
        if not name:
            raise CsvHeaderError(f"column {position} of the CSV header has no name")
        known = CSV_COLUMNS.get(name.lower().replace(" ", "_").replace("-", "_"))
        column = (known, known) if known else ("property", name)
        if column in seen and column != ("tenants", "tenants"):
            raise CsvHeaderError(f"columns {seen[column]} and {position} both hold {column[1]!r}")
        seen[column] = position
        columns.append(column)
    if not IDENTIFIER_COLUMNS & {kind for kind, _ in columns}:
        raise CsvHeaderError(
            "the CSV header has no identifier column: give id (or external_id), anonymous_id or email"
        )
    return columns


def csv_row_object(columns: list[tuple[str, str]], row: list[str]) -> dict:
    """The `POST /api/v1/users` body a CSV row stands for (empty cells are left out)."""
    extra = [cell for cell in row[len(columns):] if cell.strip()]
    if extra:
        raise v.Invalid([{"field": "(line)",
                          "message": f"has {len(row)} cells but the header has {len(columns)}"}])
    body: dict = {}
    properties: dict = {}
    tenants: list[str] = []
    role = joined_at = None
    for (kind, name), cell in zip(columns, row, strict=False):
        cell = cell.strip()
        if not cell:
            continue
        if kind == "property":
            properties[name] = cell
        elif kind == "tenants":
            tenants.extend(key.strip() for key in SPLIT_TENANTS.split(cell) if key.strip())
        elif kind == "role":
            role = cell
        elif kind == "joined_at":
            joined_at = cell
        elif kind == "reengagement_opt_out":
            lowered = cell.lower()
            body[kind] = True if lowered in TRUE else False if lowered in FALSE else cell
        else:
            body[kind] = cell
    if (role or joined_at) and not tenants:
        field = "role" if role else "joined_at"
        raise v.Invalid([{"field": field, "message": "needs a tenant in the same row"}])
    if tenants:
        links = []
        for key in dict.fromkeys(tenants):
            link = {"key": key}
            if role:
                link["role"] = role
            if joined_at:
                link["joined_at"] = joined_at
            links.append(link)
        body["tenants"] = links
    if properties:
        body["properties"] = properties
    return body
