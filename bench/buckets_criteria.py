"""Benchmark: `matching_users` counts and the preview against hand-written SQL (issue 12).

    DATABASE_URL=postgres://…/pulse_bench_… REDIS_URL=… python -m bench.buckets_criteria \
        [--users N] [--signals M] [--build-only | --reuse] [--runs 3] [--timeout 300] [--only LABEL]

Builds its own data set in the database DATABASE_URL names (which it empties
first): users, tenants and memberships as in the shared dataset, signals, and
rows of the real lifecycle-state and profile-value tables, all with
`generate_series` (see `build` for how the load stays fast). `--build-only`
stops there; `--reuse` measures a database already built. Then, for ten
criteria of mixed shapes, it times in the same run the count through
`matching_users`, a hand-written SQL count of the same meaning (the ceiling:
within 1.5x of it) and the preview (goal: under 2 s), checks that the three
counts agree, and prints each row as soon as it is measured, with the
PostgreSQL server's and the client's CPU time per run. Event cases that the
signal tally can answer also time a hand-written query on the tally (extra
columns), next to the log reference, which stays as written without it. The specified scale is
1,000,000 users and 20,000,000 signals; a smaller run is reported as "not met".
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
-- In time order, as a log is appended: the rows and their values are the same whatever the
-- order, but the physical order (and so the occurred_at index's correlation) is a deployment's.
FROM (SELECT g FROM generate_series(1, %(signals)s) AS g ORDER BY mod(g * 31, 90 * 86400) DESC, g) AS g
"""

# (label, criteria, hand-written SQL counting the same users). The references are what an
# engineer would write by hand for each question: EXISTS / NOT EXISTS on the
# (user, name, occurred_at) index, a join for one-row-per-user tables, GROUP BY … HAVING for
# counts, jsonb equality for property values. They are the ceiling, not a straw man.
LIVE = "u.deleted_at IS NULL AND u.merged_into_id IS NULL"
WINDOW = "s.occurred_at >= %(now)s - interval '{}' AND s.occurred_at <= %(now)s"
CASES = [
    ("windowed event", {"event": "purchase", "check": "exists", "within": "7d"},
     f"SELECT count(*) FROM engagement_enduser u WHERE {LIVE} AND EXISTS (SELECT 1 FROM "
     f"engagement_signal s WHERE s.user_id = u.id AND s.name = 'purchase' AND {WINDOW.format('7 days')})"),
    ("went dormant (absence)", {"all": [{"event": "app_opened", "check": "exists"},
                                        {"event": "app_opened", "check": "not_exists", "within": "30d"}]},
     f"SELECT count(*) FROM engagement_enduser u WHERE {LIVE} AND EXISTS (SELECT 1 FROM engagement_signal s "
     "WHERE s.user_id = u.id AND s.name = 'app_opened' AND s.occurred_at <= %(now)s) AND NOT EXISTS "
     "(SELECT 1 FROM engagement_signal s WHERE s.user_id = u.id AND s.name = 'app_opened' "
     f"AND {WINDOW.format('30 days')})"),
    ("count with where", {"event": "purchase", "check": "count", "op": "gte", "value": 2, "within": "30d",
                          "where": [{"property": "amount", "op": "gte", "value": 100}]},
     "SELECT count(*) FROM engagement_enduser u JOIN (SELECT s.user_id FROM engagement_signal s "
     f"WHERE s.name = 'purchase' AND {WINDOW.format('30 days')} "
     "AND jsonb_typeof(s.properties -> 'amount') = 'number' AND (s.properties -> 'amount') >= '100'::jsonb "
     f"GROUP BY s.user_id HAVING count(*) >= 2) c ON c.user_id = u.id WHERE {LIVE}"),
    ("property eq", {"property": "plan", "op": "eq", "value": "pro"},
     f"SELECT count(*) FROM engagement_enduser u WHERE {LIVE} AND u.properties -> 'plan' = '\"pro\"'::jsonb"),
    ("property number range", {"all": [{"property": "cohort", "op": "gte", "value": 3},
                                       {"property": "cohort", "op": "lt", "value": 5}]},
     f"SELECT count(*) FROM engagement_enduser u WHERE {LIVE} "
     "AND jsonb_typeof(u.properties -> 'cohort') = 'number' "
     "AND (u.properties -> 'cohort') >= '3'::jsonb AND (u.properties -> 'cohort') < '5'::jsonb"),
    ("lifecycle states", {"lifecycle": ["dormant", "remind_later"]},
     "SELECT count(*) FROM engagement_enduser u JOIN engagement_lifecyclestate l ON l.user_id = u.id "
     f"WHERE {LIVE} AND l.state IN ('dormant', 'remind_later')"),
    ("profile feature", {"profile": "sessions_7d", "op": "gte", "value": 10},
     "SELECT count(*) FROM engagement_enduser u JOIN profiles_profilefeaturevalue p ON p.user_id = u.id "
     f"AND p.name = 'sessions_7d' WHERE {LIVE} AND p.value >= 10"),
    ("tenant and property", {"all": [{"tenant": "tenant-3"},
                                     {"property": "plan", "op": "neq", "value": "free"}]},
     f"SELECT count(*) FROM engagement_enduser u WHERE {LIVE} AND EXISTS (SELECT 1 FROM "
     "engagement_membership m JOIN engagement_tenant t ON t.id = m.tenant_id "
     "WHERE m.user_id = u.id AND t.key = 'tenant-3') "
     "AND u.properties -> 'plan' IS DISTINCT FROM '\"free\"'::jsonb"),
    ("nested any/all/not", {"any": [
        {"all": [{"event": "export", "check": "exists", "within": "14d"},
                 {"not": {"property": "plan", "op": "eq", "value": "enterprise"}}]},
        {"event": "invite_sent", "check": "count", "op": "gte", "value": 3}]},
     # The two user sets, each found the cheap way, then unioned.
     "SELECT count(*) FROM (SELECT s.user_id FROM engagement_signal s JOIN engagement_enduser u "
     f"ON u.id = s.user_id WHERE s.name = 'export' AND {WINDOW.format('14 days')} AND {LIVE} "
     "AND u.properties -> 'plan' IS DISTINCT FROM '\"enterprise\"'::jsonb "
     "UNION SELECT c.user_id FROM (SELECT s.user_id FROM engagement_signal s WHERE s.name = 'invite_sent' "
     "AND s.occurred_at <= %(now)s GROUP BY s.user_id HAVING count(*) >= 3) c "
     f"JOIN engagement_enduser u ON u.id = c.user_id WHERE {LIVE}) matched"),
    ("dormant pro with low sessions", {"all": [{"lifecycle": "dormant"},
                                               {"property": "plan", "op": "eq", "value": "pro"},
                                               {"profile": "sessions_7d", "op": "lt", "value": 3}]},
     "SELECT count(*) FROM engagement_enduser u JOIN engagement_lifecyclestate l ON l.user_id = u.id "
     "JOIN profiles_profilefeaturevalue p ON p.user_id = u.id AND p.name = 'sessions_7d' "
     f"WHERE {LIVE} AND l.state = 'dormant' AND u.properties -> 'plan' = '\"pro\"'::jsonb AND p.value < 3"),
]


