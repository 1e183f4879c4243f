"""Property-based: for generated users and criteria, the compiled SQL agrees with the reference
evaluator (reference.py), on whichever database the leg runs."""

from datetime import timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buckets.criteria import matching_users
from engagement.models import EndUser, Membership, Signal, Tenant

from .population import NOW, names
from .reference import matches

pytestmark = pytest.mark.django_db

SCALARS = st.one_of(
    st.sampled_from(["pro", "free", "5", "", "Paris", "Par", "é", "Z"]),
    st.integers(min_value=-2, max_value=6), st.sampled_from([2.5, 5.0]), st.booleans(),
)
STORED = st.one_of(SCALARS, st.none(), st.lists(SCALARS, max_size=3))
PATHS = ["plan", "score", "tags", "address", "address.city"]
OPS = ["eq", "neq", "gt", "gte", "lt", "lte", "in", "contains", "exists", "not_exists"]
WITHIN = st.sampled_from([None, "90s", "1d", "7d", "48h"])
TENANTS = ["acme", "globex"]
EVENT_OFFSETS = [timedelta(days=-10), timedelta(days=-7), timedelta(days=-7, seconds=-1),
                 timedelta(hours=-47), timedelta(seconds=-90), timedelta(0), timedelta(hours=2)]


@st.composite
def property_condition(draw, paths=PATHS):
    op = draw(st.sampled_from(OPS))
    node = {"property": draw(st.sampled_from(paths)), "op": op}
    if op == "in":
        node["value"] = draw(st.lists(SCALARS, min_size=1, max_size=3))
    elif op in ("gt", "gte", "lt", "lte"):
        node["value"] = draw(st.one_of(st.integers(-2, 6), st.sampled_from(["free", "P", "é", "5"])))
    elif op not in ("exists", "not_exists"):
        node["value"] = draw(SCALARS)
    return node


@st.composite
def event_condition(draw):
    check = draw(st.sampled_from(["exists", "not_exists", "count"]))
    node = {"event": draw(st.sampled_from(["opened", "paid"])), "check": check}
    if check == "count":
        node["op"] = draw(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]))
        node["value"] = draw(st.integers(0, 3))
    within = draw(WITHIN)
    if within:
        node["within"] = within
    if draw(st.booleans()):
        node["where"] = [draw(property_condition(paths=["amount"]))]
    return node


LEAVES = st.one_of(property_condition(), event_condition(),
                   st.sampled_from(TENANTS).map(lambda key: {"tenant": key}))
CRITERIA = st.recursive(LEAVES, lambda children: st.one_of(
    st.lists(children, min_size=1, max_size=3).map(lambda c: {"all": c}),
    st.lists(children, min_size=1, max_size=3).map(lambda c: {"any": c}),
    children.map(lambda c: {"not": c}),
), max_leaves=5)


@st.composite
def a_user(draw):
    properties = {}
    for key in ("plan", "score", "tags"):
        if draw(st.booleans()):
            properties[key] = draw(STORED)
    if draw(st.booleans()):
        properties["address"] = draw(st.one_of(SCALARS, st.fixed_dictionaries({"city": STORED})))
    signals = draw(st.lists(st.tuples(
        st.sampled_from(["opened", "paid"]), st.sampled_from(EVENT_OFFSETS),
        st.one_of(st.just({}), st.fixed_dictionaries({"amount": STORED}))), max_size=4))
    tenants = draw(st.sets(st.sampled_from(TENANTS)))
    return {"properties": properties, "tenants": tenants,
            "signals": [(name, NOW + at, props) for name, at, props in signals]}


def _store(users: list[dict]) -> None:
    tenants = {key: Tenant.objects.create(key=key, created_at=NOW) for key in TENANTS}
    for index, user in enumerate(users):
        row = EndUser.objects.create(external_id=f"u{index}", properties=user["properties"],
                                     first_seen_at=NOW)
        for name, at, properties in user["signals"]:
            Signal.objects.create(user=row, name=name, occurred_at=at, received_at=at, properties=properties)
        for key in user["tenants"]:
            Membership.objects.create(user=row, tenant=tenants[key], joined_at=NOW)


@settings(max_examples=120, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(users=st.lists(a_user(), min_size=1, max_size=5), criteria=CRITERIA)
def test_compiled_criteria_agree_with_the_reference_evaluator(users, criteria):
    with transaction.atomic():
        _store(users)
        got = names(matching_users(criteria, NOW))
        transaction.set_rollback(True)
    expected = {f"u{index}" for index, user in enumerate(users) if matches(criteria, user)}
    assert got == expected, criteria
