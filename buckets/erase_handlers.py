"""PULSE_USER_ERASE_HANDLERS entry: an erased person leaves every bucket (reason `erased`).

The stays are kept as history (they hold no personal data), with their
transitions and `$bucket.left` signals; nothing fires for an erased user.
"""

from .memberships import Cause, leave_everywhere
from .models import LeaveReason, MembershipSource


def leave_erased(erasure) -> dict:
    cause = Cause(MembershipSource.MANUAL, "job:erase", realtime_ids=())
    left = leave_everywhere(erasure.user_ids, reason=LeaveReason.ERASED, cause=cause, now=erasure.now)
    return {"bucket_memberships_ended": len(left)}
