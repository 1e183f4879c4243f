# shellcheck shell=bash
# Throwaway PostgreSQL 15 and Redis 7 servers on 127.0.0.1, for tests and benchmarks.
# Source it, then:
#
#   pulse_ensure_system_packages postgresql redis chromium   # apt-get only what is missing
#   pulse_pg_start [DBNAME]   # sets PULSE_PG_URL, PULSE_PG_PORT, PULSE_PG_DIR, PULSE_PG_PID
#   pulse_redis_start         # sets PULSE_REDIS_URL, PULSE_REDIS_PORT, PULSE_REDIS_DIR, PULSE_REDIS_PID
#   pulse_pg_stop; pulse_redis_stop; pulse_services_stop      # safe to call twice
#
# Each server listens on 127.0.0.1 on a free port picked by the kernel, keeps its files in a
# fresh /tmp/pulse-{pg,redis}.XXXXXX directory and is tuned for speed, not durability (fsync
# off, no Redis persistence): nothing here is for data you want to keep. PostgreSQL runs as
# the `postgres` user when we are root, with trust auth: postgres://postgres@127.0.0.1:PORT/DB.
#
# Call the start functions directly (not inside $(...) or a subshell): each server is a child
# of the calling shell and is tied to it, so it stops even if that shell is killed outright.
# The caller owns the normal cleanup:  trap pulse_services_stop EXIT

PULSE_PG_BIN="${PULSE_PG_BIN:-/usr/lib/postgresql/15/bin}"
PULSE_PG_PORT="" PULSE_PG_DIR="" PULSE_PG_URL="" PULSE_PG_PID=""
PULSE_REDIS_PORT="" PULSE_REDIS_DIR="" PULSE_REDIS_PID="" PULSE_REDIS_URL=""

_svc_log() { printf '==> %s\n' "$*" >&2; }

# A TCP port on 127.0.0.1 that nothing listens on right now.
pulse_free_port() {
    local py
    for py in "${PULSE_VENV:-/nonexistent}/bin/python" python3 python; do
        if command -v "$py" >/dev/null 2>&1; then
            "$py" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
            return
        fi
    done
    printf 'error: no Python found to pick a free port\n' >&2
    return 1
}

# pulse_ensure_system_packages [postgresql] [redis] [chromium]
# Installs the Debian packages for what is missing; apt-get runs only if something is.
pulse_ensure_system_packages() {
    local want missing=()
    for want in "$@"; do
        case "$want" in
            postgresql) [ -x "$PULSE_PG_BIN/initdb" ] && [ -x "$PULSE_PG_BIN/pg_ctl" ] || missing+=(postgresql) ;;
            redis) command -v redis-server >/dev/null 2>&1 || missing+=(redis-server) ;;
            chromium)
                [ -x /usr/bin/chromium ] || missing+=(chromium)
                [ -x /usr/bin/chromedriver ] || missing+=(chromium-driver) ;;
            *) printf 'error: unknown system package group %s\n' "$want" >&2; return 1 ;;
        esac
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || {
            printf 'error: missing Debian packages (%s); install them as root\n' "${missing[*]}" >&2
            return 1
        }
        sudo=(sudo)
    fi
    _svc_log "Installing Debian packages: ${missing[*]}"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq </dev/null
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" </dev/null
}

# Run a command as the postgres user when we are root (PostgreSQL refuses to run as root).
_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# _svc_exec_tied SIGNAL USER-or-"" CMD...: exec CMD, as USER if given, so that it gets SIGNAL
# when the shell that started it dies (even by SIGKILL, when no EXIT trap runs). Linux only;
# elsewhere it simply runs CMD.
_svc_exec_tied() {
    local sig="$1" user="$2"
    shift 2
    local -a prefix=()
    if command -v setpriv >/dev/null 2>&1; then
        prefix=(setpriv --pdeathsig "$sig")
        [ -n "$user" ] && prefix+=(--reuid="$user" --regid="$user" --init-groups)
        prefix+=(--)
    elif [ -n "$user" ]; then
        prefix=(runuser -u "$user" --)
    fi
    exec "${prefix[@]}" "$@"
}

# Remove what runs killed outright left in /tmp: dirs older than 10 minutes whose server is gone.
_svc_reap_stale() {
    local dir pid pattern="$1" pidfile="$2"
    for dir in /tmp/$pattern; do
        [ -d "$dir" ] || continue
        [ -n "$(find "$dir" -maxdepth 0 -mmin +10 2>/dev/null)" ] || continue
        pid="$(head -n 1 "$dir/$pidfile" 2>/dev/null || true)"
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
            continue
        fi
        rm -rf "$dir"
    done
}

