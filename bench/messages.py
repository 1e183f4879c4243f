"""Messages benchmark (`make bench`): queueing and in-app delivery, each next to its ceiling.

On PostgreSQL, with the generated dataset (bench/dataset.py) of 20,000 users and one
in-app `marketing` template added to it (bench/message_tasks.py):

1. queue ceiling — the rows `queue_messages` writes, inserted with psycopg
   `executemany(INSERT … ON CONFLICT (source, idempotency_key) DO NOTHING)` from one
   process, 500 rows per transaction, into a fresh copy.
2. queue — `campaigns.outbox.queue_messages()` for the same 100,000 rows, 500 rows
   per call and transaction, in one process, into another fresh copy.
3. delivery ceiling — a raw `UPDATE … SET status = 'sent' WHERE id = ANY(…)` of the
   ceiling's rows, 500 ids per statement and transaction, from one process.
4. delivery — `deliver_messages()` in two worker processes at once over the queued
   rows, batches of 500 (PULSE_DELIVERY_BATCH_SIZE): claim (row locks, in-app
   messages being delivered under them), load, gate (preferences, erasure, the
   frequency cap with its locks: raised so that it is evaluated for every message
   but skips none), render, record. Wall clock from
   the common start to the last worker done.

Goals (from the issue): queueing ≥ 50% of its ceiling; delivery ≥ 50% of its ceiling
and ≥ 2,000 messages/s. A run below the specified scale (20,000 users, 100,000
messages, batches of 500, 2 workers) reports every goal as not met.

Needs DATABASE_URL (a PostgreSQL server it may create and drop `pulse_bench_*`
databases on) and REDIS_URL; scripts/bench.sh starts throwaway servers and sets both.
Run it as `python -m bench.messages` or `python bench/messages.py`.
"""

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # `python bench/messages.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg.types.json import Jsonb

from bench import dataset, report
from engagement.idempotency import digest

SPEC = {"users": 20_000, "messages": 100_000, "batch": 500, "workers": 2}
QUICK = {"users": 2_000, "messages": 10_000}
GOAL_QUEUE = 0.50
GOAL_DELIVERY = 0.50
GOAL_DELIVERY_RATE = 2_000
MESSAGES_DB = f"{dataset.PREFIX}_messages"
CEILING_DB = f"{dataset.PREFIX}_messages_ceiling"
TABLE = "campaigns_message"
TEMPLATE_KEY = "bench.offer"  # bench/message_tasks.py creates it
SOURCE = "campaign"
# Every column queue_messages writes (campaigns/outbox.py `_values` and BLANK), in one order.
COLUMNS = (
    "user_id", "template_id", "template_version_id", "channel", "category", "destination", "context",
    "scheduled_for", "next_attempt_at", "status", "idempotency_key", "content_hash", "source",
    "created_at", "skip_reason", "attempts", "lease_token", "lease_expires_at", "gated_at", "last_error",
    "sent_at", "read_at", "provider_id", "locale", "subject", "text", "html", "rendered_actions",
)


