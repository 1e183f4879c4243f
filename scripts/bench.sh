#!/usr/bin/env bash
# `make bench`: the benchmarks of docs/BENCHMARKS.md on a throwaway PostgreSQL 15 and Redis 7
# that listen on 127.0.0.1 only and are stopped on exit (error and Ctrl-C included).
# PULSE_BENCH picks the benchmarks (default "ingest messages": bench/ingest.py, then
# bench/messages.py; also items, lifecycle, profiles, buckets_criteria, buckets_realtime,
# each of which builds its own data in the throwaway server); arguments go to each of them:
#
#   scripts/bench.sh                  every benchmark at the specified scale
#   scripts/bench.sh --quick          a smoke run, reported as below the specified scale
#   scripts/bench.sh --help           every option
#   make bench ARGS="--quick"
#   PULSE_BENCH=messages make bench   one benchmark (then its own options may be given too)
#   PULSE_BENCH=lifecycle make bench ARGS="--quick"
#   PULSE_BENCH_JSON=var/bench/ingest.json   also write the figures as JSON (with several
#                                     benchmarks, each adds its name: var/bench/ingest-messages.json)
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
    for pid_file in "$WORK_DIR/gunicorn.pid" "$WORK_DIR/ingest/gunicorn.pid"; do
        [ -n "$WORK_DIR" ] && [ -f "$pid_file" ] || continue
        pid="$(cat "$pid_file" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            sleep 2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    pulse_services_stop
    [ -n "$WORK_DIR" ] && rm -rf "$WORK_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pulse_ensure_venv base
BENCHES="${PULSE_BENCH:-ingest messages}"
for name in $BENCHES; do
    case "$name" in
        ingest|messages|items|lifecycle|profiles|buckets_criteria|buckets_realtime) ;;
        *) echo "PULSE_BENCH: unknown benchmark '$name' (ingest, messages, items, lifecycle, profiles," \
               "buckets_criteria, buckets_realtime)" >&2; exit 2 ;;
    esac
done
for arg in "$@"; do
    case "$arg" in
        -h|--help)
            for name in $BENCHES; do
                echo "== bench/$name.py (PULSE_BENCH=$name)"
                "$PULSE_VENV/bin/python" -m "bench.$name" --help
                echo
            done
            exit 0 ;;
    esac
done
pulse_ensure_system_packages postgresql redis

WORK_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pulse-bench.XXXXXX")"
pulse_pg_start pulse_bench
pulse_redis_start

count=0
for name in $BENCHES; do count=$((count + 1)); done
for name in $BENCHES; do
    json_args=()
    own_args=(--work-dir "$WORK_DIR/$name")
    case "$name" in ingest|messages) ;; *) own_args=() ;; esac  # the others take neither option
    if [ -n "${PULSE_BENCH_JSON:-}" ] && [ "${#own_args[@]}" -gt 0 ]; then
        json="$PULSE_BENCH_JSON"
        [ "$count" -gt 1 ] && json="${PULSE_BENCH_JSON%.json}-$name.json"
        json_args=(--json "$json")
    fi
    echo "==> bench/$name.py" >&2
    # In the background and waited on, so a Ctrl-C or TERM reaches the trap at once.
    PYTHONUNBUFFERED=1 DATABASE_URL="$PULSE_PG_URL" REDIS_URL="$PULSE_REDIS_URL/0" \
        "$PULSE_VENV/bin/python" -m "bench.$name" ${own_args[@]+"${own_args[@]}"} \
        ${json_args[@]+"${json_args[@]}"} "$@" </dev/null &
    BENCH_PID=$!
    rc=0
    wait "$BENCH_PID" || rc=$?
    BENCH_PID=""
    [ "$rc" -eq 0 ] || exit "$rc"
done
