"""Item engagement and tuning benchmarks (issue 10), on PostgreSQL.

1. The drain's throughput with and without the item handler, in the same run,
   over the same generated signals (item views, plain events, chat messages
   whose text names item keys). Goal: the item handler costs under 25%.
2. `tune_engagement` over `--engage-signals` `$engage` signals (specified:
   10,000,000), next to the same aggregate as one raw `GROUP BY` over psycopg
   in the same run. Goal: under 30 s.

Run against a PostgreSQL server (DATABASE_URL names any database on it; the
benchmark creates and drops `pulse_bench_*` databases only) with REDIS_URL set:

    python -m bench.items [--quick] [--engage-signals N] [--drain-signals N]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg

from bench import report
from bench.dataset import ROOT, Scale, admin_connection, build_template, database_url, fresh_copy

SPEC = {"engage_signals": 10_000_000, "drain_signals": 100_000, "users": 20_000, "tenants": 20}
QUICK = {"engage_signals": 200_000, "drain_signals": 10_000, "users": 2_000, "tenants": 20}
ALL_HANDLERS = "engagement.handlers.record_last_seen,engagement.loops.items.track_item_engagement"
WITHOUT_ITEMS = "engagement.handlers.record_last_seen"
TUNE_GOAL_SECONDS = 30.0
ITEM_COST_GOAL = 0.25
FEATURES = ["tips", "digest", "inbox", "reports", "search", "onboarding", "alerts", "billing"]

DRAIN_SIGNALS_SQL = """
    INSERT INTO engagement_signal (user_id, tenant_id, name, feature, item, interaction, properties,
        context, occurred_at, received_at, idempotency_key, request_hash, source, realtime, failed_at, error)
    SELECT 1 + g %% %(users)s, NULL,
           CASE WHEN g %% 10 = 0 THEN 'message.received' WHEN g %% 2 = 0 THEN 'issue.viewed'
                ELSE 'app.opened' END,
           NULL,
           CASE WHEN g %% 2 = 0 AND g %% 10 <> 0 THEN 'AI-' || (g %% 500) END,
           CASE WHEN g %% 4 = 0 THEN 'query' END,
           CASE WHEN g %% 10 = 0
                THEN jsonb_build_object('text',
                                        'status of AI-' || (g %% 500) || ' and DMD-' || (g %% 97) || '?')
                ELSE jsonb_build_object('platform', 'web') END,
           '{}'::jsonb, %(ref)s::timestamptz - (g %% 86400) * interval '1 second', %(ref)s::timestamptz,
           NULL, NULL, 'api', true, NULL, ''
    FROM generate_series(1, %(n)s) AS g
"""
ENGAGE_SIGNALS_SQL = """
    INSERT INTO engagement_signal (user_id, tenant_id, name, feature, item, interaction, properties,
        context, occurred_at, received_at, idempotency_key, request_hash, source, realtime, failed_at, error)
    SELECT 1 + g %% %(users)s, 1 + g %% %(tenants)s, '$engage', (%(features)s::text[])[1 + g %% 8],
           NULL, NULL, '{}'::jsonb, '{}'::jsonb,
           %(ref)s::timestamptz - (g %% (45 * 86400)) * interval '1 second', %(ref)s::timestamptz,
           NULL, NULL, 'system', false, NULL, ''
    FROM generate_series(1, %(n)s) AS g
"""
RAW_GROUP_BY = """
    SELECT tenant_id, feature, COUNT(*) FROM engagement_signal
    WHERE name = '$engage' AND occurred_at >= %s AND occurred_at < %s
      AND tenant_id IS NOT NULL AND feature IS NOT NULL AND feature <> ''
    GROUP BY tenant_id, feature
"""


def log(message: str) -> None:
    print(f"--> {message}", file=sys.stderr, flush=True)


def child(args) -> dict:
    """Inside Django (a child process): drain with the given handlers, or run tune_engagement."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings

    if args.child == "drain":
        from bench.tasks import drain

        settings.PULSE_SIGNAL_HANDLERS = args.handlers.split(",")
        return drain()
    from engagement.loops.tuning import tune_engagement
    from engagement.models import Calibration

    now = datetime.fromisoformat(args.now)
    started = time.perf_counter()
    result = tune_engagement(None, now)
    return {"seconds": time.perf_counter() - started, "succeeded": result.succeeded,
            "failed": result.failed, "calibrations": Calibration.objects.count()}


def run_child(url: str, *argv: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.items", *argv], cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url}, stdout=subprocess.PIPE, text=True, check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise RuntimeError(f"bench.items {argv[1]} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load(url: str, statement: str, params: dict, queue: bool) -> float:
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement, params)
        if queue:
            conn.execute("INSERT INTO engagement_signalqueue (signal_id) SELECT id FROM engagement_signal")
        conn.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def drain_leg(server: str, scale: dict, ref: datetime) -> dict:
    out = {}
    for label, handlers in (("without", WITHOUT_ITEMS), ("with", ALL_HANDLERS)):
        name = f"pulse_bench_items_drain_{label}"
        with admin_connection(server) as admin:
            fresh_copy(admin, name)
        url = database_url(server, name)
        load(url, DRAIN_SIGNALS_SQL, {"users": scale["users"], "ref": ref, "n": scale["drain_signals"]}, True)
        log(f"drain {label} the item handler: {scale['drain_signals']:,} signals")
        out[label] = run_child(url, "--child", "drain", "--handlers", handlers)
    return out


