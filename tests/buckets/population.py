"""One small population of users, signals, memberships, lifecycle states and profile values
that the criteria case table is evaluated against, and the helper that names the matches."""

from datetime import UTC, datetime, timedelta

from engagement.models import EndUser, Membership, Signal, Tenant

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)

PROPERTIES = {
    "str5": {"plan": "5"},
    "int5": {"plan": 5},
    "float5": {"plan": 5.0},
    "true": {"plan": True},
    "one": {"plan": 1},
    "null": {"plan": None},
    "none": {},
    "pro": {"plan": "pro", "address": {"city": "Paris"}, "tags": ["beta", "vip"], "score": 42},
    "free": {"plan": "free", "address": {"city": "Parisian"}, "tags": ["x"], "score": 7.5, "nums": [1, 2]},
    "flags": {"tags": [True, 1, "1"], "address": "Paris"},
}
LIVE = frozenset(PROPERTIES)


def build(stand_ins=None) -> dict[str, EndUser]:
    users = {name: EndUser.objects.create(external_id=name, properties=props, first_seen_at=NOW - 30 * DAY)
             for name, props in PROPERTIES.items()}
    users["deleted"] = EndUser.objects.create(anonymous_id="gone", properties={"plan": "pro"},
                                              first_seen_at=NOW - 30 * DAY, deleted_at=NOW - DAY)

    def signal(user, name, at, **props):
        Signal.objects.create(user=users[user], name=name, occurred_at=at, received_at=at, properties=props)

    signal("pro", "app_opened", NOW - DAY)
    signal("pro", "app_opened", NOW - 8 * DAY)
    signal("pro", "purchase", NOW - 2 * DAY, amount=30, currency="EUR")
    signal("pro", "purchase", NOW - 3 * DAY, amount="30")
    signal("free", "app_opened", NOW - 7 * DAY)
    signal("free", "app_opened", NOW + timedelta(hours=1))
    signal("int5", "app_opened", NOW - 7 * DAY - timedelta(seconds=1))
    for _ in range(3):
        signal("none", "purchase", NOW - timedelta(hours=1), amount=5)
    signal("deleted", "app_opened", NOW - DAY)
    signal("deleted", "purchase", NOW - DAY, amount=30)

    acme = Tenant.objects.create(key="acme", created_at=NOW)
    globex = Tenant.objects.create(key="globex", created_at=NOW)
    for user, tenant in (("pro", acme), ("str5", acme), ("free", globex), ("deleted", acme)):
        Membership.objects.create(user=users[user], tenant=tenant, joined_at=NOW)

    if stand_ins is not None:
        states = (("pro", "active"), ("free", "dormant"), ("int5", "churned"), ("deleted", "dormant"))
        for user, state in states:
            stand_ins.LifecycleState.objects.create(user_id=users[user].pk, state=state)
        features = (("pro", "sessions_7d", 12, None), ("free", "sessions_7d", 3, None),
                    ("str5", "plan_tier", None, "gold"), ("int5", "sessions_7d", None, None),
                    ("deleted", "sessions_7d", 50, None))
        for user, name, value, text in features:
            stand_ins.ProfileFeatureValue.objects.create(user_id=users[user].pk, name=name, value=value,
                                                         value_text=text, computed_at=NOW)
    return users


def names(queryset) -> set[str]:
    return {user.external_id or user.anonymous_id for user in queryset}