# Hand-written queries on the signal tally (engagement_signaltally: per user and name, first_at,
# last_at, total), next to the event cases that have one (`where` needs the log), as an engineer
# who knows the tally would write them. They keep the same meaning as the log references: a
# tally row whose last signal is after now (future-dated signals, a `now` in the past) reads the
# log for that user, as the compiler does; in this data set no row takes that branch.
def _tally_window(days: int) -> str:
    since = f"%(now)s - interval '{days} days'"
    return (f"t.last_at >= {since} AND (t.last_at <= %(now)s OR (t.first_at <= %(now)s AND "
            f"(t.first_at >= {since} OR EXISTS (SELECT 1 FROM engagement_signal s "
            f"WHERE s.user_id = t.user_id AND s.name = t.name AND s.occurred_at >= {since} "
            "AND s.occurred_at <= %(now)s))))")


TALLY_COUNT_AT_LEAST_3 = (
    "((t.last_at <= %(now)s AND t.total >= 3) OR (t.first_at <= %(now)s AND t.last_at > %(now)s AND "
    "(SELECT count(*) FROM (SELECT 1 FROM engagement_signal s WHERE s.user_id = t.user_id "
    "AND s.name = t.name AND s.occurred_at <= %(now)s LIMIT 3) c) >= 3))")