def tune_leg(server: str, scale: dict, ref: datetime) -> dict:
    name = "pulse_bench_items_tune"
    with admin_connection(server) as admin:
        fresh_copy(admin, name)
    url = database_url(server, name)
    log(f"generating {scale['engage_signals']:,} $engage signals")
    load_seconds = load(url, ENGAGE_SIGNALS_SQL, {"users": scale["users"], "tenants": scale["tenants"],
                                                  "features": FEATURES, "ref": ref,
                                                  "n": scale["engage_signals"]}, False)
    raw = []
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(2):
            started = time.perf_counter()
            groups = conn.execute(RAW_GROUP_BY, [ref - timedelta(days=30), ref]).fetchall()
            raw.append(time.perf_counter() - started)
    tuned = [run_child(url, "--child", "tune", "--now", ref.isoformat()) for _ in range(2)]
    with admin_connection(server) as admin:
        for db in (name, "pulse_bench_items_drain_with", "pulse_bench_items_drain_without"):
            admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
    return {"load_seconds": load_seconds, "groups": len(groups), "raw_seconds": raw, "tune": tuned}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.items", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run, below the specified scale")
    parser.add_argument("--engage-signals", type=int)
    parser.add_argument("--drain-signals", type=int)
    parser.add_argument("--users", type=int)
    parser.add_argument("--child", choices=["drain", "tune"], help=argparse.SUPPRESS)
    parser.add_argument("--handlers", help=argparse.SUPPRESS)
    parser.add_argument("--now", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        sys.stdout.write(json.dumps(child(args)) + "\n")
        return 0
    scale = dict(QUICK if args.quick else SPEC)
    for key in ("engage_signals", "drain_signals", "users"):
        if getattr(args, key) is not None:
            scale[key] = getattr(args, key)
    server = os.environ["DATABASE_URL"]
    ref = datetime.now(UTC).replace(microsecond=0)
    with admin_connection(server) as admin:
        machine = report.machine(admin)
    log(f"building the dataset ({scale['users']:,} users, {scale['tenants']} tenants)")
    build_template(server, Scale(users=scale["users"], tenants=scale["tenants"]), dict(os.environ))
    drains = drain_leg(server, scale, ref)
    tune = tune_leg(server, scale, ref)
    print(render(machine, scale, drains, tune, " ".join(["python -m bench.items", *(argv or sys.argv[1:])])))
    return 0


def render(machine, scale, drains, tune, command) -> str:
    rate = {k: report.rate(v["processed"], v["seconds"]) for k, v in drains.items()}
    cost = 1 - rate["with"] / rate["without"] if rate["without"] else 0.0
    best_tune, best_raw = min(t["seconds"] for t in tune["tune"]), min(tune["raw_seconds"])
    full = scale["engage_signals"] >= SPEC["engage_signals"]
    drain_full = scale["drain_signals"] >= SPEC["drain_signals"] and scale["users"] >= SPEC["users"]
    goals = [
        report.Goal("item handler costs the drain < 25%", cost < ITEM_COST_GOAL,
                    f"{cost:.1%} slower with it", scale_met=drain_full),
        report.Goal("tune_engagement over 10M signals < 30 s", best_tune < TUNE_GOAL_SECONDS,
                    f"{best_tune:.2f} s", scale_met=full),
    ]
    runs = ", ".join(f"{t['seconds']:.2f}" for t in tune["tune"])
    engage = f"{scale['engage_signals']:,} (specified {SPEC['engage_signals']:,})"
    return "\n\n".join([
        report.table(machine, "Machine"),
        report.table([("command", command),
                      ("drain signals", f"{scale['drain_signals']:,} (specified {SPEC['drain_signals']:,})"),
                      ("$engage signals", engage),
                      ("users / tenants", f"{scale['users']:,} / {scale['tenants']}")], "Scale"),
        report.table([
            ("drain without items", f"{report.fmt_rate(rate['without'])}"),
            ("drain with items", f"{report.fmt_rate(rate['with'])} ({cost:.1%} slower)"),
            ("tune_engagement", f"{best_tune:.2f} s best of 2 ({runs})"),
            ("raw GROUP BY (ceiling)", f"{best_raw:.2f} s best of 2, {tune['groups']} groups"),
            ("generating the signals", f"{tune['load_seconds']:.1f} s"),
        ], "Figures"),
        report.table([(g.name, f"{g.verdict} — {g.detail}") for g in goals], "Goals"),
    ])


if __name__ == "__main__":
    sys.exit(main())
