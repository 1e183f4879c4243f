"""Idempotency keys: namespaced by where they came from, and honest about what they cover.

A stored `Signal.idempotency_key` starts with the namespace of its origin, so
two clients' key spaces can never pre-empt each other:

- `api:<key>`: a native `idempotency_key` (`POST /api/v1/signals`, and the
  native-shaped lines of an import);
- `seg:<messageId>`: a Segment `messageId` (the Segment API, and the Segment
  export lines of an import, so an export deduplicates against live traffic);
- anything else is Pulse's own and no client can produce it: `import:<sha256>`
  (derived from an imported line that carries no key), `import:user:<sha256>`,
  `demo:…`, and the keys of later system signals.

A key longer than the column allows once prefixed is stored as
`<prefix>sha256:<hex of the key>`.

A key alone does not make a duplicate. Each keyed signal stores
`request_hash`, a 128-bit digest of what the client sent (the native item as
sent, or a Segment message's content without its delivery metadata — see
`segment.content_hash`). A repeated key with the same hash is a duplicate: a
success that stores nothing. With another hash the client reused its key for
a different item, which is refused with `idempotency_conflict` (Stripe's rule
for a reused key) rather than silently dropped. A stored row without a hash
(written before hashes existed, or a Pulse-internal key) matches anything,
so old retries still deduplicate.
"""

import hashlib
import json
from collections.abc import Sequence

MAX_KEY_LENGTH = 255
API_PREFIX = "api:"
SEGMENT_PREFIX = "seg:"
IMPORT_PREFIX = "import:"
CLIENT_PREFIXES = (API_PREFIX, SEGMENT_PREFIX)
HASH_BYTES = 16  # 32 hex characters: ample against accidents, narrow on the log
KEY_QUERY_CHUNK = 1000  # PULSE_MAX_BATCH: one query for any API batch

CONFLICT_CODE = "idempotency_conflict"
NEW, DUPLICATE, CONFLICT = "new", "duplicate", "conflict"


def namespaced(prefix: str, key: str | None) -> str | None:
    """`prefix` + `key`, or the key's digest when that would not fit the column."""
    if key is None:
        return None
    stored = prefix + key
    if len(stored) > MAX_KEY_LENGTH:
        stored = prefix + "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    return stored


def canonical_json(value) -> str:
    """A text that is equal for equal JSON values (key order and spacing do not matter)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(value) -> str:
    """The request hash of a JSON value: a compact hex digest of its canonical JSON."""
    data = canonical_json(value).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=HASH_BYTES).hexdigest()


def native_request_hash(raw: dict) -> str:
    """The hash of a native signal as sent. A field sent as null means what an absent one
    means, so it is left out; an item without `occurred_at` therefore hashes like its retry."""
    return digest({name: value for name, value in raw.items() if value is not None})


def same_request(stored_hash: str | None, request_hash: str | None) -> bool:
    """Whether a repeated key is a true duplicate; a missing hash on either side matches."""
    return stored_hash is None or request_hash is None or stored_hash == request_hash


def stored_hashes(keys: Sequence[str]) -> dict[str, str | None]:
    """key → request_hash of the signals already holding `keys` (one query per 1000 keys)."""
    from .models import Signal

    keys = list(dict.fromkeys(keys))
    found: dict[str, str | None] = {}
    for start in range(0, len(keys), KEY_QUERY_CHUNK):
        found.update(_stored(Signal, keys[start : start + KEY_QUERY_CHUNK]))
    return found


def _stored(signal_model, keys: list[str]):
    """On PostgreSQL one array parameter (`= ANY(%s)`) instead of an `IN` of a thousand:
    the lookup runs on every ingest batch, and binding each key cost more than the probe."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return signal_model.objects.filter(idempotency_key__in=keys).values_list(
            "idempotency_key", "request_hash"
        )
    table = connection.ops.quote_name(signal_model._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT idempotency_key, request_hash FROM {table} WHERE idempotency_key = ANY(%s)",
            [keys],
        )
        return cursor.fetchall()


def verdicts(entries: Sequence[tuple[str | None, str | None]]) -> list[str]:
    """NEW, DUPLICATE or CONFLICT for each (key, request hash), set-based.

    One query looks up the keys already stored. Inside `entries` the first
    item holding a key claims it; a later one with the same key is judged
    against that first one. An item without a key is always new.
    """
    keys = [key for key, _ in entries if key]
    claimed: dict[str, str | None] = stored_hashes(keys) if keys else {}
    out = []
    for key, request_hash in entries:
        if not key:
            out.append(NEW)
        elif key in claimed:
            out.append(DUPLICATE if same_request(claimed[key], request_hash) else CONFLICT)
        else:
            claimed[key] = request_hash
            out.append(NEW)
    return out


def conflict_error(field: str = "idempotency_key") -> dict:
    return {
        "field": field,
        "code": CONFLICT_CODE,
        "message": "was already used for a different item; send a new key for a new item",
    }


class IdempotencyConflict(Exception):
    """A key already stored for different content; raised by the one-at-a-time paths."""

    code = CONFLICT_CODE

    def __init__(self, message: str = "the idempotency key was already used for a different item"):
        super().__init__(message)
