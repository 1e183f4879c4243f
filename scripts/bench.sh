#!/usr/bin/env bash
# `make bench`: the benchmarks of docs/BENCHMARKS.md on a throwaway PostgreSQL 15 and Redis 7
# that listen on 127.0.0.1 only and are stopped on exit (error and Ctrl-C included).
# Arguments go to bench/ingest.py:
#
#   scripts/bench.sh                  the specified scale (20,000 users, 100,000 signals)
#   scripts/bench.sh --quick          a smoke run, reported as below the specified scale
#   scripts/bench.sh --help           every option
#   make bench ARGS="--quick"
#   PULSE_BENCH_JSON=var/bench/ingest.json   also write the figures as JSON
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
# shellcheck source=scripts/services.sh
. "$ROOT/scripts/services.sh"

WORK_DIR=""
BENCH_PID=""

# Stop what this script started: the benchmark (and the gunicorn it runs, by its pid file),
# then the servers. Safe to run twice.
cleanup() {
    local rc=$? pid=""
    trap - EXIT INT TERM
    if [ -n "$BENCH_PID" ] && kill -0 "$BENCH_PID" 2>/dev/null; then
        kill -TERM "$BENCH_PID" 2>/dev/null || true
        wait "$BENCH_PID" 2>/dev/null || true
    fi
    if [ -n "$WORK_DIR" ] && [ -f "$WORK_DIR/gunicorn.pid" ]; then
        pid="$(cat "$WORK_DIR/gunicorn.pid" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            sleep 2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    pulse_services_stop
    [ -n "$WORK_DIR" ] && rm -rf "$WORK_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pulse_ensure_venv base
for arg in "$@"; do
    case "$arg" in
        -h|--help) exec "$PULSE_VENV/bin/python" -m bench.ingest --help ;;
    esac
done
pulse_ensure_system_packages postgresql redis

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pulse-bench.XXXXXX")"
pulse_pg_start pulse_bench
pulse_redis_start

json_args=()
[ -n "${PULSE_BENCH_JSON:-}" ] && json_args=(--json "$PULSE_BENCH_JSON")

# In the background and waited on, so a Ctrl-C or TERM reaches the trap at once.
PYTHONUNBUFFERED=1 DATABASE_URL="$PULSE_PG_URL" REDIS_URL="$PULSE_REDIS_URL/0" \
    "$PULSE_VENV/bin/python" -m bench.ingest --work-dir "$WORK_DIR/ingest" \
    ${json_args[@]+"${json_args[@]}"} "$@" </dev/null &
BENCH_PID=$!
rc=0
wait "$BENCH_PID" || rc=$?
BENCH_PID=""
exit "$rc"
