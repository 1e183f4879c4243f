"""One table of criteria cases, run on both databases against one population (population.py).

Every operator, type mismatches, null and missing, dotted paths, windows at their
edges, counts with where, tenants, nesting, lifecycle and profile leaves, in_bucket.
"""

from datetime import timedelta

import pytest

from buckets.criteria import matching_users
from buckets.models import Bucket, BucketMembership
from engagement.models import EndUser, Signal

from .population import DAY, LIVE, NOW, build, names

pytestmark = pytest.mark.django_db


def prop(path, op, value=None, **kw):
    node = {"property": path, "op": op}
    if op not in ("exists", "not_exists"):
        node["value"] = value
    return node


def event(name, check="exists", **kw):
    return {"event": name, "check": check, **kw}


def but(*excluded):
    return set(LIVE) - set(excluded)


OPENED_RECENTLY = event("app_opened", within="7d")
CASES = [
    # equality is strict about JSON types; numbers compare as numbers
    ("a string equals only the same string", prop("plan", "eq", "5"), {"str5"}),
    ("a number equals integers and floats of that value", prop("plan", "eq", 5), {"int5", "float5"}),
    ("a float equals the integer of the same value", prop("plan", "eq", 5.0), {"int5", "float5"}),
    ("true equals only true", prop("plan", "eq", True), {"true"}),
    ("one does not equal true", prop("plan", "eq", 1), {"one"}),
    ("false equals nothing here", prop("plan", "eq", False), set()),
    ("string equality is case sensitive", prop("plan", "eq", "PRO"), set()),
    ("neq holds for missing and null", prop("plan", "neq", "pro"), but("pro")),
    ("neq of a number keeps the string five", prop("plan", "neq", 5), but("int5", "float5")),
    ("gt compares numbers only with numbers", prop("plan", "gt", 4), {"int5", "float5"}),
    ("gte includes the bound", prop("plan", "gte", 5), {"int5", "float5"}),
    ("lt ignores true", prop("plan", "lt", 5), {"one"}),
    ("lte includes the bound", prop("plan", "lte", 1), {"one"}),
    ("gt on strings compares code points", prop("plan", "gt", "a"), {"pro", "free"}),
    ("lt on strings ignores numbers", prop("plan", "lt", "g"), {"str5", "free"}),
    ("in mixes types strictly", prop("plan", "in", ["pro", 5]), {"pro", "int5", "float5"}),
    ("in with true and a string", prop("plan", "in", [True, "5"]), {"true", "str5"}),
    ("exists is false for null and missing", prop("plan", "exists"),
     {"str5", "int5", "float5", "true", "one", "pro", "free"}),
    ("not_exists is true for null and missing", prop("plan", "not_exists"), {"null", "none", "flags"}),
    # dotted paths
    ("a dotted path reaches a nested object", prop("address.city", "eq", "Paris"), {"pro"}),
    ("contains is substring on strings", prop("address.city", "contains", "Paris"), {"pro", "free"}),
    ("a path through a string is missing", prop("address.city", "exists"), {"pro", "free"}),
    ("contains on a top-level string", prop("address", "contains", "Par"), {"flags"}),
    ("contains substring is case sensitive", prop("plan", "contains", "PRO"), set()),
    ("contains is membership on arrays", prop("tags", "contains", "vip"), {"pro"}),
    ("array membership of a number ignores true and the string", prop("tags", "contains", 1), {"flags"}),
    ("array membership of true", prop("tags", "contains", True), {"flags"}),
    ("array membership of a digit string", prop("tags", "contains", "1"), {"flags"}),
    ("array membership of a number", prop("nums", "contains", 2), {"free"}),
    ("array membership is not substring of elements", prop("tags", "contains", "v"), set()),
    ("gt on a float", prop("score", "gt", 10), {"pro"}),
    ("lte on a float bound", prop("score", "lte", 7.5), {"free"}),
    ("neq on a string keeps objects and missing", prop("address", "neq", "Paris"), but("flags")),
    # events and windows
    ("an event that ever happened", event("app_opened"), {"pro", "free", "int5"}),
    ("a window includes its edge and excludes the second before", OPENED_RECENTLY, {"pro", "free"}),
    ("absence in a window", event("app_opened", "not_exists", within="7d"), but("pro", "free")),
    ("went dormant", {"all": [event("app_opened"), event("app_opened", "not_exists", within="7d")]},
     {"int5"}),
    ("signals after now do not count", event("app_opened", within="1h"), set()),
    ("a count at least three", event("purchase", "count", op="gte", value=3), {"none"}),
    ("a count at least two", event("purchase", "count", op="gte", value=2), {"pro", "none"}),
    ("a count of zero matches users without the event", event("purchase", "count", op="eq", value=0),
     but("pro", "none")),
    ("a count below three includes zero", event("purchase", "count", op="lt", value=3), but("none")),
    ("a count other than two", event("purchase", "count", op="neq", value=2), but("pro")),
    ("a count in an any is counted per user", {"any": [event("purchase", "count", op="gte", value=3),
                                                       {"tenant": "acme"}]}, {"none", "pro", "str5"}),
    ("a count under a not", {"not": event("purchase", "count", op="gte", value=2)}, but("pro", "none")),
    ("a count zero satisfies inside an any", {"any": [event("purchase", "count", op="lt", value=1),
                                                      prop("plan", "eq", "pro")]}, but("none")),
    ("a count greater than zero within 90 seconds",
     event("purchase", "count", op="gt", value=0, within="90s"), set()),
    ("where compares the event's properties strictly",
     event("purchase", "count", op="gte", value=1, where=[prop("amount", "eq", 30)]), {"pro"}),
    ("where with the string thirty", event("purchase", "count", op="eq", value=1,
                                           where=[prop("amount", "eq", "30")]), {"pro"}),
    ("where with gt", event("purchase", where=[prop("amount", "gt", 10)]), {"pro"}),
    ("where with exists", event("purchase", where=[prop("currency", "exists")]), {"pro"}),
    ("a count in a window with where", event("purchase", "count", op="lte", value=1, within="2d",
                                             where=[prop("amount", "gte", 5)]), but("none")),
    # tenants and nesting
    ("a tenant membership", {"tenant": "acme"}, {"pro", "str5"}),
    ("an unknown tenant", {"tenant": "nope"}, set()),
    ("any of a tenant and a property", {"any": [{"tenant": "acme"}, prop("plan", "eq", 5)]},
     {"pro", "str5", "int5", "float5"}),
    ("all with a not", {"all": [{"tenant": "acme"}, {"not": prop("plan", "eq", "pro")}]}, {"str5"}),
    ("not of any", {"not": {"any": [{"tenant": "acme"}, {"tenant": "globex"}]}}, but("pro", "str5", "free")),
    ("nesting three deep", {"all": [{"any": [prop("plan", "eq", "pro"), prop("plan", "eq", 5)]},
                                    {"not": OPENED_RECENTLY}]}, {"int5", "float5"}),
    ("double negation", {"not": {"not": {"tenant": "acme"}}}, {"pro", "str5"}),
    # lifecycle and profile leaves (stand-in sources)
    ("one lifecycle state", {"lifecycle": "dormant"}, {"free"}),
    ("a list of lifecycle states", {"lifecycle": ["dormant", "churned"]}, {"free", "int5"}),
    ("not a lifecycle state", {"not": {"lifecycle": "active"}}, but("pro")),
    ("a profile number at least", {"profile": "sessions_7d", "op": "gte", "value": 10}, {"pro"}),
    ("a profile number below", {"profile": "sessions_7d", "op": "lt", "value": 5}, {"free"}),
    ("a profile row holding nothing is missing", {"profile": "sessions_7d", "op": "exists"}, {"pro", "free"}),
    ("profile not_exists", {"profile": "sessions_7d", "op": "not_exists"}, but("pro", "free")),
    ("profile neq holds for missing", {"profile": "sessions_7d", "op": "neq", "value": 3}, but("free")),
    ("a profile category", {"profile": "plan_tier", "op": "eq", "value": "gold"}, {"str5"}),
    ("a profile category contains", {"profile": "plan_tier", "op": "contains", "value": "ol"}, {"str5"}),
    ("profile in with mixed values", {"profile": "sessions_7d", "op": "in", "value": [3, "gold"]}, {"free"}),
    ("a profile number does not equal its text", {"profile": "plan_tier", "op": "eq", "value": 12}, set()),
    # other buckets
    ("in another bucket", {"in_bucket": "acme-members"}, {"pro", "str5"}),
    ("in a bucket that names a bucket", {"all": [{"in_bucket": "acme-pro"}]}, {"pro"}),
]


