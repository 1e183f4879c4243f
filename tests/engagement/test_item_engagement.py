"""Item engagement: tracking in the drain, the score, the jobs, merge, erasure and the API."""

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from engagement.erase import erase_user
from engagement.identity import merge_users
from engagement.loops import items as items_module
from engagement.loops.item_jobs import cleanup_item_engagement, recompute_item_scores
from engagement.loops.item_queries import scored
from engagement.loops.items import item_keys, track_item_engagement
from engagement.loops.scoring import item_score
from engagement.models import ItemEngagement
from engagement.pipeline import HandlerContext, process_signals
from tests.factories import EndUserFactory, SignalFactory

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def _row(user, item):
    return ItemEngagement.objects.get(user=user, item=item)


def _drain():
    return process_signals(now=NOW)


# --- the score ----------------------------------------------------------------

SCORE_CASES = [
    # (interactions, days idle, expected)
    (1, 0, 0.4 * 0.2 + 0.6),
    (5, 0, 1.0),
    (10, 0, 1.0),
    (1, 7, 0.4 * 0.2 + 0.6 * math.exp(-0.35)),
    (3, 30, 0.4 * 0.6 + 0.6 * math.exp(-1.5)),
    (5, 40, (0.4 + 0.6 * math.exp(-2.0)) * 0.9 ** 10),
]


@pytest.mark.parametrize(("count", "days", "expected"), SCORE_CASES)
def test_the_score_follows_the_closed_form_at_several_ages(count, days, expected):
    assert item_score(count, NOW - timedelta(days=days), NOW) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(("count", "days", "expected"), SCORE_CASES)
def test_the_database_computes_the_same_score_as_python(count, days, expected):
    user = EndUserFactory()
    ItemEngagement.objects.create(
        user=user, item="AI-1", interactions=count, first_interaction_at=NOW - timedelta(days=days),
        last_interaction_at=NOW - timedelta(days=days), scored_at=NOW,
    )
    live = scored(ItemEngagement.objects.all(), NOW).get().live_score
    assert live == pytest.approx(expected, rel=1e-9)


def test_an_interaction_in_the_future_scores_as_if_it_were_now():
    assert item_score(1, NOW + timedelta(days=3), NOW) == item_score(1, NOW, NOW)


def test_a_decade_idle_scores_almost_nothing_without_a_database_error():
    user = EndUserFactory()
    long_ago = NOW - timedelta(days=20_000)
    ItemEngagement.objects.create(user=user, item="X-1", interactions=1, first_interaction_at=long_ago,
                                  last_interaction_at=long_ago, scored_at=NOW)
    assert scored(ItemEngagement.objects.all(), NOW).get().live_score < 1e-100


# --- tracking -------------------------------------------------------------------


def test_an_item_signal_counts_once_as_its_interaction_and_defaults_to_view():
    user = EndUserFactory()
    SignalFactory(user=user, name="issue.viewed", item="AI-1799", interaction="query", occurred_at=NOW)
    SignalFactory(user=user, name="issue.viewed", item="AI-1799", occurred_at=NOW - timedelta(hours=1))
    SignalFactory(user=user, name="issue.viewed", item="AI-1799", interaction="starred", occurred_at=NOW)
    _drain()
    row = _row(user, "AI-1799")
    assert row.interactions == 3
    assert row.by_type == {"query": 1, "view": 1, "starred": 1}
    assert row.first_interaction_at == NOW - timedelta(hours=1)
    assert row.last_interaction_at == NOW


def test_counts_per_type_add_up_across_batches():
    user = EndUserFactory()
    for interaction in ["view", "view", "query"]:
        SignalFactory(user=user, name="issue.viewed", item="AI-1", interaction=interaction, occurred_at=NOW)
        _drain()
    SignalFactory(user=user, name="issue.viewed", item="AI-1", interaction="mention",
                  occurred_at=NOW - timedelta(days=3))
    _drain()
    row = _row(user, "AI-1")
    assert row.interactions == 4
    assert row.by_type == {"view": 2, "query": 1, "mention": 1}
    assert row.first_interaction_at == NOW - timedelta(days=3)
    assert row.last_interaction_at == NOW
    assert row.score == pytest.approx(item_score(4, NOW, NOW))


