#!/usr/bin/env bash
# `make run`: install into .venv if needed, then hand over to the embedded runner
# (config/embedded.py), which migrates, creates the admin user, loads demo data and
# runs web + worker + scheduler in the foreground until Ctrl-C.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

pulse_ensure_venv base
exec "$PULSE_VENV/bin/python" -m config.embedded "$@"
