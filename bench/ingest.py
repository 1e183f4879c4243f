"""Ingestion benchmark (`make bench`): HTTP ingestion vs. its ceiling, and the drain behind it.

On PostgreSQL, with the generated dataset (bench/dataset.py) of 20,000 users:

1. ceiling — the same signal rows the API writes, inserted with psycopg
   `executemany` from one process, 500 rows per transaction, into a fresh copy.
2. HTTP ingestion — the signals POSTed as `{"signals": [500 …]}` with an API key
   to gunicorn (config/gunicorn.conf.py, 2 gthread workers) on 127.0.0.1 from a
   few client threads (a connection per request), into another fresh copy;
   wall clock from the first request sent to the last 202. No drain runs meanwhile.
3. drain — `engagement.pipeline.process_signals()` in one process over the
   signals the HTTP leg left pending: signals/s through every handler.

Goals (from the issue): HTTP ingestion ≥ 40% of the ceiling; drain faster than
ingestion, so a backlog never grows. A run below the specified scale
(20,000 users, ≥100,000 signals, batches of 500, 2 gunicorn workers) reports
every goal as not met.

Needs DATABASE_URL (any database on a PostgreSQL server it may create and drop
`pulse_bench_*` databases on) and REDIS_URL; scripts/bench.sh starts throwaway
servers and sets both. Run it as `python -m bench.ingest` or `python bench/ingest.py`.
"""

import argparse
import contextlib
import http.client
import json
import os
import random
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

if __package__ in (None, ""):  # `python bench/ingest.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg
from psycopg.types.json import Jsonb

from bench import dataset, report
from engagement import idempotency

SPEC = {"users": 20_000, "signals": 100_000, "batch": 500, "web_workers": 2}
QUICK = {"users": 2_000, "signals": 10_000}
GOAL_RATIO = 0.40
INGEST_DB = f"{dataset.PREFIX}_ingest"
CEILING_DB = f"{dataset.PREFIX}_ceiling"
SIGNAL_TABLE = "engagement_signal"
COLUMNS = (
    "user_id", "tenant_id", "name", "feature", "item", "interaction", "properties", "context",
    "occurred_at", "received_at", "idempotency_key", "source", "realtime", "failed_at", "error",
    "request_hash",
)
QUEUE_TABLE = "engagement_signalqueue"
# (name, feature, interaction) — a product-analytics mix; item signals feed item engagement.
NAMES = [
    ("page_viewed", None, None),
    ("page_viewed", None, None),
    ("feature_used", "reports", None),
    ("feature_used", "export", None),
    ("item_viewed", None, "view"),
    ("item_viewed", None, "view"),
    ("item_liked", None, "like"),
    ("search", None, None),
    ("checkout_completed", None, None),
]


def log(message: str) -> None:
    print(f"--> {message}", file=sys.stderr, flush=True)


# --- the signals ------------------------------------------------------------


@dataclass
class Workload:
    bodies: list[bytes]  # one JSON request body per batch
    signals: list[dict]  # what the client sends, in order


def generate(args, now: datetime) -> Workload:
    rng = random.Random(args.seed)
    signals = []
    for i in range(args.signals):
        n = rng.randint(1, args.users)
        name, feature, interaction = rng.choice(NAMES)
        occurred = now - timedelta(microseconds=rng.randrange(300_000_000))
        body = {
            "user": {"id": dataset.external_id(n)},
            "name": name,
            "occurred_at": occurred.isoformat(timespec="microseconds"),
            "properties": {"path": f"/app/{rng.randrange(50)}", "duration_ms": rng.randrange(20, 5000),
                           "plan": rng.choice(("free", "pro", "enterprise"))},
            "idempotency_key": f"bench-{args.seed}-{i:08d}",
        }
        if feature:
            body["feature"] = feature
        if interaction:
            body["item"] = f"item-{rng.randrange(2000)}"
            body["interaction"] = interaction
        if args.with_tenant:
            body["tenant"] = dataset.tenant_key(n, args.tenants)
        signals.append(body)
    bodies = [
        json.dumps({"signals": signals[start : start + args.batch]}).encode()
        for start in range(0, len(signals), args.batch)
    ]
    return Workload(bodies=bodies, signals=signals)


# --- ceiling: psycopg executemany from one process ---------------------------


