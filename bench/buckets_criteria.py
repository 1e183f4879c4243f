"""Benchmark: `matching_users` counts and the preview against hand-written SQL (issue 12).

    DATABASE_URL=postgres://… REDIS_URL=… python -m bench.buckets_criteria [--users N] [--signals M]

Builds its own data set in the database DATABASE_URL names (which it empties
first): users, signals, memberships, and lifecycle and profile tables in the
documented shapes (the stand-ins the tests use, until those apps land), all
with `generate_series`. Then, for ten criteria of mixed shapes, it times in
the same run the count through `matching_users`, a hand-written SQL count of
the same meaning (the ceiling: within 1.5x of it) and the preview (goal: under
2 s), and checks that both counts agree. The specified scale is 1,000,000
users and 20,000,000 signals; a smaller run is reported as "not met".
"""

import argparse
import os
import statistics
import sys
import time

SPEC_USERS, SPEC_SIGNALS = 1_000_000, 20_000_000
RUNS = 3

SIGNALS_SQL = """
INSERT INTO engagement_signal (user_id, name, properties, context, occurred_at, received_at, source,
                               realtime, error)
SELECT 1 + mod(g::bigint * 7919, %(users)s),
       (ARRAY['app_opened', 'page_viewed', 'purchase', 'invite_sent', 'export'])[1 + mod(g, 5)],
       CASE WHEN mod(g, 5) = 2 THEN jsonb_build_object('amount', mod(g, 200), 'currency',
            (ARRAY['EUR', 'USD'])[1 + mod(g, 2)]) ELSE '{}'::jsonb END,
       '{}'::jsonb, %(now)s::timestamptz - mod(g * 31, 90 * 86400) * interval '1 second',
       %(now)s::timestamptz, 'api', false, ''
FROM generate_series(1, %(signals)s) AS g
"""