@pytest.fixture
def population(sources):
    users = build(sources)
    stamp = {"created_at": NOW, "created_by": "test", "updated_at": NOW, "updated_by": "test"}
    acme = Bucket.objects.create(slug="acme-members", name="Acme", criteria={"tenant": "acme"}, **stamp)
    pro_criteria = {"all": [{"in_bucket": "acme-members"}, prop("plan", "eq", "pro")]}
    acme_pro = Bucket.objects.create(slug="acme-pro", name="Acme pro", **stamp, criteria=pro_criteria)
    # in_bucket reads active memberships, as evaluation left them (the deleted user's row stays too)
    for bucket, members in ((acme, ("pro", "str5", "deleted")), (acme_pro, ("pro",))):
        for name in members:
            _member(bucket, users[name])
    _member(acme_pro, users["str5"], status="left")
    return users


def _member(bucket, user, status="active"):
    BucketMembership.objects.create(bucket=bucket, user=user, status=status, entered_at=NOW, entry_count=1,
                                    source="signal", last_evaluated_at=NOW)


@pytest.mark.parametrize("criteria, expected", [pytest.param(c, e, id=i) for i, c, e in CASES])
def test_criteria_match_exactly_the_expected_live_users(population, criteria, expected):
    assert names(matching_users(criteria, NOW)) == expected