def test_message_text_counts_each_distinct_key_once_as_a_mention():
    user = EndUserFactory()
    text = "What's the status of AI-1799 and DMD-480? Also AI-1799 again, and ai-12 is not a key."
    SignalFactory(user=user, name="message.received", properties={"text": text}, occurred_at=NOW)
    _drain()
    rows = {r.item: r for r in ItemEngagement.objects.filter(user=user)}
    assert set(rows) == {"AI-1799", "DMD-480"}
    assert rows["AI-1799"].by_type == {"mention": 1} and rows["AI-1799"].interactions == 1
    assert rows["DMD-480"].context == text[:200]


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("nothing to see here", []),
        ("", []),
        ("AB-1, CD-22, AB-1, EFGH-12345", ["AB-1", "CD-22", "EFGH-12345"]),
        ("lower-case ab-1 and digits only 12-34", []),
    ],
)
def test_item_keys_are_extracted_distinct_and_in_order(text, keys):
    assert item_keys(text) == keys


def test_a_pasted_wall_of_keys_is_capped():
    text = " ".join(f"K-{n}" for n in range(500))
    assert len(item_keys(text)) == items_module.MAX_KEYS_PER_TEXT


def test_the_key_pattern_and_text_signals_are_configurable(settings):
    settings.PULSE_ITEM_KEY_PATTERN = r"#\d+"
    settings.PULSE_ITEM_TEXT_SIGNALS = ["chat.sent"]
    user = EndUserFactory()
    SignalFactory(user=user, name="chat.sent", properties={"text": "see #12 and AI-1"}, occurred_at=NOW)
    SignalFactory(user=user, name="message.received", properties={"text": "#13"}, occurred_at=NOW)
    _drain()
    assert list(ItemEngagement.objects.values_list("item", flat=True)) == ["#12"]


def test_text_that_is_not_a_string_and_signals_without_items_track_nothing():
    user = EndUserFactory()
    SignalFactory(user=user, name="message.received", properties={"text": ["AI-1"]}, occurred_at=NOW)
    SignalFactory(user=user, name="message.received", properties={"text": {"x": "AI-1"}}, occurred_at=NOW)
    SignalFactory(user=user, name="app.opened", properties={"text": "AI-1"}, occurred_at=NOW)
    _drain()
    assert not ItemEngagement.objects.exists()


def test_pulse_own_signals_are_not_interactions():
    user = EndUserFactory()
    SignalFactory(user=user, name="$engage", source="system", item="AI-1", occurred_at=NOW)
    _drain()
    assert not ItemEngagement.objects.exists()


def test_context_keeps_the_latest_interactions_text_cut_to_200_characters():
    user = EndUserFactory()
    long_text = "AI-1 " + "x" * 400
    SignalFactory(user=user, name="message.received", properties={"text": "old AI-1"},
                  occurred_at=NOW - timedelta(days=1))
    SignalFactory(user=user, name="message.received", properties={"text": long_text}, occurred_at=NOW)
    _drain()
    SignalFactory(user=user, name="message.received", properties={"text": "older AI-1"},
                  occurred_at=NOW - timedelta(days=2))
    _drain()
    assert _row(user, "AI-1").context == long_text[:200]


def test_a_tracking_error_is_contained_and_the_drain_goes_on(monkeypatch, caplog):
    user = EndUserFactory(last_seen_at=None)

    def broken(tallies, now):
        ItemEngagement.objects.create(user=user, item="half-written", first_interaction_at=NOW,
                                      last_interaction_at=NOW, scored_at=NOW)
        raise RuntimeError("boom with AI-1 and user@example.com")

    monkeypatch.setattr(items_module, "upsert_tallies", broken)
    SignalFactory(user=user, name="issue.viewed", item="AI-1", occurred_at=NOW)
    result = _drain()
    assert (result.processed, result.failed) == (1, 0)
    assert not ItemEngagement.objects.exists()  # the savepoint rolled the half-write back
    user.refresh_from_db()
    assert user.last_seen_at == NOW  # the other handlers' work is kept
    assert "event=item_tracking_failed" in caplog.text
    assert "user@example.com" not in caplog.text and "AI-1" not in caplog.text


