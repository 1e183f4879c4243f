"""Benchmark: profile reads, the full rebuild and the staleness panel (issue 11).

    DATABASE_URL=postgres://…/pulse_bench_profiles REDIS_URL=… python -m bench.profiles \
        [--users N] [--signals M] [--reuse] [--ceiling-runs K]

Builds its own data in the database DATABASE_URL names (emptied first), all with
`generate_series`: users as in the shared dataset (four time zones), signals over
the 40 days before `now` — a third of them `tip.served` / `tip.feedback` with an
action and a dwell — and three item engagement rows per user. Then it times:

- `get_profile` fully fresh and fully stale for one user (p50 / p99 over many users);
- `rebuild` of every live user (goal: under 60 s), next to its ceiling: the same
  aggregates (tip counts, rates, mean dwell, signals and active local days) as one raw
  `INSERT … SELECT … GROUP BY` into a scratch table;
- the staleness panel's queries (goal: under 1 s).

The specified scale is 100,000 users and 10,000,000 signals; a smaller run is
reported as "not met". Building 10,000,000 signals takes minutes: `--reuse` measures
the data a previous run built (migrating it and emptying the stored profile values
first, so every run rebuilds into the same empty table); give it the `--users` /
`--signals` that run used, for the verdicts. Besides wall time it reports the CPU
time of the PostgreSQL backend doing the work (from /proc), since the machine is shared.
"""

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta

from bench.report import connection_backend_cpu

SPEC_USERS, SPEC_SIGNALS = 100_000, 10_000_000
READS = 200

SIGNALS_SQL = """
INSERT INTO engagement_signal (user_id, name, properties, context, occurred_at, received_at, source,
                               realtime, error)
SELECT u0 + 1 + mod(g::bigint * 7919, %(users)s),
       (ARRAY['tip.served', 'tip.feedback', 'app.opened', 'page.viewed', 'item.viewed', 'tip.served'])
           [1 + mod(g, 6)],
       CASE WHEN mod(g, 6) = 1 THEN jsonb_build_object(
                'action', (ARRAY['completed', 'dismissed', 'snoozed'])[1 + mod(g / 6, 3)],
                'dwell_ms', mod(g * 37, 20000))
            ELSE '{}'::jsonb END,
       '{}'::jsonb, %(now)s::timestamptz - mod(g * 31, 40 * 86400) * interval '1 second',
       %(now)s::timestamptz, 'api', false, ''
FROM generate_series(1, %(signals)s) AS g, (SELECT min(id) - 1 AS u0 FROM engagement_enduser) AS base
"""
ITEMS_SQL = """
INSERT INTO engagement_itemengagement (user_id, item, interactions, by_type, first_interaction_at,
                                       last_interaction_at, context, score, scored_at)
SELECT u.id, 'ITEM-' || (mod(u.id * 3 + k, 500)), 1 + mod(u.id + k, 9), '{}'::jsonb,
       %(now)s::timestamptz - interval '60 days',
       %(now)s::timestamptz - mod(u.id * k, 50) * interval '1 day', '', 0, %(now)s::timestamptz
FROM engagement_enduser u, generate_series(1, 3) AS k
"""
# The ceiling: the same windowed aggregates in one statement, grouped in SQL, written in SQL.
CEILING_SQL = """
CREATE TEMP TABLE IF NOT EXISTS ceiling (user_id bigint, tip_volume bigint, completion float8,
    dismiss float8, dwell float8, signals bigint, active_days bigint);
TRUNCATE ceiling;
INSERT INTO ceiling
SELECT s.user_id,
       count(*) FILTER (WHERE s.name = 'tip.served'),
       (count(*) FILTER (WHERE s.name = 'tip.feedback' AND s.properties->>'action' = 'completed'))::float8
           / NULLIF(count(*) FILTER (WHERE s.name = 'tip.feedback'), 0),
       (count(*) FILTER (WHERE s.name = 'tip.feedback' AND s.properties->>'action' = 'dismissed'))::float8
           / NULLIF(count(*) FILTER (WHERE s.name = 'tip.feedback'), 0),
       avg((s.properties->>'dwell_ms')::float8) FILTER (WHERE s.name = 'tip.feedback'
           AND jsonb_typeof(s.properties->'dwell_ms') = 'number'),
       count(*) FILTER (WHERE s.source <> 'system'),
       count(DISTINCT (s.occurred_at AT TIME ZONE COALESCE(NULLIF(u.timezone, ''), 'UTC'))::date)
FROM engagement_signal s JOIN engagement_enduser u ON u.id = s.user_id
WHERE s.occurred_at >= %(since)s AND s.occurred_at <= %(now)s AND u.deleted_at IS NULL
GROUP BY s.user_id;
"""


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def log(message: str) -> None:
    print(f"--> {message}", file=sys.stderr, flush=True)