# pulse_pg_start [DBNAME]  (default: pulse). Call it directly, not in $(...) or a subshell:
# the server is tied to the calling shell and stops when that shell dies.
pulse_pg_start() {
    local db="${1:-pulse}" attempt owner=""
    [ -x "$PULSE_PG_BIN/initdb" ] || { printf 'error: no PostgreSQL at %s\n' "$PULSE_PG_BIN" >&2; return 1; }
    _svc_reap_stale 'pulse-pg.??????' data/postmaster.pid
    # /tmp rather than $TMPDIR: the postgres user must be able to reach it.
    PULSE_PG_DIR="$(mktemp -d /tmp/pulse-pg.XXXXXX)"
    if [ "$(id -u)" -eq 0 ]; then
        owner=postgres
        chown postgres: "$PULSE_PG_DIR"
    fi
    _pg_as_owner "$PULSE_PG_BIN/initdb" -D "$PULSE_PG_DIR/data" -U postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$PULSE_PG_DIR/initdb.log" 2>&1 || {
        cat "$PULSE_PG_DIR/initdb.log" >&2
        return 1
    }
    for attempt in 1 2 3; do   # the port could be taken between picking and binding it
        PULSE_PG_PORT="$(pulse_free_port)"
        ( _svc_exec_tied SIGQUIT "$owner" "$PULSE_PG_BIN/postgres" -D "$PULSE_PG_DIR/data" \
            -p "$PULSE_PG_PORT" -k "$PULSE_PG_DIR" -c listen_addresses=127.0.0.1 \
            -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 \
            </dev/null >>"$PULSE_PG_DIR/server.log" 2>&1 ) &
        PULSE_PG_PID=$!
        for _ in $(seq 1 300); do
            if "$PULSE_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PULSE_PG_PORT" -t 1 </dev/null; then
                break
            fi
            kill -0 "$PULSE_PG_PID" 2>/dev/null || break
            sleep 0.1
        done
        if "$PULSE_PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PULSE_PG_PORT" -t 1 </dev/null; then
            break
        fi
        kill -QUIT "$PULSE_PG_PID" 2>/dev/null || true
        wait "$PULSE_PG_PID" 2>/dev/null || true
        PULSE_PG_PID=""
        if [ "$attempt" -eq 3 ]; then
            tail -n 20 "$PULSE_PG_DIR/server.log" >&2 || true
            return 1
        fi
    done
    "$PULSE_PG_BIN/psql" -h 127.0.0.1 -p "$PULSE_PG_PORT" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
        -c "CREATE DATABASE \"$db\"" </dev/null >/dev/null
    PULSE_PG_URL="postgres://postgres@127.0.0.1:$PULSE_PG_PORT/$db"
    _svc_log "PostgreSQL $("$PULSE_PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PULSE_PG_PORT (data in $PULSE_PG_DIR)"
}

pulse_pg_stop() {
    if [ -n "$PULSE_PG_PID" ] && kill -0 "$PULSE_PG_PID" 2>/dev/null; then
        kill -QUIT "$PULSE_PG_PID" 2>/dev/null || true   # immediate shutdown: the data is thrown away
        _svc_wait_gone "$PULSE_PG_PID" 100 || kill -KILL "$PULSE_PG_PID" 2>/dev/null || true
        wait "$PULSE_PG_PID" 2>/dev/null || true
    fi
    [ -n "$PULSE_PG_DIR" ] && rm -rf "$PULSE_PG_DIR"
    PULSE_PG_PID="" PULSE_PG_DIR="" PULSE_PG_PORT="" PULSE_PG_URL=""
}

# _svc_wait_gone PID TENTHS: wait up to TENTHS/10 s for PID to exit.
_svc_wait_gone() {
    local _
    for _ in $(seq 1 "$2"); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    ! kill -0 "$1" 2>/dev/null
}

# Ask the Redis on 127.0.0.1:$1 for PONG, with nothing but bash.
_redis_ping() {
    local reply=""
    { exec 9<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&9
    IFS= read -r -t 2 reply <&9 || true
    exec 9<&- 9>&-
    [ "${reply%$'\r'}" = "+PONG" ]
}

pulse_redis_start() {
    local attempt server="${PULSE_REDIS_SERVER:-$(command -v redis-server || true)}"
    [ -n "$server" ] || { printf 'error: redis-server not found\n' >&2; return 1; }
    _svc_reap_stale 'pulse-redis.??????' redis.pid
    PULSE_REDIS_DIR="$(mktemp -d /tmp/pulse-redis.XXXXXX)"
    for attempt in 1 2 3; do
        PULSE_REDIS_PORT="$(pulse_free_port)"
        ( _svc_exec_tied SIGTERM "" "$server" --bind 127.0.0.1 --port "$PULSE_REDIS_PORT" \
            --save '' --appendonly no --dir "$PULSE_REDIS_DIR" --logfile "$PULSE_REDIS_DIR/redis.log" \
            --pidfile "$PULSE_REDIS_DIR/redis.pid" --daemonize no </dev/null >/dev/null 2>&1 ) &
        PULSE_REDIS_PID=$!
        for _ in $(seq 1 100); do
            _redis_ping "$PULSE_REDIS_PORT" && break
            kill -0 "$PULSE_REDIS_PID" 2>/dev/null || break
            sleep 0.1
        done
        if _redis_ping "$PULSE_REDIS_PORT"; then
            PULSE_REDIS_URL="redis://127.0.0.1:$PULSE_REDIS_PORT"
            _svc_log "Redis $("$server" --version | grep -o 'v=[0-9.]*' | cut -d= -f2) on 127.0.0.1:$PULSE_REDIS_PORT"
            return 0
        fi
        kill "$PULSE_REDIS_PID" 2>/dev/null || true
        wait "$PULSE_REDIS_PID" 2>/dev/null || true
        PULSE_REDIS_PID=""
    done
    tail -n 20 "$PULSE_REDIS_DIR/redis.log" >&2 || true
    return 1
}

pulse_redis_stop() {
    if [ -n "$PULSE_REDIS_PID" ] && kill -0 "$PULSE_REDIS_PID" 2>/dev/null; then
        kill "$PULSE_REDIS_PID" 2>/dev/null || true
        _svc_wait_gone "$PULSE_REDIS_PID" 50 || kill -KILL "$PULSE_REDIS_PID" 2>/dev/null || true
        wait "$PULSE_REDIS_PID" 2>/dev/null || true
    fi
    [ -n "$PULSE_REDIS_DIR" ] && rm -rf "$PULSE_REDIS_DIR"
    PULSE_REDIS_PID="" PULSE_REDIS_DIR="" PULSE_REDIS_PORT="" PULSE_REDIS_URL=""
}

pulse_services_stop() {
    pulse_redis_stop
    pulse_pg_stop
}
