"""`make run` survives faults: the embedded stack under a killed worker and a stalled Redis.

The stack test starts the real runner (its own ports and var directory, SQLite and
its own Redis), so it runs only on the SQLite leg and leaves the other leg's servers
alone. It sleeps for real: the fault it injects is 25 s of a stopped Redis.
"""

import os
import re
import signal
import sqlite3
import threading
import time

import pytest

from config.embedded import Backoff, describe_exit
from tests.embedded_stack import EmbeddedStack

sqlite_leg_only = pytest.mark.skipif(
    os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="runs the embedded stack on SQLite; the SQLite leg of make test runs it",
)

SIGNALS = 200
RATE_PER_SECOND = 6  # ~35 s of traffic
REDIS_STOPPED_SECONDS = 25


def test_restart_delays_double_from_one_second_up_to_thirty():
    backoff = Backoff()
    assert [backoff.after_exit(ran_for=0.5) for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_process_that_ran_healthily_for_a_minute_is_restarted_after_one_second_again():
    backoff = Backoff()
    for _ in range(4):
        backoff.after_exit(ran_for=2)
    assert backoff.after_exit(ran_for=60) == 1
    assert backoff.after_exit(ran_for=3) == 2


def test_an_exit_by_signal_is_described_by_its_name():
    assert describe_exit(-9) == "code=-9 signal=SIGKILL"
    assert describe_exit(1) == "code=1"
    assert describe_exit(-200) == "code=-200"


class Client(threading.Thread):
    """Sends SIGNALS signals, one a request, each with its own idempotency key, at a steady rate."""

    def __init__(self, stack: EmbeddedStack, key: str):
        super().__init__(daemon=True)
        self.stack, self.key = stack, key
        self.statuses: dict[str, object] = {}

    def run(self):
        started = time.monotonic()
        for n in range(SIGNALS):
            time.sleep(max(0.0, started + n / RATE_PER_SECOND - time.monotonic()))
            key = f"supervised-{n}"
            body = {"user": {"id": f"user-{n % 10}"}, "name": "report.exported", "idempotency_key": key}
            try:
                self.statuses[key] = self.stack.post("/api/v1/signals", body, self.key)
            except OSError as exc:
                self.statuses[key] = type(exc).__name__


def _query(db_path, sql):
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30) as db:
        return db.execute(sql).fetchone()


def _wait_until_drained(db_path, within: float) -> int:
    deadline = time.monotonic() + within
    while (pending := _query(db_path, "SELECT COUNT(*) FROM engagement_signalqueue")[0]) and (
        time.monotonic() < deadline
    ):
        time.sleep(1)
    return pending


@sqlite_leg_only
@pytest.mark.timeout(180)
def test_a_killed_worker_and_a_stalled_redis_lose_no_signal_and_the_web_keeps_answering(tmp_path):
    stack = EmbeddedStack(tmp_path / "var")
    try:
        stack.start()
        client = Client(stack, stack.create_api_key("ingest"))
        client.start()
        time.sleep(3)
        stack.signal("worker", signal.SIGKILL)
        time.sleep(2)
        stack.signal("redis", signal.SIGSTOP)
        time.sleep(REDIS_STOPPED_SECONDS)
        stack.signal("redis", signal.SIGCONT)
        client.join(timeout=90)
        assert not client.is_alive()

        refused = {key: status for key, status in client.statuses.items() if status != 202}
        assert len(client.statuses) == SIGNALS and not refused
        db_path = tmp_path / "var" / "pulse.sqlite3"
        assert _wait_until_drained(db_path, within=75) == 0  # the next wake, or the tick (60 s)
        stored = _query(
            db_path,
            "SELECT COUNT(*), COUNT(DISTINCT idempotency_key), COUNT(failed_at) FROM engagement_signal "
            "WHERE idempotency_key LIKE 'api:supervised-%'",
        )
        assert stored == (SIGNALS, SIGNALS, 0)
        log = stack.log()
        total = _query(db_path, "SELECT COUNT(*) FROM engagement_signal")[0]
        processed = sum(int(n) for n in re.findall(r"event=drain_batch size=\d+ processed=(\d+)", log))
        assert processed == total  # each signal processed once, by a committed batch
        assert "event=service_restarted service=worker" in log
        assert stack.proc.poll() is None

        stack.signal("web", signal.SIGKILL)
        assert stack.wait_exit(60) == 1
        assert "event=service_exited service=web" in stack.log()
    finally:
        stack.stop()
