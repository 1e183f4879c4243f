"""Benchmark steps that need Django, run as a child process: `python -m bench.tasks STEP …`.

Django reads DATABASE_URL once at start-up, so each step runs in its own
process against the database its environment names, and prints one JSON line
as its last line of output.

  build-dataset --users N --tenants T   migrate, generate the dataset, create an API key
  drain                                 process every pending signal in this one process, timed
  message-template, queue-messages, deliver-messages   the messages benchmark (bench/message_tasks.py)
"""

import argparse
import json
import os
import sys
import time

PROGRESS_BATCHES = 50


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def build_dataset(users: int, tenants: int) -> dict:
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from bench.dataset import POPULATE_SQL
    from engagement.keys import create_api_key
    from engagement.models import EndUser, Membership, Tenant

    call_command("migrate", interactive=False, verbosity=0)
    now = timezone.now()
    tables = {
        "tenant": connection.ops.quote_name(Tenant._meta.db_table),
        "user": connection.ops.quote_name(EndUser._meta.db_table),
        "membership": connection.ops.quote_name(Membership._meta.db_table),
    }
    params = {"ref": now, "users": users, "tenants": tenants}
    with transaction.atomic(), connection.cursor() as cursor:
        for statement in POPULATE_SQL:
            cursor.execute(statement.format(**tables), params)
        _key, raw = create_api_key("benchmark", ["ingest", "read", "admin"], now=now)
    return {
        "api_key": raw,
        "users": EndUser.objects.count(),
        "tenants": Tenant.objects.count(),
        "memberships": Membership.objects.count(),
    }


def drain() -> dict:
    from django.db import connection

    from bench.report import process_cpu
    from engagement.models import Signal
    from engagement.pipeline import DrainResult, process_signals

    pending = Signal.objects.pending().count()
    backend = connection.connection.info.backend_pid
    cpu_app, cpu_db = time.process_time(), process_cpu(backend)
    started = time.perf_counter()
    result = DrainResult()
    while True:  # in slices only to show a running count; each slice is a plain process_signals()
        part = process_signals(max_batches=PROGRESS_BATCHES)
        result.batches += part.batches
        result.processed += part.processed
        result.failed += part.failed
        result.errors += part.errors
        if part.batches:
            print(f"-->   {result.processed + result.failed:,}/{pending:,} signals drained",
                  file=sys.stderr, flush=True)
        if part.batches < PROGRESS_BATCHES:
            break
    seconds = time.perf_counter() - started
    cpu_app, cpu_db = time.process_time() - cpu_app, process_cpu(backend) - cpu_db
    return {
        "cpu_app": cpu_app,
        "cpu_db": cpu_db,
        "pending_before": pending,
        "seconds": seconds,
        "batches": result.batches,
        "processed": result.processed,
        "failed": result.failed,
        "errors": result.errors[:5],
        "pending_after": Signal.objects.pending().count(),
    }


def _dispatch(args) -> dict:
    from bench import message_tasks

    if args.step == "build-dataset":
        return build_dataset(args.users, args.tenants)
    if args.step == "drain":
        return drain()
    if args.step == "message-template":
        return message_tasks.message_template()
    if args.step == "queue-messages":
        return message_tasks.queue(args.messages, args.users, args.seed, args.batch, args.now)
    return message_tasks.deliver(args.start_at, args.worker)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tasks")
    steps = parser.add_subparsers(dest="step", required=True)
    build = steps.add_parser("build-dataset")
    build.add_argument("--users", type=int, required=True)
    build.add_argument("--tenants", type=int, required=True)
    steps.add_parser("drain")
    steps.add_parser("message-template")
    queue = steps.add_parser("queue-messages")
    for name in ("messages", "users", "seed", "batch"):
        queue.add_argument(f"--{name}", type=int, required=True)
    queue.add_argument("--now", required=True)
    deliver = steps.add_parser("deliver-messages")
    deliver.add_argument("--start-at", type=float, required=True)
    deliver.add_argument("--worker", type=int, default=1)
    args = parser.parse_args(argv)
    _setup()
    out = _dispatch(args)
    sys.stdout.write(json.dumps(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