TALLY_CASES = {
    "windowed event":
        f"SELECT count(*) FROM engagement_enduser u JOIN engagement_signaltally t ON t.user_id = u.id "
        f"AND t.name = 'purchase' WHERE {LIVE} AND {_tally_window(7)}",
    # one row per (user, name) answers both halves of "went dormant"
    "went dormant (absence)":
        f"SELECT count(*) FROM engagement_enduser u JOIN engagement_signaltally t ON t.user_id = u.id "
        f"AND t.name = 'app_opened' WHERE {LIVE} AND t.first_at <= %(now)s AND NOT ({_tally_window(30)})",
    "nested any/all/not":
        "SELECT count(*) FROM (SELECT t.user_id FROM engagement_signaltally t JOIN engagement_enduser u "
        f"ON u.id = t.user_id WHERE t.name = 'export' AND {_tally_window(14)} AND {LIVE} "
        "AND u.properties -> 'plan' IS DISTINCT FROM '\"enterprise\"'::jsonb "
        "UNION SELECT t.user_id FROM engagement_signaltally t JOIN engagement_enduser u ON u.id = t.user_id "
        f"WHERE t.name = 'invite_sent' AND {TALLY_COUNT_AT_LEAST_3} AND {LIVE}) matched",
}

def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


# The lifecycle and profile rows, in the real tables the deployment's PULSE_BUCKET_SOURCES name.
# `sessions_7d` is not a declared feature, so profiles' refresh_expired (called as in production)
# has nothing to recompute and the stored values are read as they are.
LIFECYCLE_SQL = """
INSERT INTO engagement_lifecyclestate (user_id, state, last_activity_at, changed_at)
SELECT id, (ARRAY['active', 'goodbye_sent', 'remind_later', 'dormant', 'help_flow'])[1 + mod(id, 5)],
       %(now)s::timestamptz - mod(id, 90) * interval '1 day', %(now)s FROM engagement_enduser
"""
PROFILE_SQL = """
INSERT INTO profiles_profilefeaturevalue (user_id, name, value, value_text, computed_at, generation)
SELECT id, 'sessions_7d', mod(id * 13, 30), NULL, %(now)s, 0 FROM engagement_enduser
"""
BULK_TABLES = ("engagement_signal", "engagement_lifecyclestate", "profiles_profilefeaturevalue")
# The tally the signal triggers would have written, row for row (engagement.signal_tally).
TALLY_SQL = """
INSERT INTO engagement_signaltally (user_id, name, first_at, last_at, total)
SELECT user_id, name, min(occurred_at), max(occurred_at), count(*)
FROM engagement_signal GROUP BY user_id, name
"""


def _secondary_indexes(cursor, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's indexes that back no constraint."""
    cursor.execute(
        "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS "
        "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)", [table])
    return cursor.fetchall()


def _foreign_keys(cursor, table: str) -> list[tuple[str, str, str]]:
    """(column, referenced table, referenced column) of the table's foreign keys."""
    cursor.execute(
        "SELECT a.attname, c.confrelid::regclass::text, fa.attname FROM pg_constraint c "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = c.confkey[1] "
        "WHERE c.contype = 'f' AND c.conrelid = %s::regclass", [table])
    return cursor.fetchall()


def _step(sql: str, label: str, params: dict) -> None:
    from django.db import connection

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    print(f"-->   {label}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


def build(users: int, signals: int, now) -> None:
    """The data set, loaded the fast way with the same meaning.

    The bulk tables are loaded with their secondary indexes dropped and their
    foreign-key triggers disabled (one check per row was most of the 19 minutes);
    afterwards every foreign key is checked set-based with one anti-join each (the
    build fails on an orphan), the indexes are rebuilt from their own definitions,
    and VACUUM ANALYZE leaves the tables as autovacuum would in a deployment.
    """
    from django.core.management import call_command
    from django.db import connection

    from bench.dataset import POPULATE_SQL

    call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", interactive=False, verbosity=0)
    tables = {"tenant": "engagement_tenant", "user": "engagement_enduser",
              "membership": "engagement_membership"}
    params = {"now": now, "ref": now, "users": users, "tenants": 100, "signals": signals}
    for statement in POPULATE_SQL:
        _step(statement.format(**tables), "users and tenants", params)
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        loaded = (*BULK_TABLES, "engagement_signaltally")
        dropped = {table: _secondary_indexes(cursor, table) for table in loaded}
        for table, indexes in dropped.items():
            for name, _ in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER ALL")  # the signal tally's triggers too
    try:
        _step(SIGNALS_SQL, "signals (no FK triggers, no secondary indexes)", params)
        _step(LIFECYCLE_SQL, "lifecycle states", params)
        _step(PROFILE_SQL, "profile values", params)
        with connection.cursor() as cursor:
            cursor.execute("SET work_mem = '256MB'")  # the GROUP BY of every (user, name) pair, in memory
        _step(TALLY_SQL, "signal tally (one INSERT ... SELECT ... GROUP BY)", params)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET work_mem")
            for table in loaded:
                cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER ALL")
    _check_foreign_keys(loaded)
    _check_tally()
    for indexes in dropped.values():
        for name, definition in indexes:
            _step(definition, f"index {name}", params)
    _step("VACUUM ANALYZE", "vacuum and statistics", params)


def _check_tally() -> None:
    """The filled tally is what the triggers would have written: the same number of signals in
    all, and exactly the log's first/last/total on a sample of users (ids divisible by 97)."""
    from django.db import connection

    from engagement.signal_tally import differences

    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT coalesce(sum(total), 0) FROM engagement_signaltally), "
                       "(SELECT count(*) FROM engagement_signal)")
        tallied, logged = cursor.fetchone()
    if tallied != logged:
        raise RuntimeError(f"the signal tally counts {tallied} signals, the log holds {logged}")
    wrong = differences(user_modulo=97)
    if wrong:
        raise RuntimeError(f"the signal tally differs from the log on {wrong} sampled (user, name) pairs")
    print(f"-->   signal tally: {tallied:,} signals in all, sample exact "
          f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)


