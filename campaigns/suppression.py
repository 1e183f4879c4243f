"""PULSE_OUTBOX_SUPPRESSED: which users the send gate would drop for a category, as SQL.

The engagement loops must not move a user whose message the gate would skip
(a goodbye nobody receives is not a goodbye). They cannot import campaigns, so
they call this through the setting and put the condition inside their own
conditional UPDATE: set-based, no user loaded into Python. It is the gate's
preference step (preferences.block_reason) restated for many users at once;
tests hold the two to the same cases.
"""

from django.db.models import Exists, Q, Value
from django.db.models.fields import BooleanField

from .models import Preference
from .preferences import EXEMPT


def suppressed(category: str, user_id, /):
    """A boolean expression: true when the gate drops `category` for the user `user_id`
    (an expression such as `OuterRef("user_id")` on the caller's rows)."""
    if category in EXEMPT:
        return Value(False, output_field=BooleanField())
    blocked = Q(unsubscribed_all=True) | Q(**{f"categories__{category}": False})
    return Exists(Preference.objects.filter(blocked, user_id=user_id))
