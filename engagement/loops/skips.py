"""Users a lifecycle message must not reach, so the job leaves them where they are.

Skipped: `reengagement_opt_out` (the user's own "stop"), and whatever the send
gate would drop for the `lifecycle` category (`unsubscribed_all`, a category
opt-out), read through PULSE_OUTBOX_SUPPRESSED because preferences live in
campaigns (contract: extension_points.OutboxSuppression). One boolean
expression over `LifecycleState` rows, used inside the job's UPDATE.
"""

from django.conf import settings
from django.db.models import Exists, OuterRef
from django.utils.module_loading import import_string

from ..models import EndUser

CATEGORY = "lifecycle"


def skipped(category: str = CATEGORY):
    """True for `LifecycleState` rows whose user is opted out or suppressed for `category`."""
    condition = Exists(EndUser.objects.filter(pk=OuterRef("user_id"), reengagement_opt_out=True))
    path = getattr(settings, "PULSE_OUTBOX_SUPPRESSED", None)
    if path:
        condition = condition | import_string(path)(category, OuterRef("user_id"))
    return condition
