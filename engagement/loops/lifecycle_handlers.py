"""The lifecycle's entries in the user registries: merge, erase, the API section, the admin panel."""

from ..extension_points import user_section
from ..models import LifecycleState, LifecycleTransition
from .lifecycle import RECENT_TRANSITIONS, lifecycle_of


def merge_lifecycle(survivor, losers, now) -> None:
    """The survivor keeps the state of whichever user was active most recently (the later
    `last_activity_at`; the survivor's own on a tie), and every user's transition log.

    A merge is not a transition: the kept row is moved as it is, with its history, so no
    `$lifecycle.changed` is appended (the losers' signals, theirs included, move too).
    A fixed number of queries whatever the number of losers."""
    loser_ids = [u.pk for u in losers]
    rows = list(LifecycleState.objects.filter(user_id__in=[survivor.pk, *loser_ids]))
    if rows:
        kept = max(rows, key=lambda r: (r.last_activity_at, r.user_id == survivor.pk))
        if kept.user_id != survivor.pk:
            LifecycleState.objects.filter(user_id=survivor.pk).delete()
            LifecycleState.objects.filter(user_id=kept.user_id).update(user_id=survivor.pk)
        LifecycleState.objects.filter(user_id__in=loser_ids).delete()
    LifecycleTransition.objects.filter(user_id__in=loser_ids).update(user_id=survivor.pk)


def erase_lifecycle(erasure) -> dict:
    """The state goes (an erased user is never messaged again); transitions hold no personal
    data and stay, so the overview's counts per day stay right."""
    removed = LifecycleState.objects.filter(user_id__in=erasure.user_ids).delete()[0]
    kept = LifecycleTransition.objects.filter(user_id__in=erasure.user_ids).count()
    return {"lifecycle_states_removed": removed, "lifecycle_transitions_kept": kept}


@user_section("lifecycle")
def lifecycle_section(user):
    """`"lifecycle"` of GET /api/v1/users/<ref>: null before the first activity."""
    return lifecycle_of(user)


def lifecycle_panel(user) -> dict:
    state = LifecycleState.objects.filter(user=user).first()
    transitions = list(
        LifecycleTransition.objects.filter(user=user).order_by("-at", "-pk")[:ADMIN_TRANSITIONS]
    )
    return {
        "title": "Lifecycle",
        "template": "admin/engagement/panels/lifecycle.html",
        "context": {"state": state, "transitions": transitions, "shown": ADMIN_TRANSITIONS},
    }


ADMIN_TRANSITIONS = max(RECENT_TRANSITIONS, 30)