def _check_foreign_keys(tables) -> None:
    """What the disabled triggers would have checked, row for row, as one anti-join per key."""
    from django.db import connection

    with connection.cursor() as cursor:
        for table in tables:
            for column, target, target_column in _foreign_keys(cursor, table):
                started = time.perf_counter()
                cursor.execute(
                    f"SELECT count(*) FROM {table} r WHERE r.{column} IS NOT NULL AND NOT EXISTS "
                    f"(SELECT 1 FROM {target} t WHERE t.{target_column} = r.{column})")
                orphans = cursor.fetchone()[0]
                if orphans:
                    raise RuntimeError(f"{orphans} rows of {table}.{column} reference no {target}")
                print(f"-->   foreign key {table}.{column}: no orphans "
                      f"({time.perf_counter() - started:.1f} s)", file=sys.stderr, flush=True)


class TimedOut(Exception):
    """A query ran past the statement timeout."""


def _server_cpu() -> float:
    """CPU seconds the PostgreSQL server has used so far: the postmaster, its live children and
    the children it has reaped (parallel workers that ended). Read from /proc, so only for a
    server on this machine; the throwaway server of scripts/services.sh serves this run alone."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid):
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()

    postmaster = int(fields(backend)[1])
    total = sum(int(value) for value in fields(postmaster)[11:15])
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                own = fields(entry)
            except OSError:
                continue
            if int(own[1]) == postmaster:
                total += int(own[11]) + int(own[12])
    return total / tick


def _timed(fn, runs: int) -> dict:
    """Median wall time, and server and client CPU per run, of `fn` over `runs` runs."""
    from django.db.utils import OperationalError

    times, result = [], None
    cpu_server, cpu_client = _server_cpu(), time.process_time()
    for _ in range(runs):
        started = time.perf_counter()
        try:
            result = fn()
        except OperationalError as error:
            if "statement timeout" not in str(error):
                raise
            raise TimedOut from error
        times.append(time.perf_counter() - started)
    return {"s": statistics.median(times), "result": result,
            "server_cpu": (_server_cpu() - cpu_server) / runs,
            "client_cpu": (time.process_time() - cpu_client) / runs}


def measure_one(label: str, criteria: dict, sql: str, now, runs: int) -> dict:
    from django.db import connection, transaction

    from buckets.criteria import matching_users
    from buckets.preview import preview

    def hand(query):
        with connection.cursor() as cursor:
            cursor.execute(query, {"now": now})
            return cursor.fetchone()[0]

    row = {"label": label, "tally": None}
    timings = [("hand", lambda: hand(sql))]
    if label in TALLY_CASES:
        timings.append(("tally", lambda: hand(TALLY_CASES[label])))
    timings += [("ours", lambda: matching_users(criteria, now).count()),
                ("preview", lambda: preview(criteria, now=now))]
    for key, fn in timings:
        try:
            with transaction.atomic():
                row[key] = _timed(fn, runs)
        except TimedOut:
            row[key] = None
    counts = {row[key]["result"] for key in ("hand", "tally", "ours") if row[key]}
    if row["preview"]:
        counts.add(row["preview"]["result"]["count"])
    row["count"] = row["ours"]["result"] if row["ours"] else None
    row["agrees"] = len(counts) == 1 and all(row[key] for key in ("hand", "ours", "preview")) and (
        label not in TALLY_CASES or row["tally"] is not None)
    return row


def _ms(part) -> str:
    return "timed out" if part is None else f"{part['s'] * 1000:.0f} ms"


def _cpu(part) -> str:
    return "–" if part is None else f"{part['server_cpu'] * 1000:.0f} + {part['client_cpu'] * 1000:.0f}"


HEADER = ["| criteria | users | hand SQL | matching_users | ratio | preview | CPU ms hand / ours / preview "
          "(server + client) | verdict | hand SQL on the tally | ratio to it | CPU ms tally |",
          "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | ---: | --- |"]


def row_line(row: dict, at_scale: bool) -> str:
    hand, ours, shown = row["hand"], row["ours"], row["preview"]
    ratio = ours["s"] / hand["s"] if hand and ours and hand["s"] else None
    met = ratio is not None and ratio <= 1.5 and shown is not None and shown["s"] < 2.0
    if not row["agrees"]:
        verdict = "COUNTS DISAGREE" if hand and ours and shown else "not measured (timed out)"
    elif at_scale:
        verdict = "met" if met else "not met"
    else:
        verdict = "not met at the specified scale" + ("" if met else " (and missed here)")
    count = "–" if row["count"] is None else f"{row['count']:,}"
    tally = row["tally"]
    if row["label"] in TALLY_CASES:
        to_tally = ours["s"] / tally["s"] if tally and ours and tally["s"] else None
        extra = f" {_ms(tally)} | {'–' if to_tally is None else f'{to_tally:.2f}x'} | {_cpu(tally)} |"
    else:
        extra = " – | – | – |"
    return (f"| {row['label']} | {count} | {_ms(hand)} | {_ms(ours)} | "
            f"{'–' if ratio is None else f'{ratio:.2f}x'} | {_ms(shown)} | "
            f"{_cpu(hand)} / {_cpu(ours)} / {_cpu(shown)} | {verdict} |{extra}")


def measure(now, users: int, signals: int, runs: int, only: list[str]) -> list[dict]:
    """Measures each criteria and prints its row at once (a long run shows its progress)."""
    at_scale = users >= SPEC_USERS and signals >= SPEC_SIGNALS
    print(f"scale: {users:,} users, {signals:,} signals "
          f"(specified: {SPEC_USERS:,} users, {SPEC_SIGNALS:,} signals); medians of {runs} runs", flush=True)
    print("ceiling: hand-written SQL of the same meaning, same run; goals: <= 1.5x it, preview < 2 s",
          flush=True)
    print("\n".join(HEADER), flush=True)
    rows = []
    for label, criteria, sql in CASES:
        if only and label not in only:
            continue
        rows.append(measure_one(label, criteria, sql, now, runs))
        print(row_line(rows[-1], at_scale), flush=True)
    return rows


def _settings_line() -> str:
    from django.db import connection

    names = ("server_version", "shared_buffers", "work_mem", "effective_cache_size", "random_page_cost",
             "max_parallel_workers_per_gather", "jit", "fsync")
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, setting, unit FROM pg_settings WHERE name = ANY(%s)", [list(names)])
        found = {name: f"{setting}{unit or ''}" for name, setting, unit in cursor.fetchall()}
    return "PostgreSQL: " + ", ".join(f"{name}={found.get(name)}" for name in names)


def _scale() -> tuple[int, int]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT (SELECT count(*) FROM engagement_enduser), "
                       "(SELECT count(*) FROM engagement_signal)")
        return cursor.fetchone()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=SPEC_USERS)
    parser.add_argument("--signals", type=int, default=SPEC_SIGNALS)
    parser.add_argument("--reuse", action="store_true", help="measure the data already built")
    parser.add_argument("--build-only", action="store_true", help="build the data and stop")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per query (the median is reported)")
    parser.add_argument("--timeout", type=int, default=300, help="statement timeout per query, seconds")
    parser.add_argument("--only", action="append", default=[], help="measure only this criteria label")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not url.rsplit("/", 1)[-1].startswith("pulse_bench"):
        parser.error("set DATABASE_URL to a PostgreSQL database named pulse_bench_*: it is emptied")
    _setup()
    from datetime import UTC, datetime

    from django.db import connection

    now = datetime(2026, 6, 1, tzinfo=UTC)
    if not args.reuse:
        build(args.users, args.signals, now)
    if args.build_only:
        return 0
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    print(_settings_line(), flush=True)
    with connection.cursor() as cursor:
        cursor.execute("SET statement_timeout = %s", [args.timeout * 1000])
    users, signals = _scale()
    rows = measure(now, users, signals, args.runs, args.only)
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    return 0 if all(row["agrees"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