def run_ceiling(server_url: str, work: Workload, batch: int) -> dict:
    url = dataset.database_url(server_url, CEILING_DB)
    with psycopg.connect(url, autocommit=True) as conn:
        ids = {
            external_id: (pk, tenant_id)
            for external_id, pk, tenant_id in conn.execute(
                "SELECT external_id, id, primary_tenant_id FROM engagement_enduser "
                "WHERE deleted_at IS NULL AND external_id IS NOT NULL"
            )
        }
        parsed = [datetime.fromisoformat(s["occurred_at"]) for s in work.signals]
        # Keys and request hashes as the API stores them (engagement/idempotency.py), computed
        # before the clock starts: the ceiling measures the writes of the same rows.
        keys = [idempotency.namespaced(idempotency.API_PREFIX, s["idempotency_key"]) for s in work.signals]
        hashes = [idempotency.native_request_hash(s) for s in work.signals]
        # The same rows the API writes: the signal, and its entry in the drain's queue.
        query = (
            f"WITH written AS (INSERT INTO {SIGNAL_TABLE} ({', '.join(COLUMNS)}) "
            f"VALUES ({', '.join(['%s'] * len(COLUMNS))}) ON CONFLICT (idempotency_key) DO NOTHING "
            f"RETURNING id) INSERT INTO {QUEUE_TABLE} (signal_id) SELECT id FROM written"
        )
        backend = conn.info.backend_pid
        cpu_client, cpu_db = time.process_time(), report.process_cpu(backend)
        started = time.perf_counter()
        with conn.cursor() as cursor:
            for start in range(0, len(work.signals), batch):
                received = datetime.now(UTC)
                rows = []
                for offset, s in enumerate(work.signals[start : start + batch]):
                    user_id, tenant_id = ids[s["user"]["id"]]
                    rows.append((
                        user_id, tenant_id, s["name"], s.get("feature"), s.get("item"),
                        s.get("interaction"), Jsonb(s["properties"]), Jsonb({}),
                        parsed[start + offset], received, keys[start + offset], "api", True,
                        None, "", hashes[start + offset],
                    ))
                with conn.transaction():
                    cursor.executemany(query, rows)
        seconds = time.perf_counter() - started
        cpu_client, cpu_db = time.process_time() - cpu_client, report.process_cpu(backend) - cpu_db
    return {"seconds": seconds, "signals": len(work.signals), "cpu_app": cpu_client, "cpu_db": cpu_db}