def log(message: str) -> None:
    print(f"--> {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Row:
    external_id: str
    context: dict
    key: str


def message_rows(messages: int, users: int, seed: int) -> list[Row]:
    """The benchmark's messages, fixed by `seed`: each for a random existing user."""
    rng = random.Random(seed)
    return [
        Row(dataset.external_id(rng.randint(1, users)), {"n": i, "offer": f"offer-{rng.randrange(50)}"},
            f"bench-{seed}-{i:08d}")
        for i in range(messages)
    ]


# --- ceilings ---------------------------------------------------------------


def _user_ids(conn) -> dict[str, int]:
    return dict(conn.execute(
        "SELECT external_id, id FROM engagement_enduser WHERE external_id IS NOT NULL").fetchall())


def run_queue_ceiling(server_url: str, args, now: datetime) -> dict:
    """The rows queue_messages writes, with psycopg executemany from one process."""
    with psycopg.connect(dataset.database_url(server_url, CEILING_DB), autocommit=True) as conn:
        ids = _user_ids(conn)
        template_id, version_id, category, channel = conn.execute(
            "SELECT t.id, v.id, v.category, t.channel FROM campaigns_messagetemplate t "
            "JOIN campaigns_templateversion v ON v.id = t.current_version_id WHERE t.key = %s",
            [TEMPLATE_KEY],
        ).fetchone()
        # Looked up and hashed before the clock starts: the ceiling measures the writes.
        rows = []
        for r in message_rows(args.messages, args.users, args.seed):
            user_id = ids[r.external_id]
            content_hash = digest({"user": user_id, "template": TEMPLATE_KEY, "context": r.context})
            rows.append((
                user_id, template_id, version_id, channel, category, "", Jsonb(r.context), now, now,
                "queued", r.key, content_hash, SOURCE, now, "", 0, "", None, None, "", None, None, "",
                "", "", "", "", Jsonb([]),
            ))
        query = (f"INSERT INTO {TABLE} ({', '.join(COLUMNS)}) VALUES ({', '.join(['%s'] * len(COLUMNS))}) "
                 "ON CONFLICT (source, idempotency_key) DO NOTHING")
        return _timed(conn, lambda cursor: _in_batches(conn, cursor, query, rows, args.batch), len(rows))


def run_delivery_ceiling(server_url: str, args) -> dict:
    """A raw UPDATE … SET status = 'sent' of the same rows, in the same batch size."""
    with psycopg.connect(dataset.database_url(server_url, CEILING_DB), autocommit=True) as conn:
        ids = [pk for (pk,) in conn.execute(f"SELECT id FROM {TABLE} ORDER BY id")]
        batches = [(ids[start : start + args.batch],) for start in range(0, len(ids), args.batch)]
        query = f"UPDATE {TABLE} SET status = 'sent' WHERE id = ANY(%s)"

        def update(cursor):
            for batch in batches:
                with conn.transaction():
                    cursor.execute(query, batch)

        return _timed(conn, update, len(ids))


def _in_batches(conn, cursor, query: str, rows: list, batch: int) -> None:
    for start in range(0, len(rows), batch):
        with conn.transaction():
            cursor.executemany(query, rows[start : start + batch])


def _timed(conn, work, count: int) -> dict:
    backend = conn.info.backend_pid
    cpu_app, cpu_db = time.process_time(), report.process_cpu(backend)
    started = time.perf_counter()
    with conn.cursor() as cursor:
        work(cursor)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "messages": count, "cpu_app": time.process_time() - cpu_app,
            "cpu_db": report.process_cpu(backend) - cpu_db}


# --- Pulse: queue_messages and deliver_messages -------------------------------


def run_queue(env: dict, args, now: datetime) -> dict:
    child = {**env, "DATABASE_URL": dataset.database_url(env["DATABASE_URL"], MESSAGES_DB)}
    out = dataset.run_task(["queue-messages", "--messages", str(args.messages), "--users", str(args.users),
                            "--seed", str(args.seed), "--batch", str(args.batch), "--now", now.isoformat()],
                           child)
    if out["created"] != args.messages:
        raise RuntimeError(f"queue_messages created {out['created']} of {args.messages} messages")
    return out


def run_delivery(env: dict, args) -> dict:
    """`args.workers` delivery processes started together; wall clock over all of them."""
    child = {**os.environ, **env, "PULSE_DELIVERY_BATCH_SIZE": str(args.batch),
             "DATABASE_URL": dataset.database_url(env["DATABASE_URL"], MESSAGES_DB)}
    start_at = time.time() + 5 + args.workers  # after every worker has set Django up
    command = [sys.executable, "-m", "bench.tasks", "deliver-messages", "--start-at", str(start_at)]
    procs = [
        subprocess.Popen([*command, "--worker", str(n + 1)], cwd=dataset.ROOT, env=child,
                         stdout=subprocess.PIPE, text=True)
        for n in range(args.workers)
    ]
    outs = []
    for proc in procs:
        stdout, _ = proc.communicate(timeout=args.timeout)
        if proc.returncode != 0:
            sys.stderr.write(stdout)
            raise RuntimeError(f"a delivery worker failed with exit code {proc.returncode}")
        outs.append(json.loads(stdout.strip().splitlines()[-1]))
    if any(out["started"] > min(o["ended"] for o in outs) for out in outs):
        log("warning: a worker started after another had finished (the machine is very busy)")
    total = {name: sum(o[name] for o in outs)
             for name in ("batches", "claimed", "sent", "skipped", "retried", "failed", "lost",
                          "cpu_app", "cpu_db")}
    return {**total, "seconds": max(o["ended"] for o in outs) - min(o["started"] for o in outs),
            "messages": total["sent"], "per_worker": [o["sent"] for o in outs]}