def test_among_restricts_the_match_to_the_given_users(population):
    users = population
    among = [users["pro"].pk, users["int5"].pk, users["deleted"].pk]
    assert names(matching_users(event("app_opened"), NOW, among=among)) == {"pro", "int5"}


def test_among_applies_to_counts_that_zero_satisfies(population):
    among = [population["pro"].pk, population["free"].pk]
    criteria = event("purchase", "count", op="neq", value=2)
    assert names(matching_users(criteria, NOW, among=among)) == {"free"}


def test_among_applies_to_leaves_of_one_name_read_from_one_tally_row(population):
    among = [population["int5"].pk, population["pro"].pk]
    went_dormant = {"all": [event("app_opened"), event("app_opened", "not_exists", within="7d")]}
    assert names(matching_users(went_dormant, NOW, among=among)) == {"int5"}
    assert names(matching_users(went_dormant, NOW, among=[population["pro"].pk])) == set()


def test_evaluation_runs_as_one_query_whatever_the_number_of_users(population, django_assert_num_queries):
    criteria = {"all": [OPENED_RECENTLY, {"tenant": "acme"}, prop("address.city", "exists")]}
    users = matching_users(criteria, NOW)
    with django_assert_num_queries(1):
        assert names(users) == {"pro"}


def test_profile_leaves_refresh_expired_values_first_for_the_same_users(population, sources):
    criteria = {"all": [{"profile": "sessions_7d", "op": "gte", "value": 1}, {"profile": "plan_tier",
                                                                             "op": "exists"}]}
    among = [population["pro"].pk, population["deleted"].pk]
    matching_users(criteria, NOW, among=among)
    assert sources.refresh_calls == [(["plan_tier", "sessions_7d"], [population["pro"].pk], NOW)]


def test_criteria_without_profile_leaves_refresh_nothing(population, sources):
    matching_users({"tenant": "acme"}, NOW)
    assert sources.refresh_calls == []


def test_a_manual_bucket_contributes_its_hand_picked_members(population):
    hand = Bucket.objects.create(slug="hand-picked", name="Hand", kind="manual", created_at=NOW,
                                 created_by="t", updated_at=NOW, updated_by="t")
    assert names(matching_users({"in_bucket": "hand-picked"}, NOW)) == set()
    _member(hand, population["free"])
    assert names(matching_users({"in_bucket": "hand-picked"}, NOW)) == {"free"}