def build(users: int, signals: int, now) -> None:
    from django.core.management import call_command
    from django.db import connection

    from bench.dataset import POPULATE_SQL

    call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", interactive=False, verbosity=0)
    tables = {"tenant": "engagement_tenant", "user": "engagement_enduser",
              "membership": "engagement_membership"}
    steps = [(statement.format(**tables), "users and tenants") for statement in POPULATE_SQL]
    steps += [
        # Seen within the last 30 days, so every user is eligible for the staleness panel.
        ("UPDATE engagement_enduser SET last_seen_at = %(now)s::timestamptz - mod(id, 29) * interval '1 day'",
         "last seen"),
        (SIGNALS_SQL, "signals"), (ITEMS_SQL, "item engagement"), ("VACUUM ANALYZE", "statistics"),
    ]
    params = {"now": now, "ref": now, "users": users, "tenants": 100, "signals": signals}
    from engagement.models import Signal

    indexes = Signal._meta.indexes
    with connection.schema_editor() as editor:  # the log's indexes are built after the bulk insert
        for index in indexes:
            editor.remove_index(Signal, index)
    for sql, label in steps:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        log(f"  {label}: {time.perf_counter() - started:.1f} s")
        if label == "signals":
            started = time.perf_counter()
            with connection.schema_editor() as editor:
                for index in indexes:
                    editor.add_index(Signal, index)
            log(f"  signal indexes: {time.perf_counter() - started:.1f} s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def timed_with_cpu(fn) -> tuple[float, float, float]:
    """(wall seconds, database backend CPU seconds, this process's CPU seconds)."""
    db, own = connection_backend_cpu(), time.process_time()
    wall = timed(fn)
    return wall, connection_backend_cpu() - db, time.process_time() - own


def prepare_reuse() -> None:
    """Bring a reused database to this code's schema and empty the stored values."""
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE profiles_profilefeaturevalue")
        cursor.execute("SELECT count(*) FROM engagement_enduser")
        users = cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM engagement_signal")
        signals = cursor.fetchone()[0]
    log(f"reusing {users:,} users and {signals:,} signals")


def measure(now, reads: int, ceiling_runs: int = 3) -> dict:
    from django.db import connection

    from engagement.models import EndUser
    from profiles.reads import get_profile
    from profiles.refresh import rebuild
    from profiles.staleness import staleness

    figures = {}
    live = EndUser.objects.filter(deleted_at__isnull=True)
    log("rebuilding every live user")
    result = None

    def run_rebuild():
        nonlocal result
        result = rebuild(live, now)

    wall, db_cpu, py_cpu = timed_with_cpu(run_rebuild)
    figures.update(rebuild_s=wall, rebuild_db_cpu_s=db_cpu, rebuild_py_cpu_s=py_cpu)
    figures["rebuild_values"] = result.written
    figures["rebuild_refused"], figures["rebuild_failed"] = result.refused, result.failed_groups
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE profiles_profilefeaturevalue")
    log("the ceiling (one INSERT … SELECT … GROUP BY)")

    def ceiling():
        with connection.cursor() as cursor:
            for statement in CEILING_SQL.strip().split(";\n"):
                if statement.strip():
                    cursor.execute(statement, {"now": now, "since": now - timedelta(days=30)})

    runs = [timed_with_cpu(ceiling) for _ in range(ceiling_runs)]
    figures["ceiling_s"] = statistics.median(r[0] for r in runs)
    figures["ceiling_db_cpu_s"] = statistics.median(r[1] for r in runs)
    figures["ceiling_runs"] = ceiling_runs
    ids = list(live.values_list("pk", flat=True))
    sample = random.Random(11).sample(ids, min(reads, len(ids)))
    users = list(EndUser.objects.filter(pk__in=sample))
    log("get_profile, fully fresh")
    figures["fresh"] = [timed(lambda u=u: get_profile(u, now + timedelta(minutes=1))) for u in users]
    log("get_profile, fully stale")
    later = now + timedelta(hours=2)  # every value expired, none written yet at this moment
    figures["stale"] = [timed(lambda u=u: get_profile(u, later)) for u in users]
    log("staleness panel")
    figures["staleness_s"] = statistics.median(timed(lambda: staleness(now + timedelta(minutes=30)))
                                               for _ in range(5))
    figures["load_end"] = os.getloadavg()
    return figures


def report(f: dict, users: int, signals: int) -> str:
    at_scale = users >= SPEC_USERS and signals >= SPEC_SIGNALS

    def verdict(ok: bool) -> str:
        if not at_scale:
            return "not met at the specified scale" + ("" if ok else " (and missed here)")
        return "met" if ok else "missed"

    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    lines = [
        f"scale: {users:,} users, {signals:,} signals (specified: {SPEC_USERS:,} users, "
        f"{SPEC_SIGNALS:,} signals)",
        "| measure | figure | ceiling / goal | verdict |",
        "| --- | ---: | --- | --- |",
        f"| get_profile fully fresh, p50 / p99 | {ms(percentile(f['fresh'], 50))} / "
        f"{ms(percentile(f['fresh'], 99))} | one query | — |",
        f"| get_profile fully stale, p50 / p99 | {ms(percentile(f['stale'], 50))} / "
        f"{ms(percentile(f['stale'], 99))} | — | — |",
        f"| rebuild every user ({f['rebuild_values']:,} values written, {f['rebuild_refused']:,} refused) "
        f"| {f['rebuild_s']:.1f} s (database CPU {f['rebuild_db_cpu_s']:.1f} s, Python CPU "
        f"{f['rebuild_py_cpu_s']:.1f} s) | ceiling {f['ceiling_s']:.1f} s (database CPU "
        f"{f['ceiling_db_cpu_s']:.1f} s, median of {f['ceiling_runs']}); goal < 60 s | "
        f"{verdict(f['rebuild_s'] < 60)} |",
        f"| staleness panel queries (median of 5) | {ms(f['staleness_s'])} | goal < 1 s | "
        f"{verdict(f['staleness_s'] < 1)} |",
        "",
        "load average at the end: {:.2f} {:.2f} {:.2f}".format(*f["load_end"]),
    ]
    if f["rebuild_failed"]:
        lines.append(f"feature groups that failed: {', '.join(f['rebuild_failed'])}")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=SPEC_USERS)
    parser.add_argument("--signals", type=int, default=SPEC_SIGNALS)
    parser.add_argument("--reads", type=int, default=READS, help="users sampled for get_profile")
    parser.add_argument("--reuse", action="store_true",
                        help="measure the data a previous run built (migrated, stored values emptied)")
    parser.add_argument("--ceiling-runs", type=int, default=3, help="runs of the ceiling (median)")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not url.rsplit("/", 1)[-1].startswith("pulse_bench"):
        parser.error("set DATABASE_URL to a PostgreSQL database named pulse_bench_*: it is emptied")
    _setup()
    now = datetime(2026, 6, 1, tzinfo=UTC)
    if args.reuse:
        prepare_reuse()
    else:
        build(args.users, args.signals, now)
    from bench.report import machine, table

    print(table(machine(), "machine"))
    print(report(measure(now, args.reads, args.ceiling_runs), args.users, args.signals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
