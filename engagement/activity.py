"""What counts as user activity: the one rule every "was the user here?" question uses.

A signal is activity when the user did something in a client app:
- its source is a client's (`api`, `segment`) or an import of what clients
  sent earlier (`import`); `system` signals are Pulse's own bookkeeping
  (`$identify`, `$lifecycle.changed`, `$engage` …) and never count;
- its name is not one of Pulse's `$` names, except `$page` and `$screen`:
  those are how Pulse writes a client's Segment `page` / `screen` call, and a
  page view is plainly the user showing up (public ingestion refuses `$`
  names, so no client can pass anything else off as one);
- its name is not listed in PULSE_NON_ACTIVITY_SIGNALS (client events a
  product does not want to keep a user "seen", e.g. a background sync).

`is_activity(signal)` answers for one signal in Python; `activity_filter()`
is the same rule as a `Q` for set-based queries. Tests hold the two to one
table of cases on both databases, so a handler and a SQL sweep never disagree.
"""

from django.conf import settings
from django.db.models import Q

from .models import Signal

ACTIVITY_SOURCES = (Signal.Source.API, Signal.Source.SEGMENT, Signal.Source.IMPORT)
RESERVED_PREFIX = "$"
CLIENT_CALL_NAMES = ("$page", "$screen")


def non_activity_names() -> frozenset[str]:
    return frozenset(settings.PULSE_NON_ACTIVITY_SIGNALS)


def is_activity(signal) -> bool:
    """Whether the signal (anything with `source` and `name`) is the user's own doing."""
    if signal.source not in ACTIVITY_SOURCES or signal.name in non_activity_names():
        return False
    return not signal.name.startswith(RESERVED_PREFIX) or signal.name in CLIENT_CALL_NAMES


def activity_filter() -> Q:
    """`is_activity` as a condition on `Signal` rows. To ask it of users, wrap it in
    `Exists(Signal.objects.filter(activity_filter(), user=OuterRef("pk")))`: negated
    lookups across a to-many relation would not stay on one signal row."""
    rule = Q(source__in=ACTIVITY_SOURCES) & (
        ~Q(name__startswith=RESERVED_PREFIX) | Q(name__in=CLIENT_CALL_NAMES)
    )
    excluded = sorted(non_activity_names())
    if excluded:
        rule &= ~Q(name__in=excluded)
    return rule
