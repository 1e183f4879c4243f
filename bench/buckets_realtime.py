"""Benchmark: real-time bucket freshness under a steady signal rate (issue 13).

    DATABASE_URL=postgres://…/pulse_bench_rt REDIS_URL=… python -m bench.buckets_realtime \
        [--rate 1000] [--seconds 60] [--users 20000] [--backlog 20000] [--warmup 60000]

In a database named `pulse_bench_*` (it is emptied): N users, 10 buckets over the
signal names and properties the load uses. Two processes run side by side:

- the producer ingests signals through `engagement.ingest.ingest_signals` (what
  the API's 202 means: committed) at a steady rate, in 20 requests a second,
  stamping each with a sequence number and recording when it was accepted;
- one `signals` worker drains continuously with the real handlers, the bucket
  handler last. A bench-only handler appended after it records, on commit of
  each batch, when its signals' memberships became visible (they commit in
  that same transaction).

Freshness is visible - accepted, per signal: p50 and p95 (goal: p95 < 2 s at
1,000 signals/s, one worker, 10 buckets). "Steady" is measured in steady state:
first `--warmup` signals of the same mix (default three per user) are ingested
and drained, so users already hold the memberships their history gives them, as
in a deployment that has been running; the first joins of an empty system are a
one-off burst (each join also writes a `$bucket.entered` signal the same worker
drains), which `--warmup 0` measures instead. Then, in the same run, a backlog is
drained twice, with and without the bucket handler, for the drain's throughput.
The specified scale is 1,000 signals/s sustained; a lower rate is "not met".
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import time

from bench.report import connection_backend_cpu

SPEC_RATE = 1000
TICKS_PER_SECOND = 20
BUCKET_HANDLER = "buckets.realtime.evaluate_buckets"
RECORDER = "bench.buckets_realtime.record_visible"
NAMES = ["app_opened", "page_viewed", "purchase", "invite_sent", "export", "search"]
BUCKETS = [
    ("openers", {"event": "app_opened", "check": "exists", "within": "7d"}),
    ("buyers", {"event": "purchase", "check": "exists", "within": "30d"}),
    ("big-buyers", {"event": "purchase", "check": "count", "op": "gte", "value": 3, "within": "30d"}),
    ("inviters", {"event": "invite_sent", "check": "exists"}),
    ("exporters", {"all": [{"event": "export", "check": "exists"}, {"property": "plan", "op": "eq",
                                                                  "value": "pro"}]}),
    ("searchers", {"event": "search", "check": "count", "op": "gte", "value": 2, "within": "1d"}),
    ("pro-openers", {"all": [{"event": "app_opened", "check": "exists"},
                             {"property": "plan", "op": "in", "value": ["pro", "team"]}]}),
    ("viewers", {"event": "page_viewed", "check": "exists", "within": "1h"}),
    ("eur-buyers", {"event": "purchase", "check": "exists",
                    "where": [{"property": "currency", "op": "eq", "value": "EUR"}]}),
    ("engaged", {"any": [{"event": "invite_sent", "check": "exists"},
                         {"event": "purchase", "check": "exists"}]}),
]
_visible: list = []


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def record_visible(signals, context) -> None:
    """Bench-only handler: when this batch commits, its signals' memberships are visible."""
    from django.db import transaction

    seqs = [s.properties.get("seq") for s in signals if isinstance(s.properties, dict)]
    transaction.on_commit(lambda: _visible.append((time.time(), [q for q in seqs if q is not None])))


