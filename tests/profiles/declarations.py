"""Feature declarations the registry check must refuse (imported only through settings in tests)."""

from datetime import timedelta

from profiles.registry import NUMERIC, Feature, feature_group, single_feature


@single_feature("bad_typo", NUMERIC, "invalidated by a name nobody sends", invalidated_by=["tip.feedbak"])
def typo(user_ids, now):
    return {}


@feature_group(
    Feature("bad_dtype", "boolean", "no such dtype"),
    Feature("bad_ttl", NUMERIC, "a TTL of zero", ttl=timedelta(0)),
    Feature("bad_string", NUMERIC, "a bare string", invalidated_by="tip.served"),
    Feature("tip_volume_30d", NUMERIC, "a name already taken"),
    Feature("fine_any", NUMERIC, "any signal is fine", invalidated_by=["*", "$engage", "tip.served"]),
    name="bad_group",
)
def bad_group(user_ids, now):
    return {}


@single_feature("bad_arity", NUMERIC, "compute takes one argument")
def one_argument(user_ids):
    return {}
