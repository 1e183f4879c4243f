"""Drive `python -m config.embedded` from outside: its own ports and var directory, on 127.0.0.1.

Used by the supervision test and by bench/redis_outage.py. The stack runs on SQLite
with the Redis it starts itself (DATABASE_URL and REDIS_URL are removed from its
environment), so it never touches the servers `make test` started.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class EmbeddedStack:
    def __init__(self, var_dir: Path, **env):
        self.var_dir = Path(var_dir)
        self.port, self.redis_port = free_port(), free_port()
        self.log_path = self.var_dir / "embedded.log"
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(
            PORT=str(self.port), EMBEDDED_REDIS_PORT=str(self.redis_port), PULSE_VAR_DIR=str(self.var_dir),
            SEED_DEMO="0", PYTHONUNBUFFERED="1", **env,
        )
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, ready_within: float = 150) -> None:
        self.var_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "config.embedded", "--no-seed"], cwd=BASE_DIR, env=self.env,
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + ready_within
        while not self._healthy():
            if self.proc.poll() is not None:
                code = self.proc.returncode
                raise RuntimeError(f"the embedded runner exited ({code}):\n{self.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"no healthy /healthz within {ready_within}s:\n{self.log()[-3000:]}")
            time.sleep(0.5)

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=5) as response:
                return json.load(response).get("redis") == "ok"
        except (OSError, ValueError):
            return False

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args], cwd=BASE_DIR, env=self.env, capture_output=True, text=True,
            timeout=120, check=True,
        )
        return done.stdout

    def create_api_key(self, scopes: str = "ingest") -> str:
        out = self.manage("create_api_key", "--name", "embedded stack", "--scopes", scopes)
        return out.strip().splitlines()[-1]

    def pid(self, name: str) -> int:
        return int((self.var_dir / "embedded" / f"{name}.pid").read_text())

    def signal(self, name: str, sig: int) -> None:
        os.kill(self.pid(name), sig)

    def post(self, path: str, body: dict, key: str, timeout: float = 60) -> int:
        request = urllib.request.Request(
            f"{self.url}{path}", data=json.dumps(body).encode(), method="POST",
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return response.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_exit(self, seconds: float) -> int | None:
        try:
            return self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Stop everything, whatever state the test left it in (Redis stopped, runner hung)."""
        if self.proc is None:
            return
        pids = {}
        for path in (self.var_dir / "embedded").glob("*.pid"):
            try:
                pids[path.stem] = int(path.read_text())
            except (OSError, ValueError):
                continue
        if "redis" in pids:
            _send(pids["redis"], signal.SIGCONT)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        if self.wait_exit(45) is not None:
            return  # the runner stopped its children itself
        _send_group(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        for pid in pids.values():  # each child leads its own process group
            _send_group(pid, signal.SIGKILL)


def _send(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


def _send_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
