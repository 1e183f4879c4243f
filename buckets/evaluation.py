"""Evaluating a bucket for some users: the one function real time and the clock's sweeps call.

`evaluate(spec, user_ids, cause=, now=)` asks, in one query, which of the
users match at `now` (the `matching_users` queryset as an EXISTS) and which
are active members, then joins the new matches and makes the members
who no longer match leave (reason `criteria`), set-based. Members who still
match are marked evaluated under the current criteria. Properties are always
the stored ones: the compiler reads `EndUser.properties`, never a payload.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Exists, OuterRef

from engagement.models import EndUser

from .candidates import BucketSpec
from .criteria import matching_users
from .memberships import ACTIVE, Cause, confirm, join, leave
from .models import BucketMembership, LeaveReason


@dataclass
class Outcome:
    joined: list[dict] = field(default_factory=list)
    left: list[dict] = field(default_factory=list)

    @property
    def transitions(self) -> list[dict]:
        return self.joined + self.left


def evaluate(spec: BucketSpec, user_ids: Collection[int], *, cause: Cause, now: datetime) -> Outcome:
    ids = sorted(set(user_ids))
    if not ids or spec.criteria is None:
        return Outcome()
    matching = matching_users(spec.criteria, now, among=ids).filter(pk=OuterRef("pk"))
    member = BucketMembership.objects.filter(bucket_id=spec.id, status=ACTIVE, user_id=OuterRef("pk"))
    rows = (EndUser.objects.filter(pk__in=ids)  # erased and merged users too: they no longer match
            .annotate(matches=Exists(matching), member=Exists(member)).values_list("pk", "matches", "member"))
    matched, active = set(), set()
    for pk, matches, is_member in rows:
        if matches:
            matched.add(pk)
        if is_member:
            active.add(pk)
    confirm(spec, matched & active, now=now)
    return Outcome(
        joined=join(spec, sorted(matched - active), cause=cause, now=now),
        left=leave(spec, sorted(active - matched), reason=LeaveReason.CRITERIA, cause=cause, now=now),
    )
