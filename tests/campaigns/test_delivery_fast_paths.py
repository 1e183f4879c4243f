"""The delivery's shortcuts mean what the general paths mean: a message rendered without the
engine's bookkeeping, the outcome written as one JSON recordset, and the batch picked with
its users and preferences in one statement."""

import logging
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from campaigns import gate, held_update, rendering
from campaigns.claimed import Recipient, attach_versions, load, pick
from campaigns.delivery import claim
from campaigns.held_update import update_held
from campaigns.models import Message, Preference, TemplateVersion
from campaigns.outbox import queue_messages
from tests.factories import EndUserFactory

from .helpers import make_template
from .test_plain_render import HOSTILE_PIECES, KEYS, json_values, templates, texts

pytestmark = pytest.mark.django_db


class _Names(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def _rendered(render, *args):
    """What `render` answers (as a tuple) and what it logged, or the error it raised."""
    handler = _Names()
    logger = logging.getLogger("pulse.messages")
    logger.addHandler(handler)
    try:
        out = render(*args)
    except Exception as exc:  # noqa: BLE001 - compared, not swallowed
        out = f"raised {type(exc).__name__}"
    finally:
        logger.removeHandler(handler)
    return out, handler.messages


def _general(version, user, context):
    locale, variant, actions, _plans = rendering._variant_for(version, user.locale)
    subject, text, html = rendering._render_parts(version, variant, user, context)
    return locale, subject.strip(), text, html, [dict(a) for a in actions]


def _as_tuple(version, user, context):
    r = rendering.render(version, user, context)
    return r.locale, r.subject, r.text, r.html, r.actions


FAST_TEMPLATES = st.lists(
    texts | st.sampled_from(["{{ user.id }}", "{{ user.properties.plan }}", "{{ context.n }}",
                             "{{ preferences_url }}", "{{ context.missing }}", "{{ user.email }}"]),
    max_size=6,
).map("".join)


@override_settings(PULSE_PREFERENCES_URL="https://app.example/prefs?u={user}")
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(parts=st.tuples(FAST_TEMPLATES | templates, FAST_TEMPLATES | templates, FAST_TEMPLATES | templates),
       properties=st.dictionaries(st.sampled_from([*KEYS, "plan"]), json_values, max_size=4),
       context=st.dictionaries(st.sampled_from([*KEYS, "n"]), json_values, max_size=4),
       external_id=st.none() | st.sampled_from(HOSTILE_PIECES))
def test_a_message_renders_and_logs_the_same_on_the_fast_path_and_the_general_one(
        parts, properties, context, external_id):
    subject, text, html = parts
    version = TemplateVersion(pk=7, variants={"en": {"subject": subject, "text": text, "html": html}},
                              default_locale="en", actions=[{"id": "a", "labels": {"en": "A <b>"}}])
    user = Recipient(1, external_id, None, "a@example.com", properties, "en", "UTC", None)
    fast = _rendered(_as_tuple, version, user, context)
    again = TemplateVersion(pk=7, variants=version.variants, default_locale="en", actions=version.actions)
    assert fast == _rendered(_general, again, user, context)


def test_a_part_the_fast_path_cannot_decide_sends_the_whole_message_the_general_way(caplog):
    version = TemplateVersion(pk=3, default_locale="en", actions=[], variants={"en": {
        "subject": "Hi {{ user.id }}", "text": "{{ context.gone }}!", "html": "<i>{{ context.a }}</i>"}})
    user = Recipient(1, "u-1", None, None, {}, "en", "UTC", None)
    with caplog.at_level(logging.INFO, logger="pulse.messages"):
        rendered = rendering.render(version, user, {"a": "<x>"})
    assert (rendered.subject, rendered.text, rendered.html) == ("Hi u-1", "!", "<i>&lt;x&gt;</i>")
    assert "variables=context.gone" in caplog.text


def _claimed(now, n: int):
    make_template()
    user = EndUserFactory(properties={"plan": "x"})
    queue_messages([{"user_id": user.pk, "template": "tips.weekly", "idempotency_key": f"k{i}"}
                    for i in range(n)], now=now - timedelta(minutes=1))
    return claim(now, 100)[1]


HOSTILE = ['a "quoted" \\ back\\slash', "{braces},commas", "NULL", "", "'single' ; DROP", "é\u202e\n\t",
           "[1]"]
COLUMNS = ("status", "subject", "text", "html", "locale", "provider_id", "gated_at", "attempts",
           "rendered_actions", "sent_at", "lease_token", "lease_expires_at", "last_error")


def test_the_recordset_outcome_writes_exactly_what_the_array_form_writes(now):
    if connection.vendor != "postgresql":
        pytest.skip("the recordset form is PostgreSQL's")
    ids = _claimed(now, 2 * len(HOSTILE))
    first, second = ids[: len(HOSTILE)], ids[len(HOSTILE):]

    def rows(for_ids):
        return [{"id": pk, "subject": text, "text": text[::-1], "html": f"<p>{text}</p>", "locale": "en",
                 "provider_id": "", "gated_at": None if i % 2 else now, "attempts": i,
                 "rendered_actions": [{"id": text, "label": {"nested": [text, None, 1.5, True]}}]}
                for i, (pk, text) in enumerate(zip(for_ids, HOSTILE, strict=True))]

    common = {"status": "sent", "sent_at": now, "last_error": "", "lease_token": "", "lease_expires_at": None}
    assert sorted(update_held(rows(first), token=None, common=common)) == first
    sql, params = held_update._statement(rows(second), None, common)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    stored = {m.pk: m for m in Message.objects.filter(pk__in=ids)}
    for a, b in zip(first, second, strict=True):
        assert [getattr(stored[a], c) for c in COLUMNS] == [getattr(stored[b], c) for c in COLUMNS]
    assert stored[first[0]].subject == HOSTILE[0] and stored[first[1]].gated_at is None


@pytest.mark.parametrize("values", [
    [{"subject": 12}], [{"subject": 12}, {"subject": 12}], [{"attempts": "1"}], [{"attempts": True}],
    [{"gated_at": "2026-01-01"}], [{"rendered_actions": object()}],
])
def test_a_recordset_outcome_value_of_the_wrong_type_is_refused_not_written(now, values):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite writes through the ORM field, which converts")
    ids = _claimed(now, len(values))
    rows = [{"id": pk, **v} for pk, v in zip(ids, values, strict=True)]
    with pytest.raises(TypeError):
        update_held(rows, token=None, common={"status": "sent"})
    assert not Message.objects.filter(status="sent").exists()


def test_a_naive_timestamp_is_refused_by_the_recordset_form_too(now):
    if connection.vendor != "postgresql":
        pytest.skip("SQLite writes through the ORM field")
    ids = _claimed(now, 2)
    naive = now.replace(tzinfo=None)
    rows = [{"id": pk, "gated_at": naive + timedelta(seconds=i)} for i, pk in enumerate(ids)]
    with pytest.raises(TypeError):
        update_held(rows, token=None, common={})


VARIES = held_update._VARIES


@pytest.mark.parametrize(("values", "shared"), [
    (["a", "a"], "a"), ([1, 1], 1), ([None, None], None), ([1, True], VARIES), ([1, 1.0], VARIES),
    (["a", "b"], VARIES), ([[1], [1]], VARIES), ([True, True], VARIES), ([{"a": 1}, {"a": 1}], VARIES),
])
def test_only_equal_plain_values_of_one_type_become_one_constant(values, shared):
    assert held_update._shared([{"v": v} for v in values], "v") is shared or (
        shared is not VARIES and held_update._shared([{"v": v} for v in values], "v") == shared)


def test_the_pick_reads_the_same_messages_users_and_preferences_as_load_and_the_gate_query(now):
    make_template()
    users = EndUserFactory.create_batch(4, properties={"plan": "p"}, locale="de")
    Preference.objects.create(user=users[1], unsubscribed_all=True, updated_at=now)
    Preference.objects.create(user=users[2], categories={"marketing": False}, updated_at=now)
    queue_messages([{"user_id": u.pk, "template": "tips.weekly", "idempotency_key": f"{u.pk}-{n}",
                     "context": {"n": n}} for u in users for n in range(2)], now=now - timedelta(minutes=1))
    with transaction.atomic():
        picked, prefs, _last = pick(now, 100)
        attach_versions(picked)
        loaded = load(None, sorted(m.pk for m in picked))
        assert sorted(picked, key=lambda m: m.pk) == loaded
        assert gate.early_reasons(picked, prefs) == gate.early_reasons(loaded)
    reasons = gate.early_reasons(loaded)
    assert sorted(r for r in reasons.values() if r) == ["category_opt_out"] * 2 + ["unsubscribed_all"] * 2


def test_a_pick_after_a_claim_key_takes_only_the_messages_past_it_in_claim_order(now):
    make_template()
    user = EndUserFactory()
    queue_messages([{"user_id": user.pk, "template": "tips.weekly", "idempotency_key": f"k{n}"}
                    for n in range(5)], now=now - timedelta(minutes=1))
    with transaction.atomic():
        first, _prefs, last = pick(now, 2)
        rest, _prefs, end = pick(now, 10, after=last)
        nothing, _prefs, none = pick(now, 10, after=end)
    ids = sorted(Message.objects.values_list("pk", flat=True))
    assert [m.pk for m in first] == ids[:2] and [m.pk for m in rest] == ids[2:]
    assert last[1] == ids[1] and end[1] == ids[4] and nothing == [] and none is None
