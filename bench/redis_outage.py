"""Request latency of signal ingestion while Redis is stalled, with and without the Redis breaker.

    python -m bench.redis_outage [--outage 25] [--clients 2]

Starts the embedded stack (`python -m config.embedded`: SQLite, its own Redis, on
free 127.0.0.1 ports, var directory in a temporary directory) and sends one signal
per request from `--clients` threads, back to back, with one connection per
request. It measures, per leg:

1. normal: Redis up, for --normal seconds;
2. outage: Redis under SIGSTOP (a stall: connections are accepted, nothing is
   answered) for --outage seconds; then SIGCONT.

Both legs run twice: with the breaker (PULSE_REDIS_BREAKER_SECONDS=5, the default)
and with it turned off (0), where every request waits for the socket timeout
(REDIS_SOCKET_TIMEOUT, 2 s) on each Redis call. It prints the machine, then
requests, statuses and latency p50 / p95 / max per leg. Every request must be
answered 202; the run fails otherwise. Not part of `make test` or `make bench`.
"""

import argparse
import signal
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.report import machine
from tests.embedded_stack import EmbeddedStack

Results = list[tuple[int, float]]  # (status, seconds) per request


def send_for(stack: EmbeddedStack, key: str, seconds: float, clients: int, tag: str) -> Results:
    """(status, seconds) of every request sent in `seconds`, from `clients` threads back to back."""
    results: Results = []
    deadline = time.monotonic() + seconds

    def client(number: int) -> None:
        n = 0
        while time.monotonic() < deadline:
            body = {"user": {"id": f"bench-{number}"}, "name": "bench.outage",
                    "idempotency_key": f"{tag}-{number}-{n}"}
            started = time.monotonic()
            status = stack.post("/api/v1/signals", body, key, timeout=120)
            results.append((status, time.monotonic() - started))
            n += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def summary(results: Results) -> str:
    latencies = sorted(seconds * 1000 for _, seconds in results)
    statuses = {status: sum(1 for s, _ in results if s == status) for status, _ in results}
    p95 = latencies[max(0, int(round(0.95 * len(latencies))) - 1)]
    return (f"{len(results):5d} requests {statuses}  p50 {statistics.median(latencies):7.1f} ms  "
            f"p95 {p95:7.1f} ms  max {latencies[-1]:7.1f} ms")


def run_stack(args, breaker_seconds: str, work_dir: Path) -> dict[str, Results]:
    var_dir = work_dir / f"breaker-{breaker_seconds}"
    stack = EmbeddedStack(var_dir, PULSE_REDIS_BREAKER_SECONDS=breaker_seconds)
    try:
        stack.start()
        key = stack.create_api_key("ingest")
        send_for(stack, key, 3, args.clients, f"warm-{breaker_seconds}")
        legs = {"normal": send_for(stack, key, args.normal, args.clients, f"normal-{breaker_seconds}")}
        stack.signal("redis", signal.SIGSTOP)
        try:
            legs["outage"] = send_for(stack, key, args.outage, args.clients, f"outage-{breaker_seconds}")
        finally:
            stack.signal("redis", signal.SIGCONT)
        return legs
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.redis_outage", description=__doc__.split("\n")[0])
    parser.add_argument("--outage", type=float, default=25, help="seconds Redis stays stopped (25)")
    parser.add_argument("--normal", type=float, default=15, help="seconds of the normal leg (15)")
    parser.add_argument("--clients", type=int, default=2, help="client threads (2)")
    args = parser.parse_args(argv)
    for label, value in machine():
        print(f"{label:>9}: {value}")
    print(f"    scale: {args.clients} clients back to back, 1 signal per request, "
          f"normal {args.normal:g} s, Redis stopped {args.outage:g} s; gunicorn 2 workers x 4 threads")
    failed = False
    with tempfile.TemporaryDirectory(prefix="pulse-outage-") as tmp:
        for breaker_seconds, name in (("5", "breaker on (5 s)"), ("0", "breaker off")):
            legs = run_stack(args, breaker_seconds, Path(tmp))
            for leg, results in legs.items():
                print(f"{name:>17} {leg:>7}: {summary(results)}")
                failed |= any(status != 202 for status, _ in results)
    if failed:
        print("FAILED: some requests were not answered 202", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
