"""The one paging convention of every list endpoint: `limit` and an opaque `cursor`.

`limit` is 1..500 (default 50). A page is a keyset page: rows strictly after
the last row of the previous page in the endpoint's ordering, which must end
in the primary key so that ties in the leading fields are broken and no row
is skipped or repeated while rows are added. The page is fetched with one
query of `limit + 1` rows; the extra row only says whether there is a next
page. `next_cursor` is the last row's ordering values, signed with Django's
signing (salted with the endpoint's name and its ordering), so clients cannot
forge one and a cursor from one list is refused by another; it is null on the
last page. Ordering fields must be concrete, non-nullable fields of the model.

    page = paginate(Message.objects.filter(user=user), request.GET,
                    ordering=("-created_at", "-id"), salt="user-messages")
    return json_response({"items": [...page.rows], "next_cursor": page.next_cursor})
"""

import datetime
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import reduce
from operator import or_
from uuid import UUID

from django.core import signing
from django.core.exceptions import ValidationError
from django.db.models import Model, Q, QuerySet

from .api import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR_LENGTH = 2000
_DIGITS = re.compile(r"[0-9]{1,6}")


@dataclass(frozen=True)
class Page:
    rows: list
    next_cursor: str | None


def paginate(queryset: QuerySet, query: Mapping, *, ordering: Sequence[str], salt: str) -> Page:
    """One page of `queryset` in `ordering`, after the `cursor` in `query` (a request's GET)."""
    fields = _ordering_fields(queryset.model, ordering)
    limit = parse_limit(query)
    after = parse_cursor(query, fields, salt=_salt(salt, ordering))
    if after is not None:
        queryset = queryset.filter(_after(fields, after))
    rows = list(queryset.order_by(*ordering)[: limit + 1])
    if len(rows) <= limit:
        return Page(rows, None)
    rows = rows[:limit]
    return Page(rows, encode_cursor(rows[-1], fields, salt=_salt(salt, ordering)))


def parse_limit(query: Mapping) -> int:
    """`limit` from the query string: a whole number from 1 to MAX_LIMIT, DEFAULT_LIMIT when absent."""
    raw = _single(query, "limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise _invalid("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return int(raw)


def parse_cursor(query: Mapping, fields: list, *, salt: str) -> list | None:
    """The ordering values in `cursor`, or None for the first page (no or an empty cursor)."""
    raw = _single(query, "cursor")
    if not raw:
        return None
    if len(raw) > MAX_CURSOR_LENGTH:
        raise _invalid("cursor", "cursor is not one this list gave out")
    try:
        values = signing.loads(raw, salt=salt)
    except signing.BadSignature:
        raise _invalid("cursor", "cursor is not one this list gave out") from None
    if not isinstance(values, list) or len(values) != len(fields):
        raise _invalid("cursor", "cursor is not one this list gave out")
    try:
        return [field.to_python(value) for (field, _), value in zip(fields, values, strict=True)]
    except (ValidationError, TypeError, ValueError):
        raise _invalid("cursor", "cursor is not one this list gave out") from None


def encode_cursor(row: Model, fields: list, *, salt: str) -> str:
    return signing.dumps([_plain(getattr(row, field.attname)) for field, _ in fields], salt=salt)


def _ordering_fields(model: type[Model], ordering: Sequence[str]) -> list:
    """[(field, descending)] for the ordering; refuses orderings a keyset cannot page."""
    fields = []
    for entry in ordering:
        name = entry.removeprefix("-")
        field = model._meta.pk if name == "pk" else model._meta.get_field(name)
        if not field.concrete or field.null:
            raise ValueError(f"cannot page by {name!r}: ordering fields must be concrete and not null")
        fields.append((field, entry.startswith("-")))
    if not fields or not fields[-1][0].primary_key:
        raise ValueError("a paged ordering must end with the primary key")
    return fields


def _after(fields: list, values: list) -> Q:
    """Rows strictly after `values` in the ordering: a > x OR (a = x AND b > y) OR …

    The leading field is also bounded on its own (a >= x) so the database can
    use an index range on it whatever it makes of the OR.
    """
    branches = []
    for depth, (field, descending) in enumerate(fields):
        equal = {f.attname: v for (f, _), v in zip(fields[:depth], values[:depth], strict=True)}
        beyond = {f"{field.attname}__{'lt' if descending else 'gt'}": values[depth]}
        branches.append(Q(**equal, **beyond))
    first, descending = fields[0]
    bound = Q(**{f"{first.attname}__{'lte' if descending else 'gte'}": values[0]})
    return bound & reduce(or_, branches)


def _single(query: Mapping, name: str) -> str | None:
    values = query.getlist(name) if hasattr(query, "getlist") else [query[name]] if name in query else []
    if len(values) > 1:
        raise _invalid(name, f"give {name} at most once")
    return values[0] if values else None


def _plain(value):
    """A JSON-safe form of a key value; the field's `to_python` turns it back."""
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    return value


def _salt(name: str, ordering: Sequence[str]) -> str:
    return f"pulse.pagination:{name}:{','.join(ordering)}"


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(400, "invalid_request", message, details=[{"field": field, "message": message}])
