"""Every validation rule of criteria, each reported at its path; every error at once."""

import pytest

from buckets.criteria import validate_criteria
from buckets.criteria.validation import MAX_CONDITIONS, MAX_DEPTH
from buckets.models import Bucket

from .population import NOW

pytestmark = pytest.mark.django_db
OPENED = {"event": "app_opened", "check": "exists"}


def fields(criteria, **kw):
    return [error["field"] for error in validate_criteria(criteria, **kw)]


def messages(criteria, **kw):
    return {error["field"]: error["message"] for error in validate_criteria(criteria, **kw)}


def test_valid_criteria_have_no_errors():
    went_dormant = {"all": [OPENED, {"event": "app_opened", "check": "not_exists", "within": "7d"}]}
    assert validate_criteria(went_dormant) == []


@pytest.mark.parametrize("criteria, field", [
    pytest.param([OPENED], "criteria", id="criteria that are not an object"),
    pytest.param({}, "criteria", id="a condition naming no kind"),
    pytest.param({"all": []}, "criteria.all", id="an empty all"),
    pytest.param({"all": [OPENED, {"any": []}]}, "criteria.all[1].any", id="an empty any inside an all"),
    pytest.param({"all": [OPENED, {"event": "x", "check": "exists", "within": "7 days"}]},
                 "criteria.all[1].within", id="a malformed duration"),
    pytest.param({"all": [OPENED, {"event": "x", "check": "exists", "within": "3651d"}]},
                 "criteria.all[1].within", id="a window over ten years"),
    pytest.param({"event": "$bucket.entered", "check": "exists"}, "criteria.event",
                 id="a reserved event name"),
    pytest.param({"event": "x", "check": "sometimes"}, "criteria.check", id="an unknown check"),
    pytest.param({"event": "x"}, "criteria.check", id="an event without a check"),
    pytest.param({"event": "x", "check": "count", "value": 2}, "criteria.op", id="a count without op"),
    pytest.param({"event": "x", "check": "count", "op": "gte"}, "criteria.value", id="a count without value"),
    pytest.param({"event": "x", "check": "count", "op": "in", "value": 2}, "criteria.op",
                 id="a count with an operator counts do not take"),
    pytest.param({"event": "x", "check": "count", "op": "gte", "value": 1.5}, "criteria.value",
                 id="a count of a fraction"),
    pytest.param({"event": "x", "check": "count", "op": "gte", "value": True}, "criteria.value",
                 id="a count of true"),
    pytest.param({"event": "x", "check": "exists", "op": "gte"}, "criteria.op", id="exists with an op"),
    pytest.param({"event": "x", "check": "exists", "where": []}, "criteria.where", id="an empty where"),
    pytest.param({"event": "x", "check": "exists", "where": [{"property": "a", "op": "eq"}]},
                 "criteria.where[0].value", id="a where condition without its value"),
    pytest.param({"event": "", "check": "exists"}, "criteria.event", id="an empty event name"),
    pytest.param({"event": "x", "check": "exists", "colour": "red"}, "criteria.colour",
                 id="an unknown field"),
    pytest.param({"property": "plan", "op": "like", "value": "p"}, "criteria.op", id="an unknown operator"),
    pytest.param({"property": "plan", "op": "eq"}, "criteria.value", id="eq without a value"),
    pytest.param({"property": "plan", "op": "eq", "value": None}, "criteria.value", id="eq null"),
    pytest.param({"property": "plan", "op": "eq", "value": ["a"]}, "criteria.value", id="eq with a list"),
    pytest.param({"property": "plan", "op": "eq", "value": {"a": 1}}, "criteria.value",
                 id="eq with an object"),
    pytest.param({"property": "plan", "op": "in", "value": "pro"}, "criteria.value", id="in with a scalar"),
    pytest.param({"property": "plan", "op": "in", "value": []}, "criteria.value", id="in with an empty list"),
    pytest.param({"property": "plan", "op": "gt", "value": True}, "criteria.value", id="gt true"),
    pytest.param({"property": "plan", "op": "exists", "value": 1}, "criteria.value",
                 id="exists with a value"),
    pytest.param({"property": "a..b", "op": "exists"}, "criteria.property", id="an empty path segment"),
    pytest.param({"property": "items.0", "op": "exists"}, "criteria.property", id="an array index in a path"),
    pytest.param({"property": 'a"b', "op": "exists"}, "criteria.property", id="a quote in a path"),
    pytest.param({"tenant": ""}, "criteria.tenant", id="an empty tenant key"),
    pytest.param({"tenant": 5}, "criteria.tenant", id="a tenant key that is not a string"),
    pytest.param({"in_bucket": "nope"}, "criteria.in_bucket", id="an unknown bucket"),
    pytest.param({"not": OPENED, "all": [OPENED]}, "criteria", id="two kinds in one condition"),
    pytest.param({"lifecycle": "dormant"}, "criteria.lifecycle", id="lifecycle without a lifecycle source"),
    pytest.param({"profile": "sessions", "op": "exists"}, "criteria.profile", id="profile without a source"),
])
def test_each_rule_reports_its_error_at_its_path(criteria, field, settings):
    # A deployment without the lifecycle and profile sources (both exist in this one).
    settings.PULSE_BUCKET_SOURCES = {**settings.PULSE_BUCKET_SOURCES, "lifecycle": "nowhere.Lifecycle",
                                     "profile": "nowhere.Profile"}
    assert field in fields(criteria, positive=False)