# --- checks -----------------------------------------------------------------


def message_digest(server_url: str, name: str) -> tuple[int, str, dict]:
    """Row count, a digest over every column but the id, and the count per status."""
    with psycopg.connect(dataset.database_url(server_url, name), autocommit=True) as conn:
        count, value = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(concat_ws('|', {', '.join(COLUMNS)}), ',' "
            f"ORDER BY idempotency_key), '')) FROM {TABLE}"
        ).fetchone()
        statuses = dict(conn.execute(f"SELECT status, count(*) FROM {TABLE} GROUP BY status").fetchall())
    return count, value, statuses


def delivery_check(server_url: str, expected: int) -> None:
    """Every message sent once, with what its user saw, and nothing left in flight."""
    with psycopg.connect(dataset.database_url(server_url, MESSAGES_DB), autocommit=True) as conn:
        sent, once, rendered, held = conn.execute(
            f"SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE attempts = 1), "
            f"count(*) FILTER (WHERE subject LIKE 'An offer for your %% plan' AND text <> ''), "
            f"count(*) FILTER (WHERE lease_token <> '') FROM {TABLE}"
        ).fetchone()
    if not sent == once == rendered == expected or held:
        raise RuntimeError(f"delivery check failed: {sent} sent, {once} claimed once, {rendered} rendered, "
                           f"{held} still leased, of {expected}")


# --- the run ----------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench ARGS=…", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run ({QUICK['users']:,} users, {QUICK['messages']:,} messages); "
                             "reported as below the specified scale")
    parser.add_argument("--users", type=int, help=f"end users in the dataset (default {SPEC['users']:,})")
    parser.add_argument("--messages", type=int, help=f"messages (default {SPEC['messages']:,})")
    parser.add_argument("--tenants", type=int, default=20, help="tenants in the dataset (default 20)")
    parser.add_argument("--batch", type=int, default=SPEC["batch"],
                        help="rows per queue_messages call and per delivery batch (500)")
    parser.add_argument("--workers", type=int, default=SPEC["workers"], help="delivery worker processes (2)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the messages")
    parser.add_argument("--timeout", type=float, default=900, help="time limit of the delivery leg, seconds")
    parser.add_argument("--work-dir", type=Path, help="where the run's var directory goes")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else SPEC
    args.users = args.users or defaults["users"]
    args.messages = args.messages or defaults["messages"]
    for name in ("users", "messages", "tenants", "batch", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def below_scale(args) -> list[str]:
    shortfalls = []
    if args.users < SPEC["users"]:
        shortfalls.append(f"{args.users:,} users < {SPEC['users']:,}")
    if args.messages < SPEC["messages"]:
        shortfalls.append(f"{args.messages:,} messages < {SPEC['messages']:,}")
    if args.batch != SPEC["batch"]:
        shortfalls.append(f"batches of {args.batch} ≠ {SPEC['batch']}")
    if args.workers != SPEC["workers"]:
        shortfalls.append(f"{args.workers} delivery workers ≠ {SPEC['workers']}")
    return shortfalls


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    server_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not server_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        print("error: set DATABASE_URL to a PostgreSQL server and REDIS_URL (scripts/bench.sh does)",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    env = {
        "DATABASE_URL": server_url, "REDIS_URL": redis_url, "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": secrets.token_urlsafe(40), "LOG_LEVEL": "WARNING", "DEBUG": "False",
    }
    with contextlib.ExitStack() as stack:
        work_dir = args.work_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="pulse-bench."))
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        env["PULSE_VAR_DIR"] = str(work_dir / "var")
        try:
            return _run(args, env)
        finally:
            try:
                with dataset.admin_connection(server_url) as admin:
                    for name in (MESSAGES_DB, CEILING_DB, dataset.TEMPLATE):
                        dataset.drop_database(admin, name)
            except psycopg.Error as exc:
                log(f"could not drop the benchmark databases: {exc}")


