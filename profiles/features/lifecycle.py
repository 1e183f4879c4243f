"""The user's lifecycle state, read from engagement's LifecycleState when it exists.

The model is resolved lazily: in a deployment (or a branch) without it, the
feature computes null for everyone rather than failing to start.
"""

from django.apps import apps

from ..registry import CATEGORICAL, single_feature, sql_for
from ..set_sql import one_row_per_feature, queryset_sql


def lifecycle_model():
    try:
        return apps.get_model("engagement", "LifecycleState")
    except LookupError:
        return None


@single_feature(
    "lifecycle_state", CATEGORICAL,
    "The user's lifecycle state (active, goodbye_sent, help_flow, remind_later, dormant).",
    invalidated_by=["$lifecycle.changed"], without_data="null (no lifecycle state yet)",
)
def lifecycle_state(user_ids, now):
    model = lifecycle_model()
    if model is None:
        return {}
    return dict(model.objects.filter(user_id__in=user_ids).values_list("user_id", "state"))


@sql_for(lifecycle_state)
def lifecycle_state_sql(users, now):
    model = lifecycle_model()
    if model is None:
        return one_row_per_feature({}, "", {"lifecycle_state": "NULL"}), []
    states = model.objects.filter(user_id__in=users).values("user_id", "state")
    states, params = queryset_sql(states)
    rows = one_row_per_feature({}, "LEFT JOIN lifecycle_states s ON s.user_id = u.id",
                               {"lifecycle_state": "s.state"})
    return f"WITH lifecycle_states (user_id, state) AS ({states}) {rows}", params