# (label, criteria, hand-written SQL counting the same users)
CASES = [
    ("windowed event", {"event": "purchase", "check": "exists", "within": "7d"},
     "SELECT count(*) FROM engagement_enduser u WHERE u.deleted_at IS NULL AND u.merged_into_id IS NULL "
     "AND EXISTS (SELECT 1 FROM engagement_signal s WHERE s.user_id = u.id AND s.name = 'purchase' "
     "AND s.occurred_at >= %(now)s - interval '7 days' AND s.occurred_at <= %(now)s)"),
    ("went dormant (absence)", {"all": [{"event": "app_opened", "check": "exists"},
                                        {"event": "app_opened", "check": "not_exists", "within": "30d"}]},
     "SELECT count(*) FROM engagement_enduser u WHERE u.deleted_at IS NULL AND u.merged_into_id IS NULL "
     "AND EXISTS (SELECT 1 FROM engagement_signal s WHERE s.user_id = u.id AND s.name = 'app_opened' "
     "AND s.occurred_at <= %(now)s) AND NOT EXISTS (SELECT 1 FROM engagement_signal s WHERE "
     "s.user_id = u.id AND s.name = 'app_opened' AND s.occurred_at >= %(now)s - interval '30 days' "
     "AND s.occurred_at <= %(now)s)"),
    ("count with where", {"event": "purchase", "check": "count", "op": "gte", "value": 2, "within": "30d",
                          "where": [{"property": "amount", "op": "gte", "value": 100}]},
     "SELECT count(*) FROM engagement_enduser u JOIN (SELECT user_id FROM engagement_signal WHERE "
     "name = 'purchase' AND occurred_at >= %(now)s - interval '30 days' AND occurred_at <= %(now)s "
     "AND jsonb_typeof(properties->'amount') = 'number' AND (properties->>'amount')::numeric >= 100 "
     "GROUP BY user_id HAVING count(*) >= 2) c ON c.user_id = u.id "
     "WHERE u.deleted_at IS NULL AND u.merged_into_id IS NULL"),
    ("property eq", {"property": "plan", "op": "eq", "value": "pro"},
     "SELECT count(*) FROM engagement_enduser WHERE deleted_at IS NULL AND merged_into_id IS NULL "
     "AND properties->>'plan' = 'pro' AND jsonb_typeof(properties->'plan') = 'string'"),
    ("property number range", {"all": [{"property": "cohort", "op": "gte", "value": 3},
                                       {"property": "cohort", "op": "lt", "value": 5}]},
     "SELECT count(*) FROM engagement_enduser WHERE deleted_at IS NULL AND merged_into_id IS NULL "
     "AND jsonb_typeof(properties->'cohort') = 'number' AND (properties->>'cohort')::numeric >= 3 "
     "AND (properties->>'cohort')::numeric < 5"),
    ("lifecycle states", {"lifecycle": ["dormant", "at_risk"]},
     "SELECT count(*) FROM engagement_enduser u WHERE u.deleted_at IS NULL AND u.merged_into_id IS NULL "
     "AND EXISTS (SELECT 1 FROM test_bucket_lifecycle_state l WHERE l.user_id = u.id "
     "AND l.state IN ('dormant', 'at_risk'))"),
    ("profile feature", {"profile": "sessions_7d", "op": "gte", "value": 10},
     "SELECT count(*) FROM engagement_enduser u WHERE u.deleted_at IS NULL AND u.merged_into_id IS NULL "
     "AND EXISTS (SELECT 1 FROM test_bucket_profile_feature_value p WHERE p.user_id = u.id "
     "AND p.name = 'sessions_7d' AND p.value >= 10)"),
    ("tenant and property", {"all": [{"tenant": "tenant-3"},
                                     {"property": "plan", "op": "neq", "value": "free"}]},
     "SELECT count(*) FROM engagement_enduser u WHERE u.deleted_at IS NULL AND u.merged_into_id IS NULL "
     "AND EXISTS (SELECT 1 FROM engagement_membership m JOIN engagement_tenant t ON t.id = m.tenant_id "
     "WHERE m.user_id = u.id AND t.key = 'tenant-3') AND NOT (jsonb_typeof(u.properties->'plan') = "
     "'string' AND u.properties->>'plan' = 'free') IS TRUE"),
    ("nested any/all/not", {"any": [
        {"all": [{"event": "export", "check": "exists", "within": "14d"},
                 {"not": {"property": "plan", "op": "eq", "value": "enterprise"}}]},
        {"event": "invite_sent", "check": "count", "op": "gte", "value": 3}]},
     "SELECT count(*) FROM engagement_enduser u WHERE u.deleted_at IS NULL AND u.merged_into_id IS NULL "
     "AND ((EXISTS (SELECT 1 FROM engagement_signal s WHERE s.user_id = u.id AND s.name = 'export' "
     "AND s.occurred_at >= %(now)s - interval '14 days' AND s.occurred_at <= %(now)s) "
     "AND (u.properties->>'plan' IS DISTINCT FROM 'enterprise')) OR u.id IN (SELECT user_id FROM "
     "engagement_signal WHERE name = 'invite_sent' AND occurred_at <= %(now)s GROUP BY user_id "
     "HAVING count(*) >= 3))"),
    ("dormant pro with low sessions", {"all": [{"lifecycle": "dormant"},
                                               {"property": "plan", "op": "eq", "value": "pro"},
                                               {"profile": "sessions_7d", "op": "lt", "value": 3}]},
     "SELECT count(*) FROM engagement_enduser u WHERE u.deleted_at IS NULL AND u.merged_into_id IS NULL "
     "AND u.properties->>'plan' = 'pro' AND jsonb_typeof(u.properties->'plan') = 'string' "
     "AND EXISTS (SELECT 1 FROM test_bucket_lifecycle_state l WHERE l.user_id = u.id "
     "AND l.state = 'dormant') "
     "AND EXISTS (SELECT 1 FROM test_bucket_profile_feature_value p WHERE p.user_id = u.id "
     "AND p.name = 'sessions_7d' AND p.value < 3)"),
]


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django
    from django.conf import settings

    django.setup()
    from tests.buckets import stand_ins

    settings.PULSE_BUCKET_SOURCES = {**stand_ins.SOURCES, "profile_refresh": f"{__name__}.no_refresh"}


def no_refresh(features, users, now):
    """Profiles are not in this deployment yet; the stored values count as fresh."""


