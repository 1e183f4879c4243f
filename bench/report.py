"""What every benchmark prints: the machine, its scale, figures next to ceilings, goal verdicts."""

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

import psycopg


@dataclass(frozen=True)
class Goal:
    name: str
    met: bool
    detail: str
    scale_met: bool = True

    @property
    def verdict(self) -> str:
        """A run below the specified scale never meets a goal (docs/ARCHITECTURE.md §4)."""
        if not self.scale_met:
            return "not met (run below the specified scale)"
        return "met" if self.met else "not met"


def machine(conn: psycopg.Connection | None = None) -> list[tuple[str, str]]:
    """(label, value) rows describing where the figures came from."""
    rows = [
        ("cpu", f"{_cpu_model()} — {os.cpu_count()} logical cores "
                f"({len(os.sched_getaffinity(0))} usable), nproc={_nproc()}"),
        ("memory", _memory()),
        ("load", "{:.2f} {:.2f} {:.2f} (1/5/15-min load average when the run started)".format(
            *os.getloadavg())),
        ("os", platform.platform()),
        ("code", _code_version()),
        ("python", sys.version.split()[0]),
        ("packages", ", ".join(f"{name} {_version(name)}"
                               for name in ("Django", "gunicorn", "psycopg", "redis", "rq"))),
    ]
    if conn is not None:
        version = conn.execute("SHOW server_version").fetchone()[0]
        tuning = ", ".join(
            f"{name}={conn.execute(f'SHOW {name}').fetchone()[0]}"
            for name in ("fsync", "synchronous_commit", "full_page_writes", "shared_buffers")
        )
        rows.append(("postgresql", f"{version} on 127.0.0.1 ({tuning})"))
    return rows


def _code_version() -> str:
    """The commit measured, and whether the working tree differs from it (read-only git calls)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", root, "status", "--porcelain"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"commit {commit}" + (" with uncommitted changes" if dirty else "")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _nproc() -> str:
    try:
        return subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    kib = int(line.split()[1])
                    return f"{kib / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "?"


def table(rows: list[tuple[str, str]], title: str) -> str:
    width = max(len(label) for label, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    return "\n".join(lines)


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def fmt_rate(value: float) -> str:
    return f"{value:,.0f} signals/s"


# --- CPU accounting: figures that a busy machine disturbs less than wall-clock rates ---

_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) a live process on this machine has used; 0.0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)


def connection_backend_cpu() -> float:
    """CPU seconds the PostgreSQL backend of Django's default connection has used so far, or
    NaN where /proc cannot tell (a server on another machine, another OS)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    return process_cpu(pid) if os.path.exists(f"/proc/{pid}/stat") else float("nan")


def children(pid: int) -> list[int]:
    """Direct child processes of `pid` (gunicorn's workers, for one)."""
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found += [int(child) for child in fh.read().split()]
    except OSError:
        pass
    return found


def backend_cpu(conn: psycopg.Connection, database: str) -> dict[int, float]:
    """pid → CPU seconds of the PostgreSQL backends connected to `database` (same machine)."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
    ).fetchall()
    return {pid: process_cpu(pid) for (pid,) in rows}


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
