#!/usr/bin/env bash
# `make test`: the whole pytest suite twice, in parallel — once on PostgreSQL 15, once on
# SQLite — both with a real Redis. Installs what is missing (venv, Debian packages), starts
# throwaway servers on free ports, stops them on exit. Extra arguments go to pytest.
#
#   scripts/test.sh [pytest args...]
#   PULSE_TEST_LEGS="sqlite"         run only some legs (default: "postgresql sqlite")
#   PULSE_TEST_LEG_TIMEOUT=2400      seconds before a leg is killed
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
# shellcheck source=scripts/services.sh
. "$ROOT/scripts/services.sh"

LEGS="${PULSE_TEST_LEGS:-postgresql sqlite}"
LEG_TIMEOUT="${PULSE_TEST_LEG_TIMEOUT:-2400}"
LOG_DIR="$ROOT/var/test-logs"
WORK_DIR=""
declare -A LEG_PID=() LEG_RC=() LEG_SECONDS=()

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${LEG_PID[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${LEG_PID[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    pulse_services_stop
    [ -n "$WORK_DIR" ] && rm -rf "$WORK_DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

pulse_ensure_venv test
pulse_ensure_system_packages postgresql redis chromium

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export PYTHONUNBUFFERED=1

mkdir -p "$LOG_DIR"
_svc_reap_stale 'pulse-test.??????' pid
WORK_DIR="$(mktemp -d /tmp/pulse-test.XXXXXX)"
echo "$$" >"$WORK_DIR/pid"   # so a later run can tell this dir is still in use

case " $LEGS " in *" postgresql "*) pulse_pg_start pulse ;; esac
pulse_redis_start

# start_leg NAME REDIS_DB [VAR=value ...]: pytest in the background, output to its log.
start_leg() {
    local name="$1" redis_db="$2"
    shift 2
    local log="$LOG_DIR/$name.log" var_dir="$WORK_DIR/$name-var"
    mkdir -p "$var_dir/static"   # STATIC_ROOT, so WhiteNoise finds its directory
    rm -f "$LOG_DIR/$name.xml"
    # setsid: a leg is its own process group, so cleanup can stop it with everything it started;
    # setpriv --pdeathsig: it stops too if this script is killed outright.
    setsid --wait ${TIE[@]+"${TIE[@]}"} env -u DATABASE_URL "$@" \
        REDIS_URL="$PULSE_REDIS_URL/$redis_db" PULSE_VAR_DIR="$var_dir" \
        timeout --kill-after=30 "$LEG_TIMEOUT" \
        "$PULSE_VENV/bin/python" -m pytest -rfEs --junitxml="$LOG_DIR/$name.xml" -o junit_family=xunit2 \
        ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"} </dev/null >"$log" 2>&1 &
    LEG_PID[$name]=$!
    LEG_SECONDS[$name]=$SECONDS
    pulse_log "$name leg started (log: ${log#"$ROOT"/})"
}

PYTEST_ARGS=("$@")
TIE=()
command -v setpriv >/dev/null 2>&1 && TIE=(setpriv --pdeathsig SIGTERM --)
for leg in $LEGS; do
    case "$leg" in
        postgresql) start_leg postgresql 1 DATABASE_URL="$PULSE_PG_URL" ;;
        sqlite) start_leg sqlite 2 ;;
        *) pulse_die "unknown test leg: $leg (known: postgresql sqlite)" ;;
    esac
done

for leg in $LEGS; do
    rc=0
    wait "${LEG_PID[$leg]}" || rc=$?
    unset "LEG_PID[$leg]"
    LEG_RC[$leg]=$rc
    LEG_SECONDS[$leg]=$((SECONDS - LEG_SECONDS[$leg]))
done

for leg in $LEGS; do
    printf '\n======================== %s leg (exit %s) ========================\n' "$leg" "${LEG_RC[$leg]}"
    cat "$LOG_DIR/$leg.log"
done

# One summary line per leg from its JUnit XML, then the total.
failed_legs=0
totals=(0 0 0)
printf '\n==================================== summary ====================================\n'
for leg in $LEGS; do
    rc="${LEG_RC[$leg]}"
    counts="$("$PULSE_VENV/bin/python" - "$LOG_DIR/$leg.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError):
    print("-1 -1 -1")
    sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
n = {k: sum(int(s.get(k, 0)) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
failed = n["failures"] + n["errors"]
print(n["tests"] - failed - n["skipped"], failed, n["skipped"])
PY
)"
    read -r passed failed skipped <<<"$counts"
    case "$rc" in
        0) verdict="ok" ;;
        5) verdict="FAILED: no tests were collected" ;;
        124|137) verdict="FAILED: killed after ${LEG_TIMEOUT}s" ;;
        *) verdict="FAILED (pytest exit $rc)" ;;
    esac
    [ "$rc" -eq 0 ] || failed_legs=$((failed_legs + 1))
    if [ "$passed" -ge 0 ]; then
        printf '%-10s leg: %s passed, %s failed, %s skipped in %ss — %s\n' \
            "$leg" "$passed" "$failed" "$skipped" "${LEG_SECONDS[$leg]}" "$verdict"
        totals=($((totals[0] + passed)) $((totals[1] + failed)) $((totals[2] + skipped)))
    else
        printf '%-10s leg: no results in %ss — %s\n' "$leg" "${LEG_SECONDS[$leg]}" "$verdict"
    fi
done
printf 'logs: %s\n' "${LOG_DIR#"$ROOT"/}/"
printf 'total: %s passed, %s failed, %s skipped\n' "${totals[0]}" "${totals[1]}" "${totals[2]}"

if [ "$failed_legs" -ne 0 ]; then
    exit 1
fi
