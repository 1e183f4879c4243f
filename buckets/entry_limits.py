"""Entry limits: which entries of a user into a bucket fire its enter reactions.

`always` fires every entry; `once` only the first (entry count 1); `once_per_period`
the first, and later ones when the user's last leave is at least the period ago.
The limit gates the enter reactions only: the membership row, its entry count,
the transition and the `$bucket.entered` signal are written whatever it says.
"""

from datetime import datetime, timedelta

ALWAYS, ONCE, ONCE_PER_PERIOD = "always", "once", "once_per_period"
KINDS = (ALWAYS, ONCE, ONCE_PER_PERIOD)


def entry_fires(kind: str, period: timedelta | None, *, entry_count: int, last_left_at: datetime | None,
                now: datetime) -> bool:
    if kind == ONCE:
        return entry_count == 1
    if kind == ONCE_PER_PERIOD:
        return last_left_at is None or now - last_left_at >= period
    return True