def build(users: int, now) -> None:
    from django.core.management import call_command
    from django.db import connection

    from buckets.definitions import create_bucket

    call_command("migrate", interactive=False, verbosity=0)  # a fresh server (make bench) has no tables
    call_command("flush", interactive=False, verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO engagement_enduser (external_id, properties, timezone, locale, first_seen_at, "
            "reengagement_opt_out) SELECT 'u' || g, jsonb_build_object('plan', (ARRAY['free', 'pro', "
            "'team'])[1 + mod(g, 3)]), '', '', %s, false FROM generate_series(1, %s) AS g", [now, users])
    for slug, criteria in BUCKETS:
        create_bucket({"slug": slug, "name": slug, "criteria": criteria}, actor="bench", now=now)


def produce(rate: int, seconds: float, users: int, out) -> None:
    """The producer process: `rate` signals a second in TICKS_PER_SECOND requests."""
    _setup()
    import random

    from django.db import transaction
    from django.utils import timezone

    from engagement.identity import Identifiers
    from engagement.ingest import SignalInput, ingest_signals

    rng, per_tick, seq, accepted = random.Random(13), max(1, rate // TICKS_PER_SECOND), 0, []
    start = time.monotonic()
    for tick in range(int(seconds * TICKS_PER_SECOND)):
        due = start + tick / TICKS_PER_SECOND
        time.sleep(max(0.0, due - time.monotonic()))
        items = []
        for _ in range(per_tick):
            seq += 1
            name = rng.choice(NAMES)
            props = {"seq": seq}
            if name == "purchase":
                props["currency"] = rng.choice(["EUR", "USD"])
            items.append(SignalInput(ids=Identifiers(external_id=f"u{rng.randint(1, users)}"), name=name,
                                     properties=props))
        with transaction.atomic():
            ingest_signals(items, source="api", now=timezone.now())
        done = time.time()
        accepted.extend((q, done) for q in range(seq - per_tick + 1, seq + 1))
    out.put((accepted, time.monotonic() - start))


def consume(stop, out) -> None:
    """The one `signals` worker: drains until told to stop and the queue is empty."""
    _setup()
    from django.conf import settings

    from bench import buckets_realtime as recorder  # the module the handler path imports
    from engagement.pipeline import has_pending, process_signals

    settings.PULSE_SIGNAL_HANDLERS = [*settings.PULSE_SIGNAL_HANDLERS, RECORDER]
    while not (stop.is_set() and not has_pending()):
        if not process_signals(max_batches=1).batches:
            time.sleep(0.02)
    out.put((recorder._visible, time.process_time()))


def freshness(rate: int, seconds: float, users: int) -> dict:
    context = multiprocessing.get_context("spawn")
    stop, results = context.Event(), context.Queue()
    worker = context.Process(target=consume, args=(stop, results))
    producer_out = context.Queue()
    producer = context.Process(target=produce, args=(rate, seconds, users, producer_out))
    worker.start()
    producer.start()
    accepted, produced_s = producer_out.get()
    producer.join()
    stop.set()
    visible, worker_cpu = results.get()
    worker.join()
    seen = {q: at for at, seqs in visible for q in seqs}
    lags = sorted(seen[q] - at for q, at in accepted if q in seen)
    return {"signals": len(accepted), "produced_s": produced_s, "measured": len(lags),
            "p50": statistics.median(lags), "p95": lags[int(0.95 * (len(lags) - 1))], "max": lags[-1],
            "worker_cpu_ms": worker_cpu * 1000 / max(1, len(accepted))}


def ingest_backlog(count: int, users: int, seed: int) -> None:
    """`count` signals of the load's mix for random users, 500 per request."""
    import random

    from django.db import transaction
    from django.utils import timezone

    from engagement.identity import Identifiers
    from engagement.ingest import SignalInput, ingest_signals

    rng = random.Random(seed)
    for start in range(0, count, 500):
        items = []
        for _ in range(min(500, count - start)):
            name = rng.choice(NAMES)
            props = {"currency": rng.choice(["EUR", "USD"])} if name == "purchase" else {}
            items.append(SignalInput(ids=Identifiers(external_id=f"u{rng.randint(1, users)}"), name=name,
                                     properties=props))
        with transaction.atomic():
            ingest_signals(items, source="api", now=timezone.now())


def warm_up(count: int, users: int) -> float:
    """Ingest and drain `count` signals with every handler; seconds it took."""
    from engagement.pipeline import process_signals

    started = time.monotonic()
    ingest_backlog(count, users, seed=5)
    process_signals()
    return time.monotonic() - started


def throughput(backlog: int, users: int, with_buckets: bool) -> dict:
    """Signals per second draining a backlog of `backlog` signals (same mix), one worker."""
    from django.conf import settings

    from engagement.pipeline import process_signals

    ingest_backlog(backlog, users, seed=7 if with_buckets else 8)
    handlers = list(settings.PULSE_SIGNAL_HANDLERS)
    kept = handlers if with_buckets else [h for h in handlers if h != BUCKET_HANDLER]
    settings.PULSE_SIGNAL_HANDLERS = kept
    try:
        started, cpu, server = time.monotonic(), time.process_time(), connection_backend_cpu()
        drained = process_signals()
        wall = time.monotonic() - started
        n = max(1, drained.processed)
        return {"rate": drained.processed / wall, "cpu_ms": (time.process_time() - cpu) * 1000 / n,
                "server_ms": (connection_backend_cpu() - server) * 1000 / n}
    finally:
        settings.PULSE_SIGNAL_HANDLERS = handlers


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=int, default=SPEC_RATE, help="signals per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--users", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=None,
                        help="signals ingested and drained before measuring (default: 3 per user; 0: cold)")
    args = parser.parse_args(argv)
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres") or not url.rsplit("/", 1)[-1].startswith("pulse_bench"):
        parser.error("set DATABASE_URL to a PostgreSQL database named pulse_bench_*: it is emptied")
    _setup()
    from django.db import connection
    from django.utils import timezone

    start_load = f"{os.getloadavg()[0]:.2f}"
    build(args.users, timezone.now())
    warmup = 3 * args.users if args.warmup is None else args.warmup
    warmed_s = warm_up(warmup, args.users) if warmup else 0.0
    connection.close()
    fresh = freshness(args.rate, args.seconds, args.users)
    without = throughput(args.backlog, args.users, with_buckets=False)
    with_buckets = throughput(args.backlog, args.users, with_buckets=True)
    achieved = fresh["signals"] / fresh["produced_s"]
    at_scale = args.rate >= SPEC_RATE and achieved >= 0.95 * SPEC_RATE
    verdict = ("met" if fresh["p95"] < 2.0 else "missed") if at_scale else "not met at the specified scale"
    start_state = f"warm-up: {warmup:,} signals drained first ({warmed_s:.0f} s)" if warmup else "cold start"
    print(f"scale: {args.rate:,} signals/s offered for {args.seconds:.0f} s ({achieved:,.0f}/s achieved), "
          f"{args.users:,} users, 10 buckets, one signals worker (specified: {SPEC_RATE:,}/s); {start_state}")
    print(f"freshness (accepted -> membership visible) over {fresh['measured']:,} signals: "
          f"p50 {fresh['p50'] * 1000:.0f} ms, p95 {fresh['p95'] * 1000:.0f} ms, "
          f"max {fresh['max'] * 1000:.0f} ms, worker CPU {fresh['worker_cpu_ms']:.2f} ms per signal "
          f"(goal p95 < 2 s): {verdict}")
    print(f"load average at start {start_load}, at end {os.getloadavg()[0]:.2f}")
    for label, run in (("without", without), ("with", with_buckets)):
        print(f"drain throughput, backlog of {args.backlog:,}, {label} the bucket handler: "
              f"{run['rate']:,.0f} signals/s, CPU per signal {run['cpu_ms']:.2f} ms worker + "
              f"{run['server_ms']:.2f} ms PostgreSQL backend")
    return 0


if __name__ == "__main__":
    sys.exit(main())
