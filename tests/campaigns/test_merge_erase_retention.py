from datetime import timedelta

import pytest

from campaigns.models import Message, Preference
from campaigns.retention import prune_messages
from engagement.erase import erase_user
from engagement.identity import merge_users
from tests.factories import EndUserFactory

from .helpers import deliver, make_template, queue

pytestmark = pytest.mark.django_db


def test_a_merge_moves_messages_and_the_most_restrictive_preferences_win(now):
    make_template()
    a, b = EndUserFactory(), EndUserFactory(external_id=None)
    queue(a, idempotency_key="a")
    queue(b, idempotency_key="b")
    Preference.objects.create(user=a, categories={"marketing": False, "lifecycle": True}, updated_at=now)
    Preference.objects.create(user=b, unsubscribed_all=True, categories={"lifecycle": False}, updated_at=now)
    survivor = merge_users([a, b], now=now)
    assert set(Message.objects.values_list("user_id", flat=True)) == {survivor.pk}
    pref = Preference.objects.get()
    assert pref.user_id == survivor.pk and pref.unsubscribed_all is True
    assert pref.categories == {"marketing": False, "lifecycle": False}


def test_erasing_a_user_scrubs_rendered_content_and_context_and_cancels_pending_messages(now):
    make_template()
    user = EndUserFactory(properties={"name": "Secret Name"})
    queue(user, idempotency_key="sent", context={"plan": "secret-plan"})
    deliver(now)
    queue(user, idempotency_key="pending", scheduled_for=now + timedelta(days=1))
    erasure = erase_user(user, erased_by="test", now=now)
    assert erasure.counts["messages_scrubbed"] == 2 and erasure.counts["messages_cancelled"] == 1
    rows = list(Message.objects.values("status", "subject", "text", "html", "context", "idempotency_key"))
    assert sorted(r["status"] for r in rows) == ["cancelled", "sent"]
    assert all(r["subject"] == r["text"] == r["html"] == "" and r["context"] == {} for r in rows)
    assert all(r["idempotency_key"] is None for r in rows)


def test_retention_prunes_finished_messages_older_than_the_setting(now, settings):
    settings.PULSE_MESSAGE_RETENTION_DAYS = 30
    make_template(category="transactional")
    user = EndUserFactory()
    old = queue(user, idempotency_key="old", now=now - timedelta(days=31))
    recent = queue(user, idempotency_key="recent", now=now - timedelta(days=29))
    pending = queue(user, idempotency_key="pending", now=now - timedelta(days=31),
                    scheduled_for=now + timedelta(days=1))
    deliver(now)
    result = prune_messages(None, now)
    assert result.processed == 1
    assert set(Message.objects.values_list("pk", flat=True)) == {recent.message_id, pending.message_id}
    assert old.message_id not in set(Message.objects.values_list("pk", flat=True))


def test_seed_demo_adds_delivered_messages_and_reads_as_history_without_queueing_any(now):
    from engagement.demo import seed_demo
    from engagement.models import Signal

    seed_demo(users=20, days=3, seed=7, now=now)
    messages = Message.objects.all()
    assert messages.exists() and not messages.exclude(status="sent").exists()
    read = messages.filter(read_at__isnull=False).count()
    engages = Signal.objects.filter(name="$engage")
    assert read and engages.count() == read and not engages.filter(realtime=True).exists()
    seed_demo(users=20, days=3, seed=7, now=now)
    assert Message.objects.count() == messages.count()