def test_every_error_is_reported_at_once():
    criteria = {"all": [{"event": "$bucket.left", "check": "exists", "within": "soon"},
                        {"property": "plan", "op": "in", "value": []}, {"any": []}]}
    assert set(fields(criteria)) == {"criteria.all[0].event", "criteria.all[0].within",
                                     "criteria.all[1].value", "criteria.all[2].any"}


def test_the_unavailable_lifecycle_says_so_plainly(settings):
    settings.PULSE_BUCKET_SOURCES = {**settings.PULSE_BUCKET_SOURCES, "lifecycle": "nowhere.Lifecycle"}
    assert messages({"lifecycle": "dormant"})["criteria.lifecycle"] == (
        "lifecycle states are not available in this deployment")


@pytest.mark.parametrize("criteria", [
    pytest.param({"event": "x", "check": "not_exists"}, id="absence alone"),
    pytest.param({"property": "plan", "op": "neq", "value": "pro"}, id="neq"),
    pytest.param({"property": "plan", "op": "not_exists"}, id="not_exists"),
    pytest.param({"not": OPENED}, id="a positive leaf under not"),
    pytest.param({"event": "x", "check": "count", "op": "gte", "value": 0}, id="a count of at least zero"),
    pytest.param({"event": "x", "check": "count", "op": "lt", "value": 3}, id="a count below three"),
    pytest.param({"event": "x", "check": "count", "op": "gt", "value": 0}, id="gt zero (the rule asks >= 1)"),
    pytest.param({"any": [OPENED, {"not": OPENED}]}, id="an any with one negative child"),
    pytest.param({"all": [{"not": OPENED}, {"property": "a", "op": "neq", "value": 1}]},
                 id="an all of negatives"),
])
def test_a_dynamic_bucket_that_users_without_anything_could_match_is_refused(criteria):
    errors = validate_criteria(criteria)
    assert [e["field"] for e in errors] == ["criteria"]
    assert "positive" in errors[0]["message"]


@pytest.mark.parametrize("criteria", [
    pytest.param({"all": [OPENED, {"event": "app_opened", "check": "not_exists", "within": "7d"}]},
                 id="went dormant"),
    pytest.param({"event": "x", "check": "count", "op": "eq", "value": 1}, id="a count of exactly one"),
    pytest.param({"any": [OPENED, {"tenant": "acme"}]}, id="an any of positives"),
    pytest.param({"property": "plan", "op": "eq", "value": "pro"}, id="a property value"),
])
def test_positive_criteria_are_accepted(criteria):
    assert validate_criteria(criteria) == []


def test_positivity_is_not_asked_of_criteria_that_are_not_a_bucket():
    assert validate_criteria({"not": OPENED}, positive=False) == []


def _bucket(slug, criteria, kind="dynamic"):
    return Bucket.objects.create(slug=slug, name=slug, kind=kind, criteria=criteria, created_at=NOW,
                                 created_by="t", updated_at=NOW, updated_by="t")


def test_a_bucket_cannot_name_itself():
    assert fields({"in_bucket": "me"}, slug="me") == ["criteria.in_bucket"]


def test_a_cycle_through_other_buckets_is_refused_at_its_path():
    _bucket("b", {"in_bucket": "a"})
    _bucket("c", {"all": [OPENED, {"in_bucket": "b"}]})
    errors = messages({"all": [OPENED, {"in_bucket": "c"}]}, slug="a")
    assert "cycle" in errors["criteria.all[1].in_bucket"]


def test_naming_a_bucket_without_a_cycle_is_fine():
    _bucket("b", OPENED)
    assert validate_criteria({"in_bucket": "b"}, slug="a") == []


def test_a_manual_bucket_can_be_named_now_that_memberships_exist():
    _bucket("hand", None, kind="manual")
    assert fields({"in_bucket": "hand"}) == []


def test_deep_nesting_is_refused_with_one_error_before_anything_else():
    criteria = OPENED
    for _ in range(MAX_DEPTH + 50):
        criteria = {"not": criteria}
    assert fields(criteria) == ["criteria"]


def test_hostile_nesting_ten_thousand_deep_costs_one_error():
    criteria = OPENED
    for _ in range(10_000):
        criteria = {"all": [criteria]}
    assert fields(criteria) == ["criteria"]


def test_too_many_conditions_are_refused():
    criteria = {"any": [OPENED] * (MAX_CONDITIONS + 1)}
    assert "at most" in messages(criteria)["criteria"]


def test_lifecycle_states_must_be_ones_the_source_declares(sources):
    assert messages({"lifecycle": ["dormant", "asleep"]})["criteria.lifecycle"].startswith(
        "unknown lifecycle state asleep")
    assert messages({"lifecycle": []})["criteria.lifecycle"] == "name at least one lifecycle state"
    assert validate_criteria({"lifecycle": ["dormant", "churned"]}) == []


@pytest.mark.parametrize("value, op", [(True, "eq"), ("ten", "gt"), (3, "contains")])
def test_profile_values_are_numbers_or_strings_compared_sensibly(sources, value, op):
    assert fields({"profile": "sessions", "op": op, "value": value}) == ["criteria.value"]


def test_profile_leaves_validate_once_the_source_exists(sources):
    assert validate_criteria({"profile": "sessions", "op": "gte", "value": 3}) == []
