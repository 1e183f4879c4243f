"""The lifecycle state machine: the table, activity from the drain, answers, merge, erase, replay."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from engagement import user_tokens
from engagement.erase import erase_user
from engagement.identity import Identifiers
from engagement.loops.lifecycle import TRIGGERS, InvalidTransition, respond, transition_state
from engagement.models import EndUser, LifecycleState, LifecycleTransition, Signal
from engagement.people import identify
from engagement.pipeline import process_signals
from tests.engagement.lifecycle_helpers import (
    NOW,
    S,
    changed_signals,
    goodbye_sent,
    lifecycle_messages,
    state_of,
    user_in,
)
from tests.factories import EndUserFactory, SignalFactory

pytestmark = pytest.mark.django_db
DAY = timedelta(days=1)


# --- the table -------------------------------------------------------------------


def test_every_trigger_of_the_issue_is_in_the_one_table():
    assert set(TRIGGERS) == {"user_activity", "inactivity_14d", "confused", "busy", "no_thanks", "stop",
                             "goodbye_timeout", "help_timeout", "reminder_due"}


@pytest.mark.parametrize("state", [S.GOODBYE_SENT, S.HELP_FLOW, S.REMIND_LATER, S.DORMANT])
def test_inactivity_is_invalid_outside_active_and_changes_nothing(state):
    user = user_in(state, inactive=30 * DAY)
    with pytest.raises(InvalidTransition):
        transition_state(user, "inactivity_14d", now=NOW, actor="test")
    assert state_of(user) == state and not LifecycleTransition.objects.exists()
    assert not changed_signals().exists() and not lifecycle_messages().exists()


def test_a_trigger_whose_time_has_not_come_is_invalid():
    user = goodbye_sent(ago=timedelta(hours=47))
    with pytest.raises(InvalidTransition):
        transition_state(user, "goodbye_timeout", now=NOW, actor="test")
    assert state_of(user) == S.GOODBYE_SENT


def test_an_unknown_trigger_is_invalid():
    with pytest.raises(InvalidTransition):
        transition_state(user_in(), "vanish", now=NOW, actor="test")


def test_a_user_without_a_state_has_no_transitions_but_activity():
    with pytest.raises(InvalidTransition):
        transition_state(EndUserFactory(), "inactivity_14d", now=NOW, actor="test")


# --- user_activity through the drain --------------------------------------------------


def drain(now):
    process_signals(now=now)


def test_the_first_activity_creates_an_active_state_and_logs_it(now):
    user = EndUserFactory()
    signal = SignalFactory(user=user, occurred_at=now - timedelta(minutes=2))
    drain(now)
    state = LifecycleState.objects.get(user=user)
    assert (state.state, state.last_activity_at, state.changed_at) == (S.ACTIVE, signal.occurred_at,
                                                                        signal.occurred_at)
    transition = LifecycleTransition.objects.get(user=user)
    assert (transition.from_state, transition.to_state, transition.signal_id) == ("", "active", signal.pk)
    assert not changed_signals(user).exists(), "a first state changes no earlier one"


def test_system_signals_are_not_activity_and_create_no_state(now):
    user = EndUserFactory()
    SignalFactory(user=user, name="$identify", source="system")
    drain(now)
    assert not LifecycleState.objects.filter(user=user).exists()


def test_activity_keeps_the_latest_time_and_never_moves_it_back(now):
    user = user_in(inactive=timedelta(hours=1))
    before = LifecycleState.objects.get(user=user).last_activity_at
    SignalFactory(user=user, occurred_at=before - DAY, source="import", realtime=False)
    drain(now)
    assert LifecycleState.objects.get(user=user).last_activity_at == before
    SignalFactory(user=user, occurred_at=now)
    drain(now)
    assert LifecycleState.objects.get(user=user).last_activity_at == now


@pytest.mark.parametrize("state", [S.GOODBYE_SENT, S.HELP_FLOW, S.REMIND_LATER, S.DORMANT])
def test_activity_after_the_change_wakes_the_user_from_every_state(state, now):
    user = user_in(state, inactive=20 * DAY, changed=now - 3 * DAY)
    first = SignalFactory(user=user, occurred_at=now - 2 * DAY, source="import", realtime=False)
    SignalFactory(user=user, occurred_at=now - DAY)
    drain(now)
    row = LifecycleState.objects.get(user=user)
    assert (row.state, row.changed_at, row.last_activity_at) == (S.ACTIVE, first.occurred_at, now - DAY)
    transition = LifecycleTransition.objects.get(user=user)
    assert (transition.from_state, transition.trigger, transition.signal_id) == (state, "user_activity",
                                                                                  first.pk)
    assert not lifecycle_messages().exists(), "user_activity sends nothing"


def test_old_imported_activity_does_not_wake_a_user_who_went_dormant_later(now):
    user = user_in(S.DORMANT, inactive=40 * DAY, changed=now - 7 * DAY)
    SignalFactory(user=user, occurred_at=now - 30 * DAY, source="import", realtime=False)
    drain(now)
    row = LifecycleState.objects.get(user=user)
    assert row.state == S.DORMANT and row.last_activity_at == now - 30 * DAY
    assert not LifecycleTransition.objects.exists()


def test_history_wakes_users_but_its_system_signals_are_history_too(now):
    user = user_in(S.DORMANT, inactive=40 * DAY, changed=now - 7 * DAY)
    SignalFactory(user=user, occurred_at=now - DAY, source="import", realtime=False)
    drain(now)
    assert state_of(user) == S.ACTIVE
    assert changed_signals(user).get().realtime is False


def test_replaying_history_builds_the_states_of_users_from_before_the_lifecycle(now):
    user = EndUserFactory()
    old = SignalFactory(user=user, occurred_at=now - 40 * DAY, state="processed", source="import",
                        realtime=False)
    SignalFactory(user=user, occurred_at=now - 20 * DAY, state="processed")
    call_command("replay_signals", verbosity=0)
    row = LifecycleState.objects.get(user=user)
    assert (row.state, row.changed_at, row.last_activity_at) == (S.ACTIVE, old.occurred_at, now - 20 * DAY)
    call_command("replay_signals", verbosity=0)
    assert LifecycleTransition.objects.filter(user=user).count() == 1, "a second replay changes nothing"


# --- answers to the goodbye --------------------------------------------------------------


def test_confused_starts_the_help_flow_and_queues_help():
    user = goodbye_sent()
    row = respond(user, "confused", now=NOW, actor="api_key:app")
    assert (row.state, row.help_expires_at) == (S.HELP_FLOW, NOW + timedelta(hours=48))
    assert lifecycle_messages(user).get().template.key == "engagement.help"


def test_busy_schedules_a_reminder_in_14_days():
    row = respond(goodbye_sent(), "busy", now=NOW, actor="test")
    assert (row.state, row.remind_at) == (S.REMIND_LATER, NOW + 14 * DAY)


def test_no_thanks_makes_the_user_dormant():
    assert respond(goodbye_sent(), "no_thanks", now=NOW, actor="test").state == S.DORMANT


def test_an_answer_is_valid_until_the_goodbye_expires_inclusive():
    user = goodbye_sent(ago=timedelta(hours=48))
    assert respond(user, "busy", now=NOW, actor="test").state == S.REMIND_LATER
    late = goodbye_sent(ago=timedelta(hours=48, seconds=1))
    with pytest.raises(InvalidTransition):
        respond(late, "busy", now=NOW, actor="test")


def test_an_answer_after_the_user_became_active_is_still_valid(now):
    user = goodbye_sent(ago=timedelta(hours=2))
    LifecycleState.objects.filter(user=user).update(state=S.ACTIVE, changed_at=NOW - timedelta(hours=1))
    assert respond(user, "no_thanks", now=NOW, actor="test").state == S.DORMANT


def test_an_answer_without_an_outstanding_goodbye_is_invalid():
    for user in (user_in(), user_in(S.DORMANT), user_in(S.HELP_FLOW)):
        with pytest.raises(InvalidTransition):
            respond(user, "confused", now=NOW, actor="test")


@pytest.mark.parametrize("state, after", [
    (S.ACTIVE, S.ACTIVE), (S.GOODBYE_SENT, S.DORMANT), (S.HELP_FLOW, S.DORMANT),
    (S.REMIND_LATER, S.DORMANT), (S.DORMANT, S.DORMANT),
])
def test_stop_is_accepted_in_every_state_and_opts_the_user_out(state, after):
    user = user_in(state, goodbye_sent_at=NOW - DAY, goodbye_expires_at=NOW + DAY)
    respond(user, "stop", now=NOW, actor="user_token")
    assert state_of(user) == after
    assert EndUser.objects.get(pk=user.pk).reengagement_opt_out is True
    signal = changed_signals(user).get()
    assert signal.actor == "user_token" and signal.properties["trigger"] == "stop"


def test_stop_before_any_activity_still_opts_the_user_out():
    user = EndUserFactory()
    assert respond(user, "stop", now=NOW, actor="test") is None
    assert EndUser.objects.get(pk=user.pk).reengagement_opt_out is True


# --- merge and erase -------------------------------------------------------------------------


def test_a_merge_keeps_the_state_of_whoever_was_active_most_recently(now):
    survivor = EndUserFactory(external_id="ada", email=None)
    loser = EndUserFactory(external_id=None, anonymous_id="dev-1", email="ada@example.com")
    user_in(S.DORMANT, inactive=30 * DAY, user=survivor)
    user_in(S.ACTIVE, inactive=DAY, user=loser)
    LifecycleTransition.objects.create(user=loser, to_state="active", trigger="user_activity", at=now,
                                       actor="drain")
    identify(Identifiers(external_id="ada", email="ada@example.com"), now=now, actor="test")
    row = LifecycleState.objects.get(user=survivor)
    assert (row.state, row.last_activity_at) == (S.ACTIVE, NOW - DAY)
    assert not LifecycleState.objects.filter(user=loser).exists()
    assert LifecycleTransition.objects.get().user_id == survivor.pk


def test_a_merge_keeps_the_survivors_state_when_it_was_active_later(now):
    survivor = EndUserFactory(external_id="bo", email=None)
    loser = EndUserFactory(external_id=None, email="bo@example.com")
    user_in(S.GOODBYE_SENT, inactive=DAY, user=survivor)
    user_in(S.ACTIVE, inactive=10 * DAY, user=loser)
    identify(Identifiers(external_id="bo", email="bo@example.com"), now=now, actor="test")
    assert state_of(survivor) == S.GOODBYE_SENT
    assert LifecycleState.objects.count() == 1


def test_erasing_a_user_removes_its_state_and_keeps_its_transitions_as_counts(now):
    user = user_in()
    LifecycleTransition.objects.create(user=user, to_state="active", trigger="user_activity", at=now,
                                       actor="drain")
    erasure = erase_user(user, erased_by="staff:admin", now=now)
    assert not LifecycleState.objects.filter(user=user).exists()
    assert erasure.counts["lifecycle_states_removed"] == 1
    assert erasure.counts["lifecycle_transitions_kept"] == 1


# --- the endpoint and the user's section ---------------------------------------------------------


@pytest.fixture
def ada():
    user = EndUserFactory(external_id="ada", email="ada@example.com")
    goodbye_sent(user=user, ago=timedelta(0))
    LifecycleState.objects.filter(user=user).update(goodbye_sent_at=timezone.now() - timedelta(hours=1),
                                                    goodbye_expires_at=timezone.now() + DAY)
    return user


def test_the_endpoint_answers_the_lifecycle_after_a_response(api_as, ada):
    response = api_as("send").post_json("/api/v1/users/ext:ada/lifecycle", {"response": "busy"})
    assert response.status_code == 200, response.content
    body = response.json()["lifecycle"]
    assert body["state"] == "remind_later" and body["remind_at"]
    assert body["transitions"][0] == {"from": "goodbye_sent", "to": "remind_later", "trigger": "busy",
                                      "at": body["changed_at"]}
    assert LifecycleTransition.objects.get(user=ada).actor.startswith("api_key:")


def test_a_response_that_is_not_valid_now_is_409(api_as, ada):
    LifecycleState.objects.filter(user=ada).update(state=S.DORMANT)
    response = api_as("send").post_json("/api/v1/users/ext:ada/lifecycle", {"response": "confused"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "invalid_transition"
    assert state_of(ada) == S.DORMANT


@pytest.mark.parametrize("body", [
    {"response": "maybe"}, {"response": ""}, {"response": 3}, {"response": None}, {},
    {"response": "busy", "extra": 1}, {"response": "x" * 10_000}, {"response": "busy\x00"},
])
def test_bad_bodies_are_400_and_change_nothing(api_as, ada, body):
    response = api_as("send").post_json("/api/v1/users/ext:ada/lifecycle", body)
    assert response.status_code == 400 and state_of(ada) == S.GOODBYE_SENT


def test_malformed_json_and_wrong_content_types_are_refused(api_as, ada):
    client = api_as("send")
    assert client.post_json("/api/v1/users/ext:ada/lifecycle", b"{nope").status_code == 400
    assert client.post_json("/api/v1/users/ext:ada/lifecycle", b"[]").status_code == 400
    response = client.post("/api/v1/users/ext:ada/lifecycle", "response=busy",
                           content_type="application/x-www-form-urlencoded", **client._auth({}))
    assert response.status_code == 415


def test_an_unknown_user_is_404_and_a_bad_ref_400(api_as, ada):
    client = api_as("send")
    assert client.post_json("/api/v1/users/ext:nobody/lifecycle", {"response": "stop"}).status_code == 404
    assert client.post_json("/api/v1/users/ext:/lifecycle", {"response": "stop"}).status_code == 400


@pytest.mark.parametrize("scopes, status", [("ingest", 403), ("read", 403), ("send", 200), ("admin", 200)])
def test_the_endpoint_needs_the_send_scope(api_as, ada, scopes, status):
    response = api_as(scopes).post_json("/api/v1/users/ext:ada/lifecycle", {"response": "stop"})
    assert response.status_code == status


def test_no_key_is_401_and_get_is_not_allowed(client, api_as, ada):
    assert client.post("/api/v1/users/ext:ada/lifecycle", "{}", content_type="application/json"
                       ).status_code == 401
    assert api_as("admin").get_json("/api/v1/users/ext:ada/lifecycle").status_code == 405


def test_the_users_own_token_may_answer_and_another_users_may_not(client, ada):
    token, _ = user_tokens.mint(ada, now=timezone.now())
    other = EndUserFactory(external_id="bo")
    other_token, _ = user_tokens.mint(other, now=timezone.now())
    refused = client.post("/api/v1/users/ext:ada/lifecycle", '{"response": "stop"}',
                          content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {other_token}")
    assert refused.status_code == 403 and state_of(ada) == S.GOODBYE_SENT
    response = client.post("/api/v1/users/ext:ada/lifecycle", '{"response": "no_thanks"}',
                           content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200 and response.json()["lifecycle"]["state"] == "dormant"
    assert LifecycleTransition.objects.get(user=ada).actor == "user_token"


def test_the_user_answer_has_a_lifecycle_null_before_any_activity(api_as):
    EndUserFactory(external_id="new")
    body = api_as("read").get_json("/api/v1/users/ext:new").json()
    assert body["lifecycle"] is None and "lifecycle" not in body["sections_failed"]


def test_the_user_answer_lists_the_latest_ten_transitions_newest_first(api_as, now):
    user = EndUserFactory(external_id="busy-bee")
    user_in(user=user)
    for i in range(12):
        LifecycleTransition.objects.create(user=user, from_state="dormant", to_state="active",
                                           trigger="user_activity", at=now - timedelta(hours=i), actor="x")
    body = api_as("read").get_json("/api/v1/users/ext:busy-bee").json()["lifecycle"]
    assert body["state"] == "active" and len(body["transitions"]) == 10
    ats = [t["at"] for t in body["transitions"]]
    assert ats == sorted(ats, reverse=True)
    assert set(body) == {"state", "last_activity_at", "goodbye_sent_at", "goodbye_expires_at",
                         "help_expires_at", "remind_at", "changed_at", "transitions"}


def test_the_openapi_document_lists_the_endpoint_with_its_scope(api):
    doc = api.get_json("/api/v1/openapi.json").json()
    operation = doc["paths"]["/api/v1/users/{user_ref}/lifecycle"]["post"]
    assert operation["x-pulse-scope"] == "send" and operation["x-pulse-user-token"] is True


def test_realtime_goodbyes_are_signals_of_the_job_that_may_act():
    user = user_in(inactive=20 * DAY)
    transition_state(user, "inactivity_14d", now=NOW, actor="test")
    signal = Signal.objects.get(name="$lifecycle.changed", user=user)
    assert signal.realtime is True and signal.occurred_at == NOW


# --- the seams are checked at start-up, and the demo has every state ------------------------------


def one_argument(value):
    return None


def test_the_suppression_and_calibration_seams_are_checked_by_manage_py_check(settings):
    from engagement.checks import check_registries

    def ids(**overrides):
        for name, value in overrides.items():
            setattr(settings, name, value)
        return [e.id for e in check_registries()]

    assert ids() == []
    assert ids(PULSE_OUTBOX_SUPPRESSED="campaigns.suppression.supressed") == ["pulse.E001"]
    assert ids(PULSE_OUTBOX_SUPPRESSED="tests.engagement.test_lifecycle.one_argument") == ["pulse.E002"]
    settings.PULSE_OUTBOX_SUPPRESSED = None
    assert ids(PULSE_CALIBRATION_LOOKUP=["engagement.loops.thresholds.calibration_table"]) == ["pulse.E004"]
    assert ids(PULSE_CALIBRATION_LOOKUP=None) == []


def test_seed_demo_produces_users_in_every_state_through_history_only():
    from datetime import UTC, datetime

    now = datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    call_command("seed_demo", "--users", "60", "--days", "30", "--now", now.isoformat(), verbosity=0)
    states = set(LifecycleState.objects.values_list("state", flat=True))
    assert states == set(S.values)
    assert not lifecycle_messages().filter(status="queued").exists(), "history queues nothing"
    assert not changed_signals().filter(realtime=True).exists()
