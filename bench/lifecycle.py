"""Lifecycle benchmark: `run_daily_engagement` over 1,000,000 users, ~30% due for a goodbye.

Run with DATABASE_URL pointing at a PostgreSQL server (and REDIS_URL): it
builds the shared dataset (bench/dataset.py) as a template, gives every user
a lifecycle state in two copies — the same users due in both — and measures

- the job: `run_daily_engagement(now)` in one process (chunked conditional
  UPDATE … RETURNING, transitions, `$lifecycle.changed` signals, goodbyes
  through the outbox port);
- the ceiling: one raw `UPDATE … RETURNING` of the same users plus one
  `INSERT … SELECT` each of their messages, transitions and system signals.

Goals (docs/BENCHMARKS.md): under 60 s in total, within 2× of the ceiling.
A run below 1,000,000 users reports every goal as not met.

    python -m bench.lifecycle [--users N] [--due-share 0.3] [--quick] [--json PATH]
"""

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from bench import dataset, report

SPEC = {"users": 1_000_000, "due_share": 0.3}
JOB_DB, CEILING_DB = "pulse_bench_lifecycle_job", "pulse_bench_lifecycle_ceiling"
NOW = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)


def log(message: str) -> None:
    print(f"--> {message}", file=sys.stderr, flush=True)


def task(step: str, env: dict, database: str, *args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.lifecycle_tasks", step, "--now", NOW.isoformat(), *args],
        cwd=dataset.ROOT, env={**os.environ, **env, "DATABASE_URL": dataset.database_url(
            env["DATABASE_URL"], database)}, stdout=subprocess.PIPE, text=True, check=False,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout)
        raise RuntimeError(f"bench.lifecycle_tasks {step} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def prepare(server_url: str, env: dict, name: str, due_share: float) -> dict:
    with dataset.admin_connection(server_url) as admin:
        dataset.fresh_copy(admin, name)
    out = task("states", env, name, "--due-share", str(due_share))
    with psycopg.connect(dataset.database_url(server_url, name), autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lifecycle", description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=SPEC["users"])
    parser.add_argument("--due-share", type=float, default=SPEC["due_share"])
    parser.add_argument("--tenants", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="20,000 users: a smoke run, below scale")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    users = 20_000 if args.quick else args.users
    server_url = os.environ.get("DATABASE_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")):
        print("error: set DATABASE_URL to a PostgreSQL server", file=sys.stderr)
        return 2
    env = {"DATABASE_URL": server_url, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING",
           "SECRET_KEY": secrets.token_urlsafe(40), "DEBUG": "False",
           "PULSE_VAR_DIR": tempfile.mkdtemp(prefix="pulse-bench-lifecycle.")}
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]
    try:
        with dataset.admin_connection(server_url) as admin:
            machine = report.machine(admin)
        log(f"building the dataset: {users:,} users")
        t0 = time.monotonic()
        dataset.build_template(server_url, dataset.Scale(users, args.tenants), env)
        log(f"dataset built in {time.monotonic() - t0:.0f} s; giving every user a lifecycle state")
        prepare(server_url, env, JOB_DB, args.due_share)
        states = prepare(server_url, env, CEILING_DB, args.due_share)
        log("ceiling: one UPDATE … RETURNING plus INSERT … SELECT of messages, transitions, signals")
        ceiling = task("ceiling", env, CEILING_DB)
        log("the job: run_daily_engagement(now)")
        job = task("job", env, JOB_DB)
    finally:
        with dataset.admin_connection(server_url) as admin:
            for name in (JOB_DB, CEILING_DB, dataset.TEMPLATE):
                dataset.drop_database(admin, name)
    at_scale = users >= SPEC["users"]
    ratio = job["seconds"] / ceiling["seconds"] if ceiling["seconds"] else float("inf")
    goals = [
        report.Goal("under 60 s in total", job["seconds"] < 60, f"{job['seconds']:.1f} s", at_scale),
        report.Goal("within 2× of the ceiling", ratio <= 2, f"{ratio:.2f}×", at_scale),
    ]
    rows = [
        ("scale", f"{users:,} users (specified {SPEC['users']:,}), {states['states']:,} states, "
                  f"due share {args.due_share:.0%}"),
        ("job", f"{job['seconds']:.2f} s, {report.rate(users, job['seconds']):,.0f} users/s "
                f"examined; moved {job['succeeded']:,}, skipped {job['skipped']:,}, failed {job['failed']}"),
        ("job CPU (Python)", f"{job['cpu_seconds']:.2f} s in the job's process, "
                             f"{job['cpu_seconds'] * 1e6 / max(1, job['succeeded']):.1f} µs per user moved "
                             "(the rest of the wall time is PostgreSQL)"),
        ("ceiling", f"{ceiling['seconds']:.2f} s for {ceiling['moved']:,} users moved "
                    f"({report.rate(ceiling['moved'], ceiling['seconds']):,.0f} users/s)"),
        *((g.name, f"{g.detail}: {g.verdict}") for g in goals),
    ]
    print(report.table(machine, "machine"))
    print(report.table(rows, "lifecycle: the daily engagement job"))
    if job["succeeded"] != ceiling["moved"]:
        print(f"warning: the job moved {job['succeeded']:,} users, the ceiling {ceiling['moved']:,}")
    if args.json:
        args.json.write_text(json.dumps({"users": users, "job": job, "ceiling": ceiling, "ratio": ratio,
                                         "goals": {g.name: g.verdict for g in goals}}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
