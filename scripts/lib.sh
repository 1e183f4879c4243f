# shellcheck shell=bash
# Shared helpers for Pulse's scripts: find Python 3.12 and keep .venv installed.
# Source it:  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
#   pulse_find_python          prints the path of a Python 3.12 interpreter (or fails)
#   pulse_ensure_venv base|test creates .venv if needed and installs pyproject.toml's
#                              dependencies (with the [test] extra for "test"); a stamp file
#                              newer than pyproject.toml skips the install

PULSE_ROOT="${PULSE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}"
PULSE_VENV="${PULSE_VENV:-$PULSE_ROOT/.venv}"

pulse_log() { printf '==> %s\n' "$*" >&2; }
pulse_die() { printf 'error: %s\n' "$*" >&2; exit 1; }

_pulse_is_py312() {
    [ -x "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))' >/dev/null 2>&1
}

pulse_find_python() {
    local candidate
    local -a candidates=()
    [ -n "${PULSE_PYTHON:-}" ] && candidates+=("$PULSE_PYTHON")
    candidate="$(command -v python3.12 2>/dev/null || true)"
    [ -n "$candidate" ] && candidates+=("$candidate")
    # pyenv installs, newest patch release first
    while IFS= read -r candidate; do
        [ -n "$candidate" ] && candidates+=("$candidate")
    done < <(ls -d /root/.pyenv/versions/3.12*/bin/python3.12 "${HOME:-/nonexistent}"/.pyenv/versions/3.12*/bin/python3.12 \
                 2>/dev/null | sort -r -V -u)
    candidates+=(/usr/local/bin/python3.12 /usr/bin/python3.12)
    for candidate in "${candidates[@]}"; do
        if _pulse_is_py312 "$candidate"; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    printf 'error: Pulse needs Python 3.12 and none was found.\n' >&2
    printf '  Looked for: python3.12 on PATH, /root/.pyenv/versions/3.12*/bin/python3.12,\n' >&2
    printf '  /usr/local/bin/python3.12, /usr/bin/python3.12 (or set PULSE_PYTHON=/path/to/python3.12).\n' >&2
    return 1
}

# pulse_ensure_venv base|test
pulse_ensure_venv() {
    local extras="${1:-base}" python stamp reqs
    if ! _pulse_is_py312 "$PULSE_VENV/bin/python"; then
        python="$(pulse_find_python)" || exit 1
        if [ -e "$PULSE_VENV" ]; then
            pulse_log "$PULSE_VENV is not a Python 3.12 virtualenv; recreating it"
            rm -rf "$PULSE_VENV"
        fi
        pulse_log "Creating $PULSE_VENV with $python"
        "$python" -m venv "$PULSE_VENV"
    fi
    # The test install is a superset of the base one.
    for stamp in "$PULSE_VENV/.pulse-deps-$extras" "$PULSE_VENV/.pulse-deps-test"; do
        if [ -f "$stamp" ] && [ "$stamp" -nt "$PULSE_ROOT/pyproject.toml" ]; then
            return 0
        fi
    done
    pulse_log "Installing Python dependencies from pyproject.toml ($extras)"
    reqs="$(mktemp)"
    "$PULSE_VENV/bin/python" - "$PULSE_ROOT/pyproject.toml" "$extras" >"$reqs" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as fh:
    project = tomllib.load(fh)["project"]
lines = list(project.get("dependencies", []))
if sys.argv[2] != "base":
    lines += project.get("optional-dependencies", {}).get(sys.argv[2], [])
print("\n".join(lines))
PY
    if ! "$PULSE_VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r "$reqs"; then
        rm -f "$reqs"
        pulse_die "pip install failed (see above)"
    fi
    rm -f "$reqs"
    touch "$PULSE_VENV/.pulse-deps-$extras"
}
