"""Durations in criteria: a whole number and a unit, `"90s"`, `"15m"`, `"48h"`, `"7d"`."""

import re
from datetime import timedelta

UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smhd])")
LONGEST = timedelta(days=3650)


def parse_duration(text: str) -> timedelta:
    """The timedelta `text` names; ValueError when it is not a duration."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError("must be a duration like 90s, 15m, 48h or 7d")
    return timedelta(**{UNITS[match[2]]: int(match[1])})
