"""GDPR erasure: the user's personal data goes, aggregate-safe counts stay."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce

from .models import EndUser, Erasure, UserAlias
from .registry import entries


@dataclass(frozen=True)
class ErasureContext:
    """What an erase handler is given (the contract: extension_points.EraseHandler)."""

    user: EndUser
    # Every user ever merged into `user`: the same person, whose leftover rows go too.
    merged_ids: tuple[int, ...]
    now: datetime

    @property
    def user_ids(self) -> tuple[int, ...]:
        """The user and everyone merged into it: the set every handler filters on."""
        return (self.user.pk, *self.merged_ids)


def erase_user(user: EndUser, *, erased_by: str, now: datetime) -> Erasure:
    """Remove identifiers, properties and derived rows; record who erased whom and when.

    Each PULSE_USER_ERASE_HANDLERS entry is called as `handler(erasure)` with an
    `ErasureContext` and returns a dict of counts it kept or removed, merged into
    the record.
    """
    with transaction.atomic():
        erasure = ErasureContext(user=user, merged_ids=merged_into(user.pk), now=now)
        counts: dict = {}
        for handler in entries("PULSE_USER_ERASE_HANDLERS"):
            counts.update(handler(erasure) or {})
        counts["aliases_removed"] = UserAlias.objects.filter(user_id__in=erasure.user_ids).delete()[0]
        counts["merged_users_scrubbed"] = len(erasure.merged_ids)
        EndUser.objects.filter(pk__in=erasure.user_ids).update(
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


def merged_into(user_id: int) -> tuple[int, ...]:
    """Ids of the users merged into `user_id`, directly or through an earlier merge.

    A merge re-points its losers' own losers at the survivor, so one query
    usually finds them all; the walk is for rows older than that rule. One
    query per level, and a cycle cannot loop.
    """
    found: list[int] = []
    frontier: Iterable[int] = [user_id]
    seen = {user_id}
    while frontier:
        level = EndUser.objects.filter(merged_into_id__in=list(frontier)).exclude(pk__in=seen)
        frontier = sorted(level.values_list("pk", flat=True))
        seen.update(frontier)
        found.extend(frontier)
    return tuple(found)
