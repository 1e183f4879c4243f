"""Reserved signal names: a name starting with `$` is Pulse's own.

Pulse writes `$identify`, `$group`, `$alias`, `$page`, `$screen` (translated
from Segment's page and screen calls), and later `$engage`,
`$lifecycle.changed`, `$bucket.entered`, `$preferences` … Rules trust these
names, so the public ingest paths (native, Segment track, imports) refuse
them per item with `reserved_name`: no client can forge an ENGAGE or a
lifecycle change. Pulse's own writers do not pass through these checks.
"""

RESERVED_PREFIX = "$"
RESERVED_CODE = "reserved_name"
RESERVED_MESSAGE = "names starting with '$' are reserved for Pulse's own signals"


def is_reserved(name: str) -> bool:
    """Leading whitespace does not hide a reserved name (`" $engage"` is refused too)."""
    return name.lstrip().startswith(RESERVED_PREFIX)


def reserved_error(field: str = "name") -> dict:
    return {"field": field, "code": RESERVED_CODE, "message": RESERVED_MESSAGE}