def test_a_replay_of_processed_signals_does_not_count_them_twice():
    user = EndUserFactory()
    signal = SignalFactory(user=user, name="issue.viewed", item="AI-1", occurred_at=NOW)
    _drain()
    signal.refresh_from_db()
    track_item_engagement([signal], HandlerContext(now=NOW, replay=True))
    assert _row(user, "AI-1").interactions == 1


def test_a_replay_of_a_failed_signal_counts_it():
    user = EndUserFactory()
    signal = SignalFactory(user=user, name="issue.viewed", item="AI-1", occurred_at=NOW, state="failed")
    signal.refresh_from_db()
    track_item_engagement([signal], HandlerContext(now=NOW, replay=True))
    assert _row(user, "AI-1").interactions == 1


@pytest.mark.parametrize("size", [10, 300])
def test_the_handler_runs_a_fixed_number_of_queries_whatever_the_batch(size, django_assert_max_num_queries):
    users = [EndUserFactory() for _ in range(3)]
    signals = [
        SignalFactory.build(user=users[n % 3], name="issue.viewed", item=f"AI-{n % 50}", occurred_at=NOW,
                            interaction=["view", "query"][n % 2])
        for n in range(size)
    ] + [
        SignalFactory.build(user=users[0], name="message.received", occurred_at=NOW,
                            properties={"text": f"AB-{n} and CD-{n}"})
        for n in range(size // 10)
    ]
    with django_assert_max_num_queries(3):  # savepoint, upsert, release
        track_item_engagement(signals, HandlerContext(now=NOW))
    assert sum(ItemEngagement.objects.values_list("interactions", flat=True)) == size + 2 * (size // 10)


# --- jobs -------------------------------------------------------------------------


def _stored(user, item, count, last, score=0.5):
    return ItemEngagement.objects.create(
        user=user, item=item, interactions=count, first_interaction_at=last, last_interaction_at=last,
        score=score, scored_at=last,
    )


def test_the_daily_job_stores_every_score_as_of_its_now_and_twice_is_the_same():
    user = EndUserFactory()
    for days in (0, 7, 30, 40):
        _stored(user, f"AI-{days}", 2, NOW - timedelta(days=days), score=99)
    result = recompute_item_scores(None, NOW)
    assert result.processed == 4
    first = dict(ItemEngagement.objects.values_list("item", "score"))
    for days in (0, 7, 30, 40):
        assert first[f"AI-{days}"] == pytest.approx(item_score(2, NOW - timedelta(days=days), NOW))
    recompute_item_scores(None, NOW)
    assert dict(ItemEngagement.objects.values_list("item", "score")) == first


def test_the_daily_job_chunks_without_missing_rows(monkeypatch):
    monkeypatch.setattr("engagement.loops.item_jobs.CHUNK_IDS", 2)
    user = EndUserFactory()
    for n in range(7):
        _stored(user, f"AI-{n}", 1, NOW, score=99)
    assert recompute_item_scores(None, NOW).processed == 7
    assert not ItemEngagement.objects.filter(score=99).exists()


def test_the_weekly_cleanup_deletes_only_long_idle_negligible_rows():
    user = EndUserFactory()
    _stored(user, "idle-91", 1, NOW - timedelta(days=91))
    _stored(user, "idle-89", 1, NOW - timedelta(days=89))
    _stored(user, "fresh", 50, NOW)
    assert cleanup_item_engagement(None, NOW).processed == 1
    assert set(ItemEngagement.objects.values_list("item", flat=True)) == {"idle-89", "fresh"}


def test_the_cleanup_keeps_an_idle_row_whose_score_is_still_not_negligible(monkeypatch):
    monkeypatch.setattr("engagement.loops.item_jobs.NEGLIGIBLE_SCORE", 1e-9)
    user = EndUserFactory()
    _stored(user, "idle-91", 5, NOW - timedelta(days=91))
    assert cleanup_item_engagement(None, NOW).processed == 0


# --- merge and erasure ----------------------------------------------------------------


def test_a_merge_sums_counts_and_keeps_the_earliest_first_and_the_latest_last():
    survivor = EndUserFactory(first_seen_at=NOW - timedelta(days=10))
    loser = EndUserFactory(external_id=None, first_seen_at=NOW)
    ItemEngagement.objects.create(user=survivor, item="AI-1", interactions=2, by_type={"view": 2},
                                  first_interaction_at=NOW - timedelta(days=5),
                                  last_interaction_at=NOW - timedelta(days=2), context="mine", scored_at=NOW)
    ItemEngagement.objects.create(user=loser, item="AI-1", interactions=3, by_type={"view": 1, "query": 2},
                                  first_interaction_at=NOW - timedelta(days=9),
                                  last_interaction_at=NOW - timedelta(days=1), context="theirs",
                                  scored_at=NOW)
    ItemEngagement.objects.create(user=loser, item="AI-2", interactions=1, by_type={"mention": 1},
                                  first_interaction_at=NOW, last_interaction_at=NOW, scored_at=NOW)
    merge_users([survivor, loser], now=NOW)
    rows = {r.item: r for r in ItemEngagement.objects.all()}
    assert set(rows) == {"AI-1", "AI-2"} and {r.user_id for r in rows.values()} == {survivor.pk}
    assert rows["AI-1"].interactions == 5
    assert rows["AI-1"].by_type == {"view": 3, "query": 2}
    assert rows["AI-1"].first_interaction_at == NOW - timedelta(days=9)
    assert rows["AI-1"].last_interaction_at == NOW - timedelta(days=1)
    assert rows["AI-1"].context == "theirs"
    assert rows["AI-2"].by_type == {"mention": 1}


def test_erasing_a_user_removes_their_item_engagement():
    user = EndUserFactory()
    other = EndUserFactory()
    _stored(user, "AI-1", 1, NOW)
    _stored(other, "AI-1", 1, NOW)
    erasure = erase_user(user, erased_by="staff:test", now=NOW)
    assert erasure.counts["item_engagements_removed"] == 1
    assert list(ItemEngagement.objects.values_list("user_id", flat=True)) == [other.pk]


# --- the API --------------------------------------------------------------------------


@pytest.fixture
def engaged(now):
    user = EndUserFactory(external_id="u1")
    _stored(user, "HOT-1", 6, now - timedelta(hours=1))
    ItemEngagement.objects.filter(item="HOT-1").update(by_type={"view": 4, "query": 2}, context="hot")
    _stored(user, "WARM-1", 2, now - timedelta(days=3))
    _stored(user, "OLD-1", 9, now - timedelta(days=60))
    return user


def test_engagement_lists_items_by_their_score_now_with_stats(api_as, engaged, now):
    body = api_as("read").get_json("/api/v1/users/ext:u1/engagement").json()
    assert [i["item"] for i in body["items"]] == ["HOT-1", "WARM-1", "OLD-1"]
    hot = body["items"][0]
    assert hot["interactions"] == 6 and hot["by_type"] == {"view": 4, "query": 2} and hot["context"] == "hot"
    assert hot["score"] == round(item_score(6, now - timedelta(hours=1), now), 4)
    assert set(hot) == {"item", "score", "interactions", "by_type", "first_interaction_at",
                        "last_interaction_at", "context"}
    assert body["stats"] == {
        "total_interactions": 17, "unique_items": 3, "avg_interactions_per_item": 5.67,
        "most_engaged_items": ["HOT-1", "WARM-1", "OLD-1"],
        "last_interaction_at": (now - timedelta(hours=1)).isoformat(),
    }


def test_the_score_in_answers_does_not_wait_for_the_daily_job(api_as, engaged, now):
    ItemEngagement.objects.update(score=0.0)
    body = api_as("read").get_json("/api/v1/users/ext:u1/engagement").json()
    assert body["items"][0]["score"] > 0.9


def test_engagement_honours_limit_and_stats_still_cover_everything(api_as, engaged):
    body = api_as("read").get_json("/api/v1/users/ext:u1/engagement?limit=1").json()
    assert [i["item"] for i in body["items"]] == ["HOT-1"]
    assert body["stats"]["most_engaged_items"] == ["HOT-1", "WARM-1", "OLD-1"]
    assert body["stats"]["unique_items"] == 3


def test_a_user_without_engagement_gets_empty_lists(api_as):
    EndUserFactory(external_id="quiet")
    body = api_as("read").get_json("/api/v1/users/ext:quiet/engagement").json()
    assert body == {"items": [], "stats": {"total_interactions": 0, "unique_items": 0,
                                           "avg_interactions_per_item": 0.0, "most_engaged_items": [],
                                           "last_interaction_at": None}}


@pytest.mark.parametrize("limit", ["0", "101", "-1", "ten", "1.5", "", "٣"])
def test_a_bad_limit_is_a_400(api_as, engaged, limit):
    response = api_as("read").get_json(f"/api/v1/users/ext:u1/engagement?limit={limit}")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"


def test_an_unknown_user_is_a_404_on_both_routes(api_as):
    client = api_as("read")
    assert client.get_json("/api/v1/users/ext:nobody/engagement").status_code == 404
    assert client.post_json("/api/v1/users/ext:nobody/rank", {"items": ["A"]}).status_code == 404


def test_rank_puts_known_items_by_score_then_unknown_ones_in_input_order(api_as, engaged):
    response = api_as("read").post_json(
        "/api/v1/users/ext:u1/rank", {"items": ["NEW-2", "OLD-1", "NEW-1", "HOT-1", "WARM-1", "NEW-2"]}
    )
    assert response.status_code == 200
    assert response.json() == {"items": ["HOT-1", "WARM-1", "OLD-1", "NEW-2", "NEW-1"]}


def test_rank_of_nothing_is_nothing(api_as, engaged):
    assert api_as("read").post_json("/api/v1/users/ext:u1/rank", {"items": []}).json() == {"items": []}


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"items": "HOT-1"},
        {"items": [1, 2]},
        {"items": [""]},
        {"items": ["x" * 256]},
        {"items": ["A"], "extra": True},
        {"items": [f"I-{n}" for n in range(1001)]},
        [],
        "null",
        "{not json",
    ],
)
def test_rank_refuses_a_malformed_body_with_a_400(api_as, engaged, body):
    raw = body if isinstance(body, str) else json.dumps(body)
    response = api_as("read").post_json("/api/v1/users/ext:u1/rank", raw)
    assert response.status_code == 400, response.content


