import hashlib
import re
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.sessions.models import Session
from django.test import override_settings
from django.urls import reverse

from engagement import keys
from engagement.admin.common import CappedCountPaginator
from engagement.erase import erase_user
from engagement.identity import merge_users
from engagement.models import ApiKey, EndUser, JobRun, Membership, Signal, Tenant, UserAlias
from tests.factories import EndUserFactory, MembershipFactory, SignalFactory, TenantFactory

RAW_KEY = re.compile(r"pk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}")
PANEL_ORDER_TEST = "tests.engagement.test_admin.panel_"


def panel_first(user):
    return {"title": "First extra panel", "template": "admin/engagement/enduser/panels/recent_signals.html",
            "context": {"signals": []}}


def panel_second(user):
    return {"title": "Second extra panel", "template": "admin/engagement/enduser/panels/recent_signals.html",
            "context": {"signals": []}}


def panel_nothing(user):
    return None


def panel_broken(user):
    raise RuntimeError("boom")


@pytest.fixture
def world(db, now):
    """One of everything the admin shows: live, merged and erased users, signals, a key, a job run."""
    acme = TenantFactory(key="acme", name="Acme Analytics", traits={"plan": "team"})
    alice = EndUserFactory(
        external_id="alice", email="alice@example.com", anonymous_id="dev-alice",
        properties={"plan": "team", "role": "admin"}, timezone="Europe/Berlin",
    )
    MembershipFactory(user=alice, tenant=acme, role="admin")
    old_alice = EndUserFactory(external_id=None, email="alice.old@example.com", anonymous_id=None)
    merge_users([alice, old_alice], now=now)
    alice.refresh_from_db()
    bob = EndUserFactory(external_id="bob", email="bob@example.com")
    MembershipFactory(user=bob, tenant=acme)
    gone = EndUserFactory(external_id="gone", email="gone@example.com")
    erase_user(gone, erased_by="dpo@example.com", now=now)
    processed = SignalFactory(
        user=alice, tenant=acme, name="issue.viewed", item="AI-1799", interaction="query",
        state="processed", occurred_at=now - timedelta(minutes=5),
    )
    failed = SignalFactory(
        user=alice, tenant=acme, name="tip.served", state="failed",
        error="Traceback …\nValueError: tip catalogue unavailable", occurred_at=now - timedelta(minutes=2),
    )
    key, raw = keys.create_api_key("ingest bot", "ingest", now=now)
    run = JobRun.objects.create(
        kind="prune_job_runs", window=now.replace(second=0, microsecond=0), status="succeeded",
        attempts=1, started_at=now, finished_at=now, processed=10, succeeded=10, duration_ms=1520,
    )
    return {
        "tenant": acme, "alice": alice, "old_alice": EndUser.objects.get(pk=old_alice.pk), "bob": bob,
        "gone": EndUser.objects.get(pk=gone.pk), "processed": processed, "failed": failed,
        "key": key, "raw": raw, "run": run,
    }


def changelist(model_name):
    return reverse(f"admin:engagement_{model_name}_changelist")


def change(model_name, pk):
    return reverse(f"admin:engagement_{model_name}_change", args=[pk])


def admin_pages(world):
    from engagement.models import Erasure

    return [
        changelist("enduser"), change("enduser", world["alice"].pk),
        change("enduser", world["old_alice"].pk), change("enduser", world["gone"].pk),
        changelist("tenant"), change("tenant", world["tenant"].pk),
        changelist("apikey"), change("apikey", world["key"].pk), reverse("admin:engagement_apikey_add"),
        changelist("jobrun"), change("jobrun", world["run"].pk),
        changelist("signal"), change("signal", world["failed"].pk),
        changelist("erasure"), change("erasure", Erasure.objects.get().pk),
        reverse("admin:index"),
    ]


# --- access -----------------------------------------------------------------


def test_every_admin_list_and_page_answers_200_to_staff(admin_client, world):
    for url in admin_pages(world):
        response = admin_client.get(url)
        assert response.status_code == 200, url


def test_the_site_header_reads_pulse_admin(admin_client, world):
    assert "Pulse admin" in admin_client.get(reverse("admin:index")).text


