"""One identify path: the API, Segment, the admin and imports share `apply_user_changes`,
one builder of system-signal rows, and record who made each change (`actor`)."""

import base64
import json
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from engagement import tenant_changes
from engagement.identity import Identifiers
from engagement.ingest import SystemSignal, record_system_signals
from engagement.models import EndUser, Membership, Signal, Tenant
from engagement.tenant_changes import member_chunks, update_tenant
from engagement.user_changes import GROUP, TenantLink, UserChange, apply_user_changes
from tests.factories import EndUserFactory, MembershipFactory, TenantFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
KEY_ACTOR = "api_key:test key"


def identify_body(prefix: str) -> dict:
    return {
        "id": f"{prefix}u1", "anonymous_id": f"{prefix}a1", "email": f"{prefix}ann@example.com",
        "properties": {"plan": "pro", "old": None}, "timezone": "Europe/Paris", "locale": "fr-FR",
        "reengagement_opt_out": True,
        "tenants": [{"key": f"{prefix}acme", "name": "Acme", "role": "admin",
                     "joined_at": "2025-01-01T00:00:00Z"}],
    }


def seed_two_users(api, prefix: str) -> None:
    """An anonymous visitor and a user known by email: the identify under test merges them."""
    api.post_json("/api/v1/users", {"anonymous_id": f"{prefix}a1", "properties": {"plan": "free", "old": 1}})
    api.post_json("/api/v1/users", {"email": f"{prefix}ann@example.com", "properties": {"seen": True}})