def test_rank_takes_a_thousand_items(api_as, engaged):
    items = [f"I-{n}" for n in range(999)] + ["HOT-1"]
    body = api_as("read").post_json("/api/v1/users/ext:u1/rank", {"items": items}).json()
    assert body["items"][0] == "HOT-1" and body["items"][1:] == items[:-1]


@pytest.mark.parametrize("scopes, status", [("ingest", 403), ("send", 403), ("read", 200), ("admin", 200)])
def test_engagement_routes_need_the_read_scope(api_as, engaged, scopes, status):
    client = api_as(scopes)
    assert client.get_json("/api/v1/users/ext:u1/engagement").status_code == status
    assert client.post_json("/api/v1/users/ext:u1/rank", {"items": ["A"]}).status_code == status


def test_engagement_answers_in_a_fixed_number_of_queries(api_as, engaged, django_assert_max_num_queries):
    client = api_as("read")
    client.get_json("/api/v1/users/ext:u1/engagement")  # warm the key cache
    with django_assert_max_num_queries(6):
        client.get_json("/api/v1/users/ext:u1/engagement?limit=2")


def test_the_admin_user_page_shows_item_engagement(admin_client, engaged):
    response = admin_client.get(f"/admin/engagement/enduser/{engaged.pk}/change/")
    assert response.status_code == 200
    page = response.content.decode()
    assert "Item engagement" in page and "HOT-1" in page and "query: 2" in page


def test_sqlite_and_postgresql_both_merge_by_type_inside_the_upsert():
    """The same table of cases on both databases (make test runs both legs)."""
    user = EndUserFactory()
    cases = [({"view": 1}, {"view": 1}), ({"query": 2}, {"view": 1, "query": 2}),
             ({"weird name é": 1}, {"view": 1, "query": 2, "weird name é": 1})]
    for added, expected in cases:
        tally = items_module.Tally()
        for name, count in added.items():
            for _ in range(count):
                tally.add(name, NOW, None)
        items_module.upsert_tallies({(user.pk, "AI-1"): tally}, NOW)
        assert _row(user, "AI-1").by_type == expected, connection.vendor