# --- HTTP ingestion through gunicorn ----------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Gunicorn:
    proc: subprocess.Popen
    port: int
    log_path: Path

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        try:
            # Quick shutdown of master and workers (its own session); nothing is in flight
            # after a complete run, and an interrupted one should not wait for requests.
            os.killpg(self.proc.pid, signal.SIGQUIT)
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the benchmark process dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_gunicorn(args, env: dict[str, str], work_dir: Path) -> Gunicorn:
    port = free_port()
    log_path = work_dir / "gunicorn.log"
    var_dir = work_dir / "var"
    (var_dir / "static").mkdir(parents=True, exist_ok=True)
    child_env = {
        **os.environ, **env,
        "PORT": str(port),
        "WEB_CONCURRENCY": str(args.web_workers),
        "WEB_THREADS": str(args.web_threads),
        "PULSE_VAR_DIR": str(var_dir),
        # The limiter still runs on every request; the benchmark key must not hit it.
        "PULSE_RATE_LIMIT_INGEST": str(10**9),
    }
    cmd = [sys.executable, "-m", "gunicorn", "-c", str(dataset.ROOT / "config" / "gunicorn.conf.py"),
           "--pid", str(work_dir / "gunicorn.pid"), "config.wsgi:application"]
    with open(log_path, "ab") as out:
        proc = subprocess.Popen(cmd, cwd=dataset.ROOT, env=child_env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                preexec_fn=_die_with_parent)
    server = Gunicorn(proc, port, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            conn.getresponse().read()
            conn.close()
            return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gunicorn did not answer within 60 s:\n{server.log_tail()}")


def warm_up(port: int, api_key: str, count: int) -> None:
    """Load every worker's URLconf, key cache, pools and Redis client without writing a signal."""
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    for _ in range(count):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/healthz")
        conn.getresponse().read()
        conn.request("POST", "/api/v1/signals", body=b'{"signals": []}', headers=headers)
        response = conn.getresponse()
        response.read()
        conn.close()
        if response.status != 400:
            raise RuntimeError(f"warm-up POST answered {response.status}, expected 400")


@dataclass
class HttpRun:
    seconds: float = 0.0
    requests: int = 0
    accepted: int = 0
    duplicates: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def post_batches(port: int, api_key: str, bodies: list[bytes], clients: int, timeout: float) -> HttpRun:
    """POST every body once from `clients` threads; bounded by count and by `timeout`.

    Each request opens its own connection: gunicorn pins a keep-alive connection
    to the worker that accepted it, so a handful of long-lived connections can
    leave one worker with most of them and the figure would measure that lottery.
    On the loopback a connection costs a fraction of a millisecond per 500 signals.
    """
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
               "Connection": "close"}
    run = HttpRun()
    lock = threading.Lock()
    queue = iter(range(len(bodies)))
    stop = threading.Event()
    deadline = time.monotonic() + timeout
    finished: list[float] = []

    def client() -> None:
        try:
            while not stop.is_set():
                with lock:
                    index = next(queue, None)
                if index is None:
                    return
                if time.monotonic() > deadline:
                    with lock:
                        run.failures.append(f"time limit of {timeout:.0f} s reached")
                    stop.set()
                    return
                sent = time.perf_counter()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                try:
                    conn.request("POST", "/api/v1/signals", body=bodies[index], headers=headers)
                    response = conn.getresponse()
                    payload = response.read()
                finally:
                    conn.close()
                done = time.perf_counter()
                with lock:
                    run.requests += 1
                    run.latencies.append(done - sent)
                    finished.append(done)
                    if run.requests % max(1, len(bodies) // 4) == 0 or run.requests == len(bodies):
                        log(f"  {run.requests}/{len(bodies)} requests answered")
                    if response.status != 202:
                        run.failures.append(f"batch {index}: HTTP {response.status} {payload[:300]!r}")
                        stop.set()
                        continue
                    result = json.loads(payload)
                    run.accepted += result["accepted"]
                    run.duplicates += result["duplicates"]
                    if result["rejected"]:
                        run.failures.append(f"batch {index}: rejected {result['rejected'][:3]}")
                        stop.set()
        except Exception as exc:  # noqa: BLE001 - reported as a failed run
            with lock:
                run.failures.append(f"client error: {type(exc).__name__}: {exc}")
            stop.set()

    threads = [threading.Thread(target=client, name=f"client-{n}", daemon=True) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout + 90)
    if any(thread.is_alive() for thread in threads):
        run.failures.append("client threads still running after the time limit")
    run.seconds = (max(finished) if finished else time.perf_counter()) - started
    return run


def run_http(args, env: dict[str, str], api_key: str, work: Workload, work_dir: Path) -> dict:
    server_url = env["DATABASE_URL"]
    gunicorn_env = {**env, "DATABASE_URL": dataset.database_url(server_url, INGEST_DB)}
    server = start_gunicorn(args, gunicorn_env, work_dir)
    try:
        warm_up(server.port, api_key, count=4 * args.web_workers)
        with dataset.admin_connection(server_url) as admin:
            web0 = {pid: report.process_cpu(pid) for pid in report.children(server.proc.pid)}
            db0, client0 = report.backend_cpu(admin, INGEST_DB), time.process_time()
            run = post_batches(server.port, api_key, work.bodies, args.clients, args.timeout)
            client = time.process_time() - client0
            web1 = {pid: report.process_cpu(pid) for pid in report.children(server.proc.pid)}
            per_worker = sorted((seconds - web0.get(pid, 0.0) for pid, seconds in web1.items()), reverse=True)
            web = sum(per_worker)
            db = report.cpu_delta(db0, report.backend_cpu(admin, INGEST_DB))
    finally:
        server.stop()
    if run.failures:
        sys.stderr.write(server.log_tail() + "\n")
        raise RuntimeError("HTTP leg failed: " + "; ".join(run.failures[:5]))
    if run.accepted != len(work.signals) or run.duplicates:
        raise RuntimeError(f"HTTP leg accepted {run.accepted} of {len(work.signals)} signals "
                           f"({run.duplicates} duplicates)")
    latencies = sorted(run.latencies)
    return {
        "seconds": run.seconds,
        "signals": run.accepted,
        "requests": run.requests,
        "latency_p50_ms": 1000 * statistics.median(latencies),
        "latency_p95_ms": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
        "latency_max_ms": 1000 * latencies[-1],
        "cpu_app": web,
        "cpu_app_per_worker": per_worker,
        "cpu_db": db,
        "cpu_client": client,
    }


# --- checks -----------------------------------------------------------------


def signal_digest(server_url: str, name: str) -> tuple[int, str, dict]:
    """Row count, a digest of the rows' content and the count per state."""
    with psycopg.connect(dataset.database_url(server_url, name), autocommit=True) as conn:
        count, digest = conn.execute(
            f"SELECT count(*), md5(coalesce(string_agg(concat_ws('|', idempotency_key, user_id, "
            f"tenant_id, name, feature, item, interaction, properties::text, context::text, "
            f"occurred_at, source, realtime, request_hash), ',' ORDER BY idempotency_key), '')) "
            f"FROM {SIGNAL_TABLE}"
        ).fetchone()
        queued, failed = conn.execute(
            f"SELECT (SELECT count(*) FROM {QUEUE_TABLE}), "
            f"(SELECT count(*) FROM {SIGNAL_TABLE} WHERE failed_at IS NOT NULL)"
        ).fetchone()
    states = {"pending": queued, "failed": failed, "processed": count - queued - failed}
    return count, digest, {state: n for state, n in states.items() if n}


# --- the run ----------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make bench ARGS=…", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"a smoke run ({QUICK['users']:,} users, {QUICK['signals']:,} signals); "
                             "reported as below the specified scale")
    parser.add_argument("--users", type=int, help=f"end users in the dataset (default {SPEC['users']:,})")
    parser.add_argument("--signals", type=int, help=f"signals to ingest (default {SPEC['signals']:,})")
    parser.add_argument("--tenants", type=int, default=20, help="tenants in the dataset (default 20)")
    parser.add_argument("--batch", type=int, default=SPEC["batch"], help="signals per request (500)")
    parser.add_argument("--clients", type=int, default=4, help="concurrent HTTP client threads (4)")
    parser.add_argument("--web-workers", type=int, default=SPEC["web_workers"], help="gunicorn workers (2)")
    parser.add_argument("--web-threads", type=int, default=4, help="threads per gunicorn worker (4)")
    parser.add_argument("--with-tenant", action="store_true",
                        help="send each signal's tenant key too (exercises tenant and membership upserts)")
    parser.add_argument("--seed", type=int, default=1, help="random seed of the signal stream")
    parser.add_argument("--timeout", type=float, default=900, help="time limit of the HTTP leg, seconds")
    parser.add_argument("--skip-drain", action="store_true", help="measure ingestion and ceiling only")
    parser.add_argument("--work-dir", type=Path, help="where gunicorn's log and pid file go")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else SPEC
    args.users = args.users or defaults["users"]
    args.signals = args.signals or defaults["signals"]
    for name in ("users", "signals", "tenants", "batch", "clients", "web_workers", "web_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.batch > 1000:
        parser.error("--batch must be at most 1000 (the API's limit)")
    return args


def below_scale(args) -> list[str]:
    shortfalls = []
    if args.users < SPEC["users"]:
        shortfalls.append(f"{args.users:,} users < {SPEC['users']:,}")
    if args.signals < SPEC["signals"]:
        shortfalls.append(f"{args.signals:,} signals < {SPEC['signals']:,}")
    if args.batch != SPEC["batch"]:
        shortfalls.append(f"batches of {args.batch} ≠ {SPEC['batch']}")
    if args.web_workers != SPEC["web_workers"]:
        shortfalls.append(f"{args.web_workers} gunicorn workers ≠ {SPEC['web_workers']}")
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
        "DATABASE_URL": server_url,
        "REDIS_URL": redis_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "LOG_LEVEL": "WARNING",
        "DEBUG": "False",
    }
    with contextlib.ExitStack() as stack:
        work_dir = args.work_dir or Path(
            stack.enter_context(tempfile.TemporaryDirectory(prefix="pulse-bench."))
        )
        work_dir.mkdir(parents=True, exist_ok=True)
        env["PULSE_VAR_DIR"] = str(work_dir / "var")
        try:
            return _run(args, env, work_dir)
        finally:
            try:
                with dataset.admin_connection(server_url) as admin:
                    for name in (INGEST_DB, CEILING_DB, dataset.TEMPLATE):
                        dataset.drop_database(admin, name)
            except psycopg.Error as exc:
                log(f"could not drop the benchmark databases: {exc}")


