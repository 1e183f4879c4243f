"""The user's lifecycle state, read from engagement's LifecycleState when it exists.

The model is resolved lazily: in a deployment (or a branch) without it, the
feature computes null for everyone rather than failing to start.
"""

from django.apps import apps

from ..registry import CATEGORICAL, single_feature


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
