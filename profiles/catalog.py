"""The signal catalog: every signal name this deployment knows.

`invalidated_by` names are checked against it at start-up (profiles/checks.py),
so a typo is an error instead of an invalidation that silently never fires.
It is the deployment's names (`PULSE_SIGNAL_CATALOG`) plus Pulse's own.
"""

from django.conf import settings

ANY = "*"
PULSE_OWN = frozenset({
    "$identify", "$group", "$alias", "$page", "$screen", "$engage", "$preferences",
    "$lifecycle.changed", "$bucket.entered", "$bucket.left",
})


def known_names() -> frozenset[str]:
    return PULSE_OWN | frozenset(getattr(settings, "PULSE_SIGNAL_CATALOG", ()))
