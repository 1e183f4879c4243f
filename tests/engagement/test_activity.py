"""`is_activity` and `activity_filter` are one rule: checked from one table on both databases."""

from datetime import timedelta

import pytest

from engagement.activity import activity_filter, is_activity
from engagement.handlers import record_last_seen
from engagement.models import EndUser, Signal
from engagement.pipeline import HandlerContext, process_signals
from tests.factories import EndUserFactory, SignalFactory

NON_ACTIVITY = ["sync.ping", "$screen"]
# (source, name, is activity with PULSE_NON_ACTIVITY_SIGNALS empty, ... with NON_ACTIVITY)
CASES = [
    ("api", "app.opened", True, True),
    ("segment", "Order Completed", True, True),
    ("import", "issue.viewed", True, True),
    ("system", "app.opened", False, False),  # the source decides before the name
    ("system", "$identify", False, False),
    ("system", "$lifecycle.changed", False, False),
    ("api", "$engage", False, False),  # a `$` name is Pulse's whatever the source
    ("segment", "$identify", False, False),
    ("segment", "$page", True, True),  # Segment page / screen calls: plainly the user
    ("segment", "$screen", True, False),
    ("import", "$page", True, True),
    ("api", "$PAGE", False, False),  # exact names only, whatever the collation
    ("api", "$pages", False, False),
    ("api", "$", False, False),
    ("api", " $page", True, True),  # not a `$` name (ingestion refuses it anyway)
    ("api", "sync.ping", True, False),
    ("api", "Sync.Ping", True, True),
    ("api", "sync.ping.extra", True, True),
    ("api", "", True, True),
    ("api", "%", True, True),  # LIKE wildcards are only characters here
    ("api", "_page", True, True),
    ("api", "\\$page", True, True),
    ("segment", "bücher.geöffnet", True, True),
    ("api", "x" * 200, True, True),
]


def _signals(user):
    return [SignalFactory(user=user, source=source, name=name) for source, name, *_ in CASES]


@pytest.mark.django_db
@pytest.mark.parametrize("configured", [False, True], ids=["no-list", "with-list"])
def test_python_and_sql_agree_on_what_is_activity(settings, configured):
    settings.PULSE_NON_ACTIVITY_SIGNALS = NON_ACTIVITY if configured else []
    signals = _signals(EndUserFactory())
    expected = {s.pk for s, case in zip(signals, CASES, strict=True) if case[3 if configured else 2]}
    stored = Signal.objects.filter(pk__in=[s.pk for s in signals])
    assert {s.pk for s in stored if is_activity(s)} == expected
    assert set(stored.filter(activity_filter()).values_list("pk", flat=True)) == expected
    assert set(stored.exclude(activity_filter()).values_list("pk", flat=True)) == (
        {s.pk for s in signals} - expected
    )


@pytest.mark.django_db
def test_last_seen_ignores_names_configured_as_not_activity(settings, now):
    settings.PULSE_NON_ACTIVITY_SIGNALS = ["sync.ping"]
    user = EndUserFactory(last_seen_at=None, first_seen_at=now)
    SignalFactory(user=user, name="sync.ping", occurred_at=now + timedelta(minutes=5))
    SignalFactory(user=user, name="$engage", source="api", occurred_at=now + timedelta(minutes=6))
    SignalFactory(user=user, name="$bucket.entered", source="system", occurred_at=now - timedelta(days=3))
    process_signals()
    user.refresh_from_db()
    assert (user.last_seen_at, user.first_seen_at) == (None, now)


@pytest.mark.django_db
def test_a_segment_page_view_moves_last_seen(now):
    user = EndUserFactory(last_seen_at=None)
    SignalFactory(user=user, name="$page", source="segment", occurred_at=now)
    process_signals()
    assert EndUser.objects.get(pk=user.pk).last_seen_at == now


@pytest.mark.django_db
def test_last_seen_takes_the_latest_activity_of_a_mixed_batch(now):
    user = EndUserFactory(last_seen_at=None)
    rows = [
        SignalFactory(user=user, name="app.opened", occurred_at=now - timedelta(hours=2), state="failed"),
        SignalFactory(user=user, name="$identify", source="system", occurred_at=now, state="failed"),
    ]
    record_last_seen(rows, HandlerContext(now=now))
    assert EndUser.objects.get(pk=user.pk).last_seen_at == now - timedelta(hours=2)