def _run(args, env: dict[str, str], work_dir: Path) -> int:
    server_url = env["DATABASE_URL"]
    started = time.monotonic()
    with dataset.admin_connection(server_url) as admin:
        machine = report.machine(admin)
    log(f"building the dataset: {args.users:,} users in {args.tenants} tenants "
        f"(template database {dataset.TEMPLATE})")
    t0 = time.monotonic()
    api_key = dataset.build_template(server_url, dataset.Scale(args.users, args.tenants), env)
    build_seconds = time.monotonic() - t0
    with dataset.admin_connection(server_url) as admin:
        dataset.fresh_copy(admin, CEILING_DB)
        dataset.fresh_copy(admin, INGEST_DB)

    log(f"generating {args.signals:,} signals in batches of {args.batch}")
    work = generate(args, datetime.now(UTC))

    log("ceiling: psycopg executemany from one process")
    ceiling = run_ceiling(server_url, work, args.batch)
    log(f"HTTP ingestion: gunicorn {args.web_workers}×{args.web_threads} threads, {args.clients} clients, "
        f"{len(work.bodies)} requests")
    http_run = run_http(args, env, api_key, work, work_dir)

    ingest_count, ingest_digest, ingest_states = signal_digest(server_url, INGEST_DB)
    ceiling_count, ceiling_digest, _ = signal_digest(server_url, CEILING_DB)
    if ingest_count != args.signals or ceiling_count != args.signals:
        raise RuntimeError(f"row counts differ from {args.signals}: HTTP {ingest_count}, "
                           f"ceiling {ceiling_count}")
    if ingest_digest != ceiling_digest:
        raise RuntimeError("the ceiling's rows differ from the rows the API wrote")
    if ingest_states != {"pending": args.signals}:
        raise RuntimeError(f"something drained during the HTTP leg: {ingest_states}")

    drain = None
    if not args.skip_drain:
        log(f"drain: process_signals() in one process over {ingest_count:,} pending signals")
        drain = dataset.run_task(["drain"], {**env, "DATABASE_URL": dataset.database_url(server_url,
                                                                                           INGEST_DB)})
        if drain["processed"] != args.signals or drain["failed"] or drain["pending_after"]:
            raise RuntimeError(f"the drain did not process every signal: {drain}")

    results = summarize(args, machine, build_seconds, ceiling, http_run, drain)
    results["total_seconds"] = time.monotonic() - started
    results["load_at_end"] = os.getloadavg()
    print(render(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


def command_line() -> str:
    """How to repeat this run, without the options scripts/bench.sh adds itself."""
    shown, skip = [], False
    for arg in sys.argv[1:]:
        if skip:
            skip = False
        elif arg in ("--work-dir", "--json"):
            skip = True
        elif not arg.startswith(("--work-dir=", "--json=")):
            shown.append(arg)
    return "make bench" + (f' ARGS="{" ".join(shown)}"' if shown else "")


def summarize(args, machine, build_seconds, ceiling, http_run, drain) -> dict:
    shortfalls = below_scale(args)
    scale_met = not shortfalls
    ingest_rate = report.rate(http_run["signals"], http_run["seconds"])
    ceiling_rate = report.rate(ceiling["signals"], ceiling["seconds"])
    ratio = ingest_rate / ceiling_rate
    goals = [report.Goal("HTTP ingestion ≥ 40% of the ceiling", ratio >= GOAL_RATIO,
                         f"{ratio:.1%} of the ceiling", scale_met)]
    drain_rate = None
    if drain:
        drain_rate = report.rate(drain["processed"], drain["seconds"])
        goals.append(report.Goal("drain faster than ingestion", drain_rate > ingest_rate,
                                 f"{drain_rate / ingest_rate:.2f}× ingestion", scale_met))
    else:
        goals.append(report.Goal("drain faster than ingestion", False, "not measured (--skip-drain)",
                                 scale_met))
    return {
        "command": command_line(),
        "machine": machine,
        "scale": {
            "users": args.users, "tenants": args.tenants, "signals": args.signals, "batch": args.batch,
            "web_workers": args.web_workers, "web_threads": args.web_threads, "clients": args.clients,
            "with_tenant": args.with_tenant, "met": scale_met, "shortfalls": shortfalls,
        },
        "dataset_build_seconds": build_seconds,
        "http": {**http_run, "rate": ingest_rate},
        "ceiling": {**ceiling, "rate": ceiling_rate},
        "drain": {**drain, "rate": drain_rate} if drain else None,
        "goals": [{**asdict(goal), "verdict": goal.verdict} for goal in goals],
    }


def render(r: dict) -> str:
    s, h, c, d = r["scale"], r["http"], r["ceiling"], r["drain"]
    scale_rows = [
        ("dataset", f"{s['users']:,} end users in {s['tenants']} tenants "
                    f"(specified: {SPEC['users']:,} users); built in {r['dataset_build_seconds']:.1f} s"),
        ("signals", f"{s['signals']:,} in batches of {s['batch']} = {h['requests']} requests "
                    f"(specified: ≥{SPEC['signals']:,}, batches of {SPEC['batch']})"
                    + ("; with tenant keys" if s["with_tenant"] else "")),
        ("web", f"gunicorn gthread, {s['web_workers']} workers × {s['web_threads']} threads "
                f"(specified: {SPEC['web_workers']} workers); PostgreSQL pool per worker"),
        ("clients", f"{s['clients']} HTTP client threads on the same machine, one connection per request"),
        ("scale", "as specified" if s["met"] else "BELOW the specified scale: " + "; ".join(s["shortfalls"])),
    ]
    figure_rows = [
        ("HTTP ingestion", f"{report.fmt_rate(h['rate']):>20}   {h['signals']:,} signals in "
                           f"{h['seconds']:.2f} s; request p50 {h['latency_p50_ms']:.0f} ms, "
                           f"p95 {h['latency_p95_ms']:.0f} ms, max {h['latency_max_ms']:.0f} ms"),
        ("ceiling", f"{report.fmt_rate(c['rate']):>20}   psycopg executemany, one process, "
                    f"{s['batch']} rows per transaction ({c['seconds']:.2f} s)"),
    ]
    if d:
        figure_rows.append(("drain", f"{report.fmt_rate(d['rate']):>20}   process_signals() through all "
                                     f"handlers, one process, {d['batches']} batches ({d['seconds']:.2f} s)"))
    def ms(seconds: float) -> str:  # CPU milliseconds per 1,000 signals
        return f"{seconds * 1e6 / s['signals']:6.1f} ms"

    split = "/".join(f"{share / h['cpu_app']:.0%}" for share in h["cpu_app_per_worker"])
    cpu_rows = [
        ("HTTP ingestion", f"gunicorn workers {ms(h['cpu_app'])} + PostgreSQL {ms(h['cpu_db'])}"
                           f"   (HTTP clients {ms(h['cpu_client']).strip()}; workers' shares {split})"),
        ("ceiling", f"psycopg client   {ms(c['cpu_app'])} + PostgreSQL {ms(c['cpu_db'])}"),
    ]
    if d:
        cpu_rows.append(("drain", f"drain process    {ms(d['cpu_app'])} + PostgreSQL {ms(d['cpu_db'])}"))
    goal_rows = [(g["name"], f"{g['detail']} — {g['verdict']}") for g in r["goals"]]
    return "\n\n".join([
        "",
        report.table(r["machine"], "Machine"),
        report.table(scale_rows, "Scale"),
        report.table(figure_rows, "Ingestion (signals/s, higher is better)"),
        report.table(cpu_rows, "CPU time per 1,000 signals (lower is better; less disturbed by other load)"),
        report.table(goal_rows, "Goals"),
        f"command: {r['command']}   total time {r['total_seconds']:.0f} s   "
        "load average at the end {:.2f} {:.2f} {:.2f}".format(*r["load_at_end"]),
    ])


if __name__ == "__main__":
    sys.exit(main())