def import_users(tmp_path, lines: list[dict]) -> str:
    path = tmp_path / "users.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = StringIO()
    call_command("import_users", str(path), "--now", NOW.isoformat(), stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def state_of(prefix: str) -> dict:
    user = EndUser.objects.get(external_id=f"{prefix}u1")
    memberships = [
        (m.tenant.key.removeprefix(prefix), m.tenant.name, m.role, m.joined_at)
        for m in Membership.objects.filter(user=user).select_related("tenant")
    ]
    signal = Signal.objects.filter(user=user, name="$identify").order_by("-pk").first()
    properties = dict(signal.properties)
    properties["merged_user_ids"] = len(properties["merged_user_ids"])
    return {
        "user": {
            "anonymous_id": user.anonymous_id.removeprefix(prefix),
            "email": user.email.removeprefix(prefix), "properties": user.properties,
            "timezone": user.timezone, "locale": user.locale, "opt_out": user.reengagement_opt_out,
            "primary_tenant": user.primary_tenant.key.removeprefix(prefix),
            "live_users": EndUser.objects.filter(deleted_at__isnull=True, email__startswith=prefix).count(),
        },
        "memberships": memberships,
        "signal": {"name": signal.name, "source": signal.source, "properties": properties,
                   "tenant": signal.tenant.key.removeprefix(prefix)},
        "actor": signal.actor,
        "realtime": signal.realtime,
    }


def test_identify_by_the_api_and_by_an_import_end_in_the_same_state_and_system_signal(api, tmp_path):
    seed_two_users(api, "api-")
    assert api.post_json("/api/v1/users", identify_body("api-")).status_code == 200
    seed_two_users(api, "imp-")
    assert import_users(tmp_path, [identify_body("imp-")]).startswith("read=1 imported=1")

    by_api, by_import = state_of("api-"), state_of("imp-")
    assert by_api["actor"] == KEY_ACTOR and by_api["realtime"] is True
    assert by_import["actor"] == "job:import" and by_import["realtime"] is False
    for state in (by_api, by_import):
        del state["actor"], state["realtime"]
    assert by_api == by_import
    assert by_api["user"]["properties"] == {"plan": "pro", "seen": True}
    assert by_api["user"]["live_users"] == 1
    assert by_api["signal"]["properties"]["merged_user_ids"] == 1
    assert set(by_api["signal"]["properties"]["changed"]) >= {"external_id", "timezone", "locale"}


def changes_for(size: int, tenants: list[str]) -> list[UserChange]:
    """Half known users, half new; properties, tenants, a group call every fifth change."""
    changes = []
    for i in range(size):
        ids = Identifiers(external_id=f"known-{i}") if i % 2 else Identifiers(external_id=f"new-{size}-{i}")
        if i % 5 == 0:
            changes.append(UserChange(ids, key=f"t:{size}:{i}", signal_name=GROUP,
                                      tenants=(TenantLink(tenants[i % 3]),), tenant_traits={"n": i}))
        else:
            changes.append(UserChange(
                ids, key=f"t:{size}:{i}", properties={"n": i}, timezone="UTC", locale="en",
                tenants=(TenantLink(tenants[i % 3], role="member"),),
            ))
    return changes


@pytest.mark.parametrize("size", [5, 100])
def test_the_shared_implementation_costs_the_same_queries_for_5_or_100_changes(
    size, django_assert_max_num_queries
):
    for i in range(size):
        EndUserFactory(external_id=f"known-{i}", anonymous_id=None, email=None)
    tenants = [TenantFactory(key=f"t{i}").key for i in range(3)]
    changes = changes_for(size, tenants)
    with django_assert_max_num_queries(16):
        written = apply_user_changes(changes, now=NOW, actor="job:test", realtime=False)
    assert written == size
    assert Signal.objects.filter(actor="job:test").count() == size


def test_record_system_signals_writes_many_rows_in_one_insert(now):
    users = EndUserFactory.create_batch(50)
    tenant = TenantFactory()
    signals = [SystemSignal(u.pk, "lifecycle.changed", "job:lifecycle", {"to": "active"},
                            tenant_id=tenant.pk if i % 2 else None) for i, u in enumerate(users)]
    with CaptureQueriesContext(connection) as queries:
        written = record_system_signals(signals, now=now)
    inserts = [q["sql"] for q in queries if q["sql"].startswith('INSERT INTO "engagement_signal"')]
    assert len(written) == 50 and len(inserts) == 1
    assert len(queries) <= 3  # the insert and the queue insert; no primary-tenant lookup needed
    rows = Signal.objects.filter(name="lifecycle.changed")
    assert {(r.source, r.actor, r.realtime) for r in rows} == {("system", "job:lifecycle", True)}


def test_record_system_signals_reads_primary_tenants_once_for_every_row(now):
    tenant = TenantFactory()
    users = EndUserFactory.create_batch(20, primary_tenant=tenant)
    with CaptureQueriesContext(connection) as queries:
        record_system_signals([SystemSignal(u.pk, "x.changed", "job:test") for u in users], now=now)
    assert len(queries) <= 4
    assert set(Signal.objects.values_list("tenant_id", flat=True)) == {tenant.pk}


def test_a_system_signal_without_an_actor_is_refused(now):
    user = EndUserFactory()
    with pytest.raises(ValueError, match="actor"):
        record_system_signals([SystemSignal(user.pk, "$identify", "")], now=now)


def test_client_signals_carry_no_actor(api):
    api.post_json("/api/v1/signals", {"user": {"id": "u1"}, "name": "Clicked"})
    assert Signal.objects.get(name="Clicked").actor is None


def test_an_api_identify_names_the_key_as_actor(api):
    api.post_json("/api/v1/users", {"id": "u1"})
    assert Signal.objects.get(name="$identify").actor == KEY_ACTOR


def test_segment_identify_group_and_alias_name_the_write_key_as_actor(make_key):
    raw = make_key("ingest", name="web sdk")
    auth = {"Authorization": "Basic " + base64.b64encode(f"{raw}:".encode()).decode()}
    client = Client()
    for kind, body in (("identify", {"userId": "u1", "traits": {"plan": "pro"}}),
                       ("group", {"userId": "u1", "groupId": "acme"}),
                       ("alias", {"userId": "u1", "previousId": "anon-1"})):
        response = client.post(f"/v1/{kind}", json.dumps(body), content_type="application/json",
                               headers=auth)
        assert response.status_code == 200, response.json()
    actors = dict(Signal.objects.filter(source="system").values_list("name", "actor"))
    assert actors == {"$identify": "api_key:web sdk", "$group": "api_key:web sdk",
                      "$alias": "api_key:web sdk"}


def test_imported_identify_group_and_alias_lines_name_the_import_job(tmp_path):
    path = tmp_path / "signals.jsonl"
    lines = [{"type": "identify", "userId": "u1", "traits": {"plan": "pro"}},
             {"type": "group", "userId": "u1", "groupId": "acme"},
             {"type": "alias", "userId": "u1", "previousId": "anon-1"}]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    call_command("import_signals", str(path), "--now", NOW.isoformat(), stdout=StringIO(), stderr=StringIO())
    rows = Signal.objects.filter(source="system")
    assert {(r.name, r.actor, r.realtime) for r in rows} == {
        ("$identify", "job:import", False), ("$group", "job:import", False), ("$alias", "job:import", False)}


def test_a_staff_edit_of_a_user_names_the_staff_member(admin_client):
    user = EndUserFactory(external_id="alice")
    admin_client.post(reverse("admin:engagement_enduser_change", args=[user.pk]), {
        "properties": '{"plan": "business"}', "timezone": "", "locale": "",
        "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0",
        "memberships-2-TOTAL_FORMS": "0", "memberships-2-INITIAL_FORMS": "0",
        "aliases-TOTAL_FORMS": "0", "aliases-INITIAL_FORMS": "0",
    })
    assert Signal.objects.get(name="$identify").actor == "staff:admin"


# --- tenant edits ---------------------------------------------------------------


@pytest.fixture
def acme():
    tenant = TenantFactory(key="acme", name="Acme", traits={"plan": "team", "seats": 5})
    for external_id in ("a", "b", "c"):
        MembershipFactory(tenant=tenant, user=EndUserFactory(external_id=external_id))
    gone = EndUserFactory(external_id="gone")
    MembershipFactory(tenant=tenant, user=gone)
    EndUser.objects.filter(pk=gone.pk).update(deleted_at=NOW, external_id=None)
    MembershipFactory(tenant=TenantFactory(key="other"), user=EndUserFactory(external_id="outsider"))
    return tenant


def test_a_staff_edit_of_a_tenant_records_a_group_signal_for_each_live_member(admin_client, acme):
    response = admin_client.post(reverse("admin:engagement_tenant_change", args=[acme.pk]),
                                 {"name": "Acme Inc", "traits": '{"plan": "business"}'})
    assert response.status_code == 302
    acme.refresh_from_db()
    assert (acme.name, acme.traits) == ("Acme Inc", {"plan": "business"})
    signals = Signal.objects.filter(name="$group").select_related("user")
    assert sorted(s.user.external_id for s in signals) == ["a", "b", "c"]
    for signal in signals:
        assert signal.actor == "staff:admin" and signal.tenant_id == acme.pk and signal.source == "system"
        assert signal.properties == {"tenant": "acme", "traits": {"plan": "business", "seats": None},
                                     "changed": ["name", "traits"], "name": "Acme Inc"}


def test_a_tenant_edit_that_changes_nothing_records_nothing(acme):
    assert update_tenant(acme, name="Acme", traits={"seats": 5, "plan": "team"},
                         actor="staff:admin", now=NOW) == []
    assert not Signal.objects.exists()


def test_a_large_tenant_is_recorded_in_chunks_with_one_insert_each(acme, monkeypatch):
    assert [len(chunk) for chunk in member_chunks(acme.pk, size=2)] == [2, 1]
    monkeypatch.setattr(tenant_changes, "MEMBER_CHUNK", 1)
    with CaptureQueriesContext(connection) as queries:
        update_tenant(acme, traits={"plan": "x"}, actor="staff:admin", now=NOW)
    inserts = [q for q in queries if q["sql"].startswith('INSERT INTO "engagement_signal"')]
    assert len(inserts) == 3 and Signal.objects.filter(name="$group").count() == 3


def test_a_tenant_whose_traits_are_not_an_object_is_refused_by_the_admin(admin_client, acme):
    response = admin_client.post(reverse("admin:engagement_tenant_change", args=[acme.pk]),
                                 {"name": "Acme", "traits": "[1, 2]"})
    assert response.status_code == 200 and "must be a JSON object" in response.text
    assert not Signal.objects.exists()
    assert Tenant.objects.get(pk=acme.pk).traits == {"plan": "team", "seats": 5}
