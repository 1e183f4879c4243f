"""GDPR erasure: the user's personal data goes, aggregate-safe counts stay."""

from datetime import datetime

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce

from .models import EndUser, Erasure, UserAlias
from .registry import entries


def erase_user(user: EndUser, *, erased_by: str, now: datetime) -> Erasure:
    """Remove identifiers, properties and derived rows; record who erased whom and when.

    Each PULSE_USER_ERASE_HANDLERS entry is called as `handler(user, now)` and
    returns a dict of counts it kept or removed, merged into the record.
    """
    with transaction.atomic():
        counts: dict = {}
        for handler in entries("PULSE_USER_ERASE_HANDLERS"):
            counts.update(handler(user, now) or {})
        counts["aliases_removed"] = UserAlias.objects.filter(user=user).delete()[0]
        merged = list(EndUser.objects.filter(merged_into=user).values_list("pk", flat=True))
        counts["merged_users_scrubbed"] = len(merged)
        EndUser.objects.filter(pk__in=[user.pk, *merged]).update(
            external_id=None,
            anonymous_id=None,
            email=None,
            properties={},
            timezone="",
            locale="",
            deleted_at=Coalesce("deleted_at", Value(now)),
        )
        return Erasure.objects.create(
            user_id_erased=user.pk, erased_by=erased_by, erased_at=now, counts=counts
        )