def _run(args, env: dict) -> int:
    server_url = env["DATABASE_URL"]
    started = time.monotonic()
    with dataset.admin_connection(server_url) as admin:
        machine = report.machine(admin)
    log(f"building the dataset: {args.users:,} users in {args.tenants} tenants, and the message template")
    t0 = time.monotonic()
    dataset.build_template(server_url, dataset.Scale(args.users, args.tenants), env)
    dataset.run_task(["message-template"], {**env, "DATABASE_URL": dataset.database_url(server_url,
                                                                                          dataset.TEMPLATE)})
    build_seconds = time.monotonic() - t0
    with dataset.admin_connection(server_url) as admin:
        dataset.fresh_copy(admin, CEILING_DB)
        dataset.fresh_copy(admin, MESSAGES_DB)
    now = datetime.now(UTC).replace(microsecond=0)

    log(f"queue ceiling: psycopg executemany of {args.messages:,} rows, {args.batch} per transaction")
    queue_ceiling = run_queue_ceiling(server_url, args, now)
    log(f"queue: queue_messages() for the same rows, {args.batch} per call and transaction")
    queued = run_queue(env, args, now)
    count, pulse_digest, statuses = message_digest(server_url, MESSAGES_DB)
    ceiling_count, ceiling_digest, _ = message_digest(server_url, CEILING_DB)
    if count != args.messages or ceiling_count != args.messages:
        raise RuntimeError(f"row counts differ from {args.messages}: Pulse {count}, ceiling {ceiling_count}")
    if pulse_digest != ceiling_digest:
        raise RuntimeError("the queue ceiling's rows differ from the rows queue_messages wrote")
    if statuses != {"queued": args.messages}:
        raise RuntimeError(f"something was delivered during the queue leg: {statuses}")

    log(f"delivery ceiling: UPDATE … SET status = 'sent', {args.batch} ids per statement")
    delivery_ceiling = run_delivery_ceiling(server_url, args)
    log(f"delivery: deliver_messages() in {args.workers} worker processes, batches of {args.batch}")
    delivered = run_delivery(env, args)
    if delivered["sent"] != args.messages or delivered["skipped"] or delivered["failed"] or delivered["lost"]:
        raise RuntimeError(f"delivery did not send every message exactly once: {delivered}")
    delivery_check(server_url, args.messages)

    results = summarize(args, machine, build_seconds, queue_ceiling, queued, delivery_ceiling, delivered)
    results["total_seconds"] = time.monotonic() - started
    results["load_at_end"] = os.getloadavg()
    print(render(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


def command_line() -> str:
    shown, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg in ("--work-dir", "--json"):
            skip = True
        elif not arg.startswith(("--work-dir=", "--json=")):
            shown.append(arg)
    return "PULSE_BENCH=messages make bench" + (f' ARGS="{" ".join(shown)}"' if shown else "")


def summarize(args, machine, build_seconds, queue_ceiling, queued, delivery_ceiling, delivered) -> dict:
    shortfalls = below_scale(args)
    scale_met = not shortfalls
    legs = {"queue": queued, "queue_ceiling": queue_ceiling, "delivery": delivered,
            "delivery_ceiling": delivery_ceiling}
    for leg in legs.values():
        leg["rate"] = report.rate(leg["messages"], leg["seconds"])
    queue_ratio = queued["rate"] / queue_ceiling["rate"]
    delivery_ratio = delivered["rate"] / delivery_ceiling["rate"]
    goals = [
        report.Goal("queue_messages ≥ 50% of its ceiling", queue_ratio >= GOAL_QUEUE,
                    f"{queue_ratio:.1%} of the ceiling", scale_met),
        report.Goal("delivery ≥ 50% of its ceiling", delivery_ratio >= GOAL_DELIVERY,
                    f"{delivery_ratio:.1%} of the ceiling", scale_met),
        report.Goal(f"delivery ≥ {GOAL_DELIVERY_RATE:,} messages/s", delivered["rate"] >= GOAL_DELIVERY_RATE,
                    f"{delivered['rate']:,.0f} messages/s", scale_met),
    ]
    return {
        "command": command_line(),
        "machine": machine,
        "scale": {"users": args.users, "tenants": args.tenants, "messages": args.messages,
                  "batch": args.batch, "workers": args.workers, "met": scale_met, "shortfalls": shortfalls},
        "dataset_build_seconds": build_seconds,
        **legs,
        "goals": [{**asdict(goal), "verdict": goal.verdict} for goal in goals],
    }


def render(r: dict) -> str:
    s = r["scale"]

    def rate(value: float) -> str:
        return f"{value:>10,.0f} messages/s"

    def ms(leg: dict, part: str) -> str:  # CPU milliseconds per 1,000 messages
        return f"{leg[part] * 1e6 / leg['messages']:6.1f} ms"

    scale_rows = [
        ("dataset", f"{s['users']:,} end users in {s['tenants']} tenants (specified: {SPEC['users']:,}); "
                    f"one in-app marketing template; built in {r['dataset_build_seconds']:.1f} s"),
        ("messages", f"{s['messages']:,}, {s['batch']} per queue_messages call and per delivery batch "
                     f"(specified: {SPEC['messages']:,}, batches of {SPEC['batch']})"),
        ("delivery", f"{s['workers']} worker processes (specified: {SPEC['workers']}); frequency cap "
                     "evaluated for every message, raised so it skips none"),
        ("scale", "as specified" if s["met"] else "BELOW the specified scale: " + "; ".join(s["shortfalls"])),
    ]
    q, qc, d, dc = r["queue"], r["queue_ceiling"], r["delivery"], r["delivery_ceiling"]
    split = "/".join(f"{n:,}" for n in d["per_worker"])
    figure_rows = [
        ("queue_messages", f"{rate(q['rate'])}   one process ({q['seconds']:.2f} s)"),
        ("queue ceiling", f"{rate(qc['rate'])}   psycopg executemany, one process ({qc['seconds']:.2f} s)"),
        ("delivery", f"{rate(d['rate'])}   deliver_messages(), {s['workers']} processes, {d['batches']} "
                     f"batches, sent per worker {split} ({d['seconds']:.2f} s)"),
        ("delivery ceiling", f"{rate(dc['rate'])}   raw UPDATE … SET status = 'sent', one process "
                             f"({dc['seconds']:.2f} s)"),
    ]
    cpu_rows = [
        ("queue_messages", f"Python {ms(q, 'cpu_app')} + PostgreSQL {ms(q, 'cpu_db')}"),
        ("queue ceiling", f"psycopg {ms(qc, 'cpu_app')} + PostgreSQL {ms(qc, 'cpu_db')}"),
        ("delivery", f"Python {ms(d, 'cpu_app')} + PostgreSQL {ms(d, 'cpu_db')}   (both workers)"),
        ("delivery ceiling", f"psycopg {ms(dc, 'cpu_app')} + PostgreSQL {ms(dc, 'cpu_db')}"),
    ]
    goal_rows = [(g["name"], f"{g['detail']} — {g['verdict']}") for g in r["goals"]]
    return "\n\n".join([
        "",
        report.table(r["machine"], "Machine"),
        report.table(scale_rows, "Scale"),
        report.table(figure_rows, "Messages (higher is better)"),
        report.table(cpu_rows, "CPU time per 1,000 messages (lower is better; less disturbed by other load)"),
        report.table(goal_rows, "Goals"),
        f"command: {r['command']}   total time {r['total_seconds']:.0f} s   "
        "load average at the end {:.2f} {:.2f} {:.2f}".format(*r["load_at_end"]),
    ])


if __name__ == "__main__":
    sys.exit(main())