def build(users: int, signals: int, now) -> None:
    from django.core.management import call_command
    from django.db import connection

    from bench.dataset import POPULATE_SQL
    from tests.buckets import stand_ins

    call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", interactive=False, verbosity=0)
    tables = {"tenant": "engagement_tenant", "user": "engagement_enduser",
              "membership": "engagement_membership"}
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS test_bucket_lifecycle_state, test_bucket_profile_feature_value")
    with connection.schema_editor() as editor:
        editor.create_model(stand_ins.LifecycleState)
        editor.create_model(stand_ins.ProfileFeatureValue)
    steps = [(statement.format(**tables), "users and tenants") for statement in POPULATE_SQL]
    steps += [
        (SIGNALS_SQL, "signals"),
        ("INSERT INTO test_bucket_lifecycle_state (user_id, state) SELECT id, (ARRAY['new', 'active', "
         "'at_risk', 'dormant', 'churned'])[1 + mod(id, 5)] FROM engagement_enduser", "lifecycle states"),
        ("INSERT INTO test_bucket_profile_feature_value (user_id, name, value, value_text, computed_at) "
         "SELECT id, 'sessions_7d', mod(id * 13, 30), NULL, %(now)s FROM engagement_enduser",
         "profile values"),
        ("CREATE INDEX ON test_bucket_lifecycle_state (state)", "indexes"),
        ("ANALYZE", "statistics"),
    ]
    params = {"now": now, "ref": now, "users": users, "tenants": 100, "signals": signals}
    for sql, label in steps:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        print(f"-->   {label}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def _median(fn) -> tuple[float, object]:
    times, result = [], None
    for _ in range(RUNS):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def measure(now) -> list[dict]:
    from django.db import connection

    from buckets.criteria import matching_users
    from buckets.preview import preview

    rows = []
    for label, criteria, sql in CASES:
        def hand(sql=sql):
            with connection.cursor() as cursor:
                cursor.execute(sql, {"now": now})
                return cursor.fetchone()[0]

        hand_s, hand_count = _median(hand)
        ours_s, ours_count = _median(lambda criteria=criteria: matching_users(criteria, now).count())
        preview_s, _ = _median(lambda criteria=criteria: preview(criteria, now=now))
        rows.append({"label": label, "count": ours_count, "agrees": ours_count == hand_count,
                     "hand_s": hand_s, "ours_s": ours_s, "ratio": ours_s / hand_s if hand_s else 0.0,
                     "preview_s": preview_s})
        print(f"-->   {label}: {ours_count:,} users", file=sys.stderr, flush=True)
    return rows


def report(rows: list[dict], users: int, signals: int) -> str:
    at_scale = users >= SPEC_USERS and signals >= SPEC_SIGNALS
    lines = [f"scale: {users:,} users, {signals:,} signals "
             f"(specified: {SPEC_USERS:,} users, {SPEC_SIGNALS:,} signals)",
             "ceiling: hand-written SQL of the same meaning, same run; goals: <= 1.5x it, preview < 2 s",
             "| criteria | users | hand SQL | matching_users | ratio | preview | verdict |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- |"]
    for row in rows:
        met = row["agrees"] and row["ratio"] <= 1.5 and row["preview_s"] < 2.0
        verdict = ("met" if met else "missed") if at_scale else ("not met at the specified scale"
                                                                  + ("" if met else " (and missed here)"))
        if not row["agrees"]:
            verdict = "COUNTS DISAGREE"
        lines.append(f"| {row['label']} | {row['count']:,} | {row['hand_s'] * 1000:.0f} ms | "
                     f"{row['ours_s'] * 1000:.0f} ms | {row['ratio']:.2f}x | "
                     f"{row['preview_s'] * 1000:.0f} ms | {verdict} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=SPEC_USERS)
    parser.add_argument("--signals", type=int, default=SPEC_SIGNALS)
    parser.add_argument("--reuse", action="store_true", help="measure the data already built")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not url.rsplit("/", 1)[-1].startswith("pulse_bench"):
        parser.error("set DATABASE_URL to a PostgreSQL database named pulse_bench_*: it is emptied")
    _setup()
    from datetime import UTC, datetime

    now = datetime(2026, 6, 1, tzinfo=UTC)
    if not args.reuse:
        build(args.users, args.signals, now)
    rows = measure(now)
    print(report(rows, args.users, args.signals))
    return 0 if all(row["agrees"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