def test_a_disabled_bucket_contributes_no_members(population):
    Bucket.objects.filter(slug="acme-members").update(enabled=False)
    assert names(matching_users({"in_bucket": "acme-members"}, NOW)) == set()


# Time travel: evaluated at other instants than NOW over the same population plus one user
# with three app_opened signals (NOW - 10d, - 5d, - 1d). Event leaves without `where` are read
# from the signal tally (first, last, total per user and name), which cannot tell on its own
# what happened up to an instant between a user's first and last signal: these cases hold
# that branch (the log's answer) to the log-based meaning, at the edges of their windows.
TRAVELLER = ("traveller", "app_opened", (10, 5, 1))
TIME_TRAVEL = [
    ("before anyone's first signal nothing ever happened", event("app_opened"), -11, set()),
    ("before anyone's first signal every count is zero", event("app_opened", "count", op="eq", value=0), -11,
     set(LIVE) | {"traveller"}),
    ("before a user's first signal it has not happened", event("app_opened"), -9, {"traveller"}),
    ("between first and last the first counts as ever", event("app_opened"), -5,
     {"traveller", "pro", "free", "int5"}),
    ("between first and last a window finds a middle signal", event("app_opened", within="3d"), -3,
     {"traveller"}),
    ("a window's lower edge at a middle signal includes it", event("app_opened", within="3d"), -2,
     {"traveller"}),
    ("a window's lower edge a second after a middle signal excludes it",
     event("app_opened", within="3d"), (-2, 1), set()),
    ("absence in a window between first and last", event("app_opened", "not_exists", within="3d"), -3,
     set(LIVE)),
    ("a count between first and last counts up to now only",
     event("app_opened", "count", op="eq", value=2), -3, {"traveller"}),
    ("a count zero satisfies between first and last", event("app_opened", "count", op="lt", value=2), -3,
     set(LIVE)),
    ("a count at the instant of the last signal includes it",
     event("app_opened", "count", op="gte", value=3), -1, {"traveller"}),
    ("a count under a not between first and last",
     {"not": event("app_opened", "count", op="gte", value=2)}, -3, set(LIVE)),
    ("a count in an any between first and last",
     {"any": [event("app_opened", "count", op="eq", value=2), {"tenant": "acme"}]}, -3,
     {"traveller", "pro", "str5"}),
    ("a windowed count between first and last", event("app_opened", "count", op="gte", value=1, within="1d"),
     -5, {"traveller"}),
    ("went dormant between first and last",
     {"all": [event("app_opened"), event("app_opened", "not_exists", within="3d")]}, -3,
     {"pro", "free", "int5"}),
    ("two absences of one name hold without a row",
     {"all": [event("app_opened", "not_exists", within="3d"),
              event("app_opened", "count", op="lt", value=2)]}, -3, set(LIVE)),
    ("a count and a window of one name hold on one row",
     {"all": [event("app_opened", "count", op="gte", value=2), event("app_opened", within="3d")]}, -3,
     {"traveller"}),
    ("a future signal at the window's upper edge", event("app_opened", within="1h"), (0, 3600), {"free"}),
    ("a second before a future signal it is not yet there", event("app_opened", within="90s"), (0, 3599),
     set()),
]


def _instant(at):
    days, seconds = at if isinstance(at, tuple) else (at, 0)
    return NOW + days * DAY + timedelta(seconds=seconds)


@pytest.fixture
def travelled(population):
    name, signal_name, days_ago = TRAVELLER
    user = EndUser.objects.create(external_id=name, first_seen_at=NOW - 30 * DAY)
    for days in days_ago:
        Signal.objects.create(user=user, name=signal_name, occurred_at=NOW - days * DAY,
                              received_at=NOW - days * DAY)
    return population


@pytest.mark.parametrize("criteria, at, expected",
                         [pytest.param(c, a, e, id=i) for i, c, a, e in TIME_TRAVEL])
def test_criteria_at_another_instant_match_what_the_log_says(travelled, criteria, at, expected):
    assert names(matching_users(criteria, _instant(at))) == expected