def test_anonymous_visitors_are_sent_to_the_login_page(client, world):
    for url in admin_pages(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


def test_logged_in_users_who_are_not_staff_are_sent_to_the_login_page(client, world, django_user_model):
    client.force_login(django_user_model.objects.create_user("visitor", password="pw-visitor-123"))
    for url in admin_pages(world):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith(reverse("admin:login")), url


# --- users --------------------------------------------------------------------


@pytest.mark.parametrize(
    "term", ["alice@example.com", "ALICE@Example.com", "alice", "dev-alice", "alice.old@example.com"]
)
def test_user_search_finds_the_user_by_email_external_id_anonymous_id_or_alias(admin_client, world, term):
    response = admin_client.get(changelist("enduser"), {"q": term})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == [world["alice"]]


def test_user_search_by_id_finds_merged_users_too(admin_client, world):
    response = admin_client.get(changelist("enduser"), {"q": f"#{world['old_alice'].pk}"})
    assert list(response.context["cl"].result_list) == [world["old_alice"]]


def test_user_search_by_an_unknown_identifier_finds_nobody(admin_client, world):
    response = admin_client.get(changelist("enduser"), {"q": "nobody@example.com"})
    assert list(response.context["cl"].result_list) == []


def test_the_user_list_tells_live_merged_and_erased_users_apart(admin_client, world):
    def listed(status):
        response = admin_client.get(changelist("enduser"), {"status": status})
        return {u.pk for u in response.context["cl"].result_list}

    assert listed("live") == {world["alice"].pk, world["bob"].pk}
    assert listed("merged") == {world["old_alice"].pk}
    assert listed("erased") == {world["gone"].pk}
    text = admin_client.get(changelist("enduser")).text
    assert "merged into" in text and "erased" in text


def test_the_user_list_filters_by_tenant_from_the_tenant_page(admin_client, world):
    other = TenantFactory()
    MembershipFactory(tenant=other)
    response = admin_client.get(changelist("enduser"), {"tenant": world["tenant"].pk})
    assert {u.pk for u in response.context["cl"].result_list} == {world["alice"].pk, world["bob"].pk}
    page = admin_client.get(change("tenant", world["tenant"].pk)).text
    assert f"?tenant={world['tenant'].pk}" in page and "2 users" in page


def test_the_user_page_shows_the_recent_signals_panel_with_errors_of_failed_signals(admin_client, world):
    text = admin_client.get(change("enduser", world["alice"].pk)).text
    assert "Recent signals" in text
    assert "issue.viewed" in text and "AI-1799" in text and "(query)" in text
    assert "tip.served" in text and "tip catalogue unavailable" in text
    assert text.index("tip.served") < text.index("issue.viewed"), "newest first"


def test_the_recent_signals_panel_shows_only_the_latest_50(admin_client, world, now):
    alice = world["alice"]
    for minute in range(60):
        at = now - timedelta(hours=1, minutes=minute)
        SignalFactory(user=alice, name=f"bulk.{minute:02d}", occurred_at=at)
    text = admin_client.get(change("enduser", alice.pk)).text
    assert "bulk.00" in text and "bulk.47" in text
    assert "bulk.48" not in text and "bulk.59" not in text


@override_settings(
    PULSE_USER_ADMIN_PANELS=[
        "engagement.admin_panels.recent_signals",
        PANEL_ORDER_TEST + "second",
        PANEL_ORDER_TEST + "nothing",
        PANEL_ORDER_TEST + "first",
    ]
)
def test_panels_from_the_settings_registry_are_shown_in_their_order(admin_client, world):
    text = admin_client.get(change("enduser", world["alice"].pk)).text
    assert text.index("Recent signals") < text.index("Second extra panel") < text.index("First extra panel")


@override_settings(
    PULSE_USER_ADMIN_PANELS=[PANEL_ORDER_TEST + "broken", "engagement.admin_panels.recent_signals"]
)
def test_a_failing_panel_is_reported_without_breaking_the_user_page(admin_client, world):
    response = admin_client.get(change("enduser", world["alice"].pk))
    assert response.status_code == 200
    assert "This panel failed to load (RuntimeError)" in response.text
    assert "Recent signals" in response.text


def test_editing_a_users_profile_goes_through_identify_and_records_a_signal(admin_client, world):
    alice = world["alice"]
    response = admin_client.post(
        change("enduser", alice.pk),
        {
            "properties": '{"plan": "business"}', "timezone": "Europe/Paris", "locale": "fr-FR",
            "reengagement_opt_out": "on",
            "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": Membership.objects.get(user=alice).pk, "memberships-0-user": alice.pk,
            "memberships-0-role": "admin",
            "memberships-2-TOTAL_FORMS": "0", "memberships-2-INITIAL_FORMS": "0",
            "aliases-TOTAL_FORMS": "0", "aliases-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    alice.refresh_from_db()
    assert alice.properties == {"plan": "business"}
    assert (alice.timezone, alice.locale, alice.reengagement_opt_out) == ("Europe/Paris", "fr-FR", True)
    identify = Signal.objects.filter(user=alice, name="$identify", source="system").get()
    assert identify.properties["properties"] == {"plan": "business", "role": None}


def test_adding_a_membership_on_the_user_page_goes_through_group(admin_client, world):
    bob, globex = world["bob"], TenantFactory(key="globex", name="Globex")
    existing = Membership.objects.get(user=bob)
    response = admin_client.post(
        change("enduser", bob.pk),
        {
            "properties": "{}", "timezone": "", "locale": "",
            "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": existing.pk, "memberships-0-user": bob.pk, "memberships-0-role": "",
            "memberships-2-TOTAL_FORMS": "1", "memberships-2-INITIAL_FORMS": "0",
            "memberships-2-0-id": "", "memberships-2-0-user": bob.pk, "memberships-2-0-tenant": globex.pk,
            "memberships-2-0-role": "viewer", "memberships-2-0-joined_at_0": "",
            "memberships-2-0-joined_at_1": "",
            "aliases-TOTAL_FORMS": "0", "aliases-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    assert Membership.objects.get(user=bob, tenant=globex).role == "viewer"
    assert Signal.objects.filter(user=bob, name="$group", tenant=globex).exists()
    assert not Signal.objects.filter(user=bob, name="$identify").exists(), "nothing else changed"


def test_changing_a_members_role_goes_through_group_and_cannot_move_the_membership(admin_client, world):
    bob, globex = world["bob"], TenantFactory(key="globex")
    existing = Membership.objects.get(user=bob)
    response = admin_client.post(
        change("enduser", bob.pk),
        {
            "properties": "{}", "timezone": "", "locale": "",
            "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "1",
            "memberships-0-id": existing.pk, "memberships-0-user": bob.pk, "memberships-0-role": "owner",
            "memberships-0-tenant": globex.pk,
            "memberships-2-TOTAL_FORMS": "0", "memberships-2-INITIAL_FORMS": "0",
            "aliases-TOTAL_FORMS": "0", "aliases-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    existing.refresh_from_db()
    assert (existing.tenant, existing.role) == (world["tenant"], "owner")
    assert Signal.objects.filter(user=bob, name="$group", tenant=world["tenant"]).exists()
    assert not Membership.objects.filter(tenant=globex).exists()


def test_merged_and_erased_users_are_view_only(admin_client, world):
    for user in (world["old_alice"], world["gone"]):
        response = admin_client.get(change("enduser", user.pk))
        assert response.context["has_change_permission"] is False
        before = EndUser.objects.filter(pk=user.pk).values().get()
        admin_client.post(change("enduser", user.pk), {"properties": '{"x": 1}', "timezone": "UTC"})
        assert EndUser.objects.filter(pk=user.pk).values().get() == before


def test_users_are_never_added_or_deleted_from_the_admin(admin_client, world):
    assert admin_client.get(reverse("admin:engagement_enduser_add")).status_code == 403
    delete = reverse("admin:engagement_enduser_delete", args=[world["bob"].pk])
    assert admin_client.get(delete).status_code == 403


# --- API keys -----------------------------------------------------------------


def test_adding_an_api_key_shows_the_key_once_and_stores_only_its_hash(admin_client, db):
    response = admin_client.post(
        reverse("admin:engagement_apikey_add"), {"name": "segment bridge", "scopes": ["ingest", "read"]}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    raw = RAW_KEY.search(response.text).group(0)
    key = ApiKey.objects.get(name="segment bridge")
    assert key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert key.scopes == ["ingest", "read"]
    secret = raw.split("_", 2)[2]
    stored = [str(v) for v in ApiKey.objects.filter(pk=key.pk).values().get().values()]
    assert not any(secret in value for value in stored)
    assert not any(raw in s.session_data or raw in str(s.get_decoded()) for s in Session.objects.all())
    assert not any(raw in (entry.change_message + entry.object_repr) for entry in LogEntry.objects.all())
    assert keys.authenticate(raw).scopes == ("ingest", "read")
    for url in (changelist("apikey"), change("apikey", key.pk)):
        text = admin_client.get(url).text
        assert raw not in text and key.key_hash not in text


def test_an_api_key_needs_a_name_and_at_least_one_known_scope(admin_client, db):
    url = reverse("admin:engagement_apikey_add")
    assert admin_client.post(url, {"name": "x", "scopes": []}).status_code == 200
    assert admin_client.post(url, {"name": "x", "scopes": ["root"]}).status_code == 200
    assert admin_client.post(url, {"name": "", "scopes": ["read"]}).status_code == 200
    assert not ApiKey.objects.exists()


def test_an_api_keys_hash_and_prefix_cannot_be_edited(admin_client, world):
    key = world["key"]
    admin_client.post(
        change("apikey", key.pk), {"name": "renamed", "prefix": "deadbeef", "key_hash": "0" * 64}
    )
    stored = ApiKey.objects.get(pk=key.pk)
    assert (stored.name, stored.prefix, stored.key_hash) == ("renamed", key.prefix, key.key_hash)


def test_revoking_selected_keys_makes_them_stop_authenticating(admin_client, world):
    other, other_raw = keys.create_api_key("kept", "read", now=world["key"].created_at)
    assert keys.authenticate(world["raw"]) is not None
    response = admin_client.post(
        changelist("apikey"), {"action": "revoke_selected", "_selected_action": [world["key"].pk]}
    )
    assert response.status_code == 302
    keys.clear_cache()
    assert keys.authenticate(world["raw"]) is None
    assert keys.authenticate(other_raw) is not None
    assert ApiKey.objects.get(pk=world["key"].pk).revoked_at is not None


def test_api_keys_are_revoked_never_deleted(admin_client, world):
    url = reverse("admin:engagement_apikey_delete", args=[world["key"].pk])
    assert admin_client.get(url).status_code == 403


# --- signals and jobs ---------------------------------------------------------


def test_requeueing_selected_failed_signals_moves_them_back_to_pending(admin_client, world):
    failed, processed = world["failed"], world["processed"]
    response = admin_client.post(
        changelist("signal"),
        {"action": "requeue_selected", "_selected_action": [failed.pk, processed.pk]},
    )
    assert response.status_code == 302
    failed.refresh_from_db()
    processed.refresh_from_db()
    assert (failed.state, failed.error, failed.failed_at) == ("pending", "", None)
    assert processed.state == "processed"


def test_the_signal_list_shows_why_a_signal_failed_and_filters_by_name(admin_client, world):
    text = admin_client.get(changelist("signal")).text
    assert "ValueError: tip catalogue unavailable" in text
    response = admin_client.get(changelist("signal"), {"name": "issue.viewed"})
    assert list(response.context["cl"].result_list) == [world["processed"]]
    choices = [c["display"] for c in response.context["cl"].filter_specs[0].choices(response.context["cl"])]
    assert {"issue.viewed", "tip.served"} <= set(choices)


def test_the_signal_list_filters_by_user_from_the_user_page(admin_client, world):
    SignalFactory(user=world["bob"])
    response = admin_client.get(changelist("signal"), {"user__id__exact": world["alice"].pk})
    assert {s.user_id for s in response.context["cl"].result_list} == {world["alice"].pk}


def test_signals_and_job_runs_cannot_be_edited(admin_client, world):
    for name, obj in (("signal", world["failed"]), ("jobrun", world["run"])):
        response = admin_client.get(change(name, obj.pk))
        assert response.context["has_change_permission"] is False
        assert admin_client.get(reverse(f"admin:engagement_{name}_add")).status_code == 403
    admin_client.post(change("signal", world["failed"].pk), {"state": "processed", "name": "x"})
    assert Signal.objects.get(pk=world["failed"].pk).state == "failed"


def test_the_signal_date_hierarchy_drills_down_without_listing_every_row(admin_client, world, now):
    SignalFactory(user=world["bob"], occurred_at=now.replace(year=now.year - 2))
    cl_links = admin_client.get(changelist("signal")).context["pulse_date_hierarchy"]["choices"]
    assert [c["title"] for c in cl_links] == [str(y) for y in range(now.year - 2, now.year + 1)]
    month = admin_client.get(
        changelist("signal"), {"occurred_at__year": now.year, "occurred_at__month": now.month}
    )
    assert [c["title"] for c in month.context["pulse_date_hierarchy"]["choices"]]
    assert {s.pk for s in month.context["cl"].result_list} == {world["failed"].pk, world["processed"].pk}


def test_the_job_run_list_shows_counts_and_duration(admin_client, world):
    text = admin_client.get(changelist("jobrun"), {"kind": "prune_job_runs", "status": "succeeded"}).text
    assert "prune_job_runs" in text and "1.5 s" in text


def test_the_job_run_list_shows_trigger_and_queue_and_filters_manual_runs(admin_client, world, now):
    JobRun.objects.filter(pk=world["run"].pk).update(queue="sweeps")
    manual = JobRun.objects.create(kind="prune_job_runs", window=world["run"].window, status="running",
                                   trigger="manual", actor="cli")
    response = admin_client.get(changelist("jobrun"))
    assert {"trigger", "queue"} <= set(response.context["cl"].list_display)
    assert "sweeps" in response.text and "manual" in response.text
    manual_only = admin_client.get(changelist("jobrun"), {"trigger__exact": "manual"})
    assert [r.pk for r in manual_only.context["cl"].result_list] == [manual.pk]
    assert "cli" in admin_client.get(change("jobrun", manual.pk)).text


# --- large tables ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("model_name", "params"),
    [
        ("enduser", {}),
        ("enduser", {"q": "alice@example.com"}),
        ("enduser", {"status": "live", "tenant": "1"}),
        ("tenant", {}),
        ("apikey", {}),
        ("jobrun", {}),
        ("signal", {}),
        ("signal", {"name": "issue.viewed", "state": "failed"}),
        ("erasure", {}),
    ],
)
def test_changelists_do_a_bounded_number_of_queries_whatever_the_rows(
    admin_client, world, now, model_name, params, django_assert_max_num_queries
):
    tenants = TenantFactory.create_batch(30)
    for index in range(30):
        user = EndUserFactory()
        MembershipFactory(user=user, tenant=tenants[index])
        SignalFactory(user=user, tenant=tenants[index], name=f"name.{index}")
        window = now - timedelta(minutes=index)
        JobRun.objects.create(kind=f"kind_{index % 3}", window=window, status="failed")
        keys.create_api_key(f"key {index}", "read", now=now)
    # session + staff user + capped count + page of rows + at most two cheap filter/date queries
    with django_assert_max_num_queries(7):
        response = admin_client.get(changelist(model_name), params)
    assert response.status_code == 200


def test_the_user_page_does_a_bounded_number_of_queries_whatever_the_history(
    admin_client, world, now, django_assert_max_num_queries
):
    for minute in range(80):
        at = now - timedelta(minutes=minute)
        SignalFactory(user=world["alice"], tenant=world["tenant"], occurred_at=at)
    # 14 for the core page and its panel, plus one query each for the campaigns panels
    # (preferences, inbox), item engagement's, the lifecycle panel (state, transitions,
    # savepoint), profiles' (one read in its savepoint) and buckets' memberships panel
    with django_assert_max_num_queries(28):
        response = admin_client.get(change("enduser", world["alice"].pk))
    assert response.status_code == 200


def test_long_lists_count_only_up_to_a_cap(admin_client, world, monkeypatch):
    monkeypatch.setattr(CappedCountPaginator, "CAP", 3)
    EndUserFactory.create_batch(5)
    response = admin_client.get(changelist("enduser"))
    assert response.context["cl"].result_count == 3
    assert response.context["cl"].paginator.capped
    assert re.search(r"3\+\s+users", response.text)
    assert response.context["cl"].full_result_count is None
    SignalFactory.create_batch(3, user=world["bob"])
    signals = admin_client.get(changelist("signal")).text
    assert "Select all 3+ matching signals" in signals


def test_short_lists_show_their_exact_count(admin_client, world):
    response = admin_client.get(changelist("tenant"))
    assert response.context["cl"].result_count == Tenant.objects.count()
    assert not response.context["cl"].paginator.capped


def test_merges_leave_the_aliases_shown_on_the_survivors_page(admin_client, world):
    assert UserAlias.objects.filter(user=world["alice"], value="alice.old@example.com").exists()
    assert "alice.old@example.com" in admin_client.get(change("enduser", world["alice"].pk)).text
