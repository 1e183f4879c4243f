"""Evaluating a bucket for some users: the one function real time and the clock's sweeps call.

`evaluate(spec, user_ids, cause=, now=)` asks the criteria compiler which of
the users match at `now` (one `matching_users` query), reads which of them are
active members (one query), then joins the new matches and makes the members
who no longer match leave (reason `criteria`), set-based. Members who still
match are marked evaluated under the current criteria. Properties are always
the stored ones: the compiler reads `EndUser.properties`, never a payload.
"""

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime

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
    matched = set(matching_users(spec.criteria, now, among=ids).values_list("pk", flat=True))
    active = set(BucketMembership.objects.filter(bucket_id=spec.id, status=ACTIVE, user_id__in=ids)
                 .values_list("user_id", flat=True))
    confirm(spec, matched & active, now=now)
    return Outcome(
        joined=join(spec, sorted(matched - active), cause=cause, now=now),
        left=leave(spec, sorted(active - matched), reason=LeaveReason.CRITERIA, cause=cause, now=now),
    )
