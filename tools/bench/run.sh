#!/usr/bin/env bash
# run.sh: `make bench`, Wattline's performance benchmark (see tools/bench/README.md).
#
#   tools/bench/run.sh
#
# Environment: BENCH_QUICK=1 shortens every phase, to try the machinery out (its figures
# are not comparable); BENCH_ONLY=alerts,queries runs only those scenarios; BENCH_REPEAT=3
# runs each scenario three times and prints the median of each figure with its spread;
# BENCH_PG_STATS=1 loads pg_stat_statements and stores each phase's top statements in
# the JSON (for profiling; it costs the database a little); WATTLINE_BIN=path
# benchmarks that server binary instead of building bin/wattline; server settings
# (HTTP_THREADS, DB_POOL_SIZE, ...) pass through.
#
# Builds the optimised server (make bin/wattline, no sanitizers) and the two ceiling
# programs, starts a throwaway PostgreSQL configured like production (fsync and
# synchronous_commit on), then hands over to bench.js, which starts the server, creates
# the users and devices through the API, runs the scenarios, prints the table and writes
# tools/bench/results/bench-<timestamp>.json. Everything it starts lives under one
# temporary directory and is stopped and removed on exit, Ctrl-C included.
#
# Exit status: 0 every target met, 1 a target missed, 2 the benchmark could not run.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
readonly ROOT
readonly PROG="tools/bench/run.sh"
readonly BENCH_DIR="$ROOT/tools/bench"
readonly HELPER_DIR="$ROOT/build/bench" # the ceiling programs (build/ is git-ignored)
readonly RUN_AS=postgres                # PostgreSQL refuses to run as root
readonly PG_USER=wattline
readonly PG_DB=wattline
# The scale scenario's 50,000 WebSocket sessions, for the server and the client
# processes (each its own count): raised for the bench's processes only.
readonly OPEN_FILES=131072

die() {
    echo "$PROG: $*" >&2
    exit 2
}

pg_bindir() {
    if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
        echo /usr/lib/postgresql/15/bin
    elif command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/pgbench" ]]; then
        pg_config --bindir
    else
        die "PostgreSQL 15 programs not found; run 'tools/deps.sh test'"
    fi
}

preflight() {
    local missing=() cmd
    for cmd in cc make pkg-config wrk node; do
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
    done
    ((${#missing[@]} == 0)) || die "missing: ${missing[*]}; run 'tools/deps.sh test'"
    [[ -x $PG_BIN/pgbench && -x $PG_BIN/psql && -x $PG_BIN/initdb ]] ||
        die "pgbench, psql or initdb missing in $PG_BIN; run 'tools/deps.sh test'"
    [[ -d $ROOT/tests/node_modules/ws ]] ||
        die "tests/node_modules/ws missing; run 'tools/deps.sh test'"
    if [[ $EUID -eq 0 ]]; then
        id "$RUN_AS" >/dev/null 2>&1 || die "user '$RUN_AS' does not exist; install PostgreSQL"
    fi
}

# The ceiling programs, rebuilt when their source is newer. Same warnings as the server.
build_helper() {
    local pkgs="$2" src="$BENCH_DIR/$1.c" out="$HELPER_DIR/$1"
    [[ -x $out && $out -nt $src ]] && return 0
    mkdir -p "$HELPER_DIR"
    # shellcheck disable=SC2046 # pkg-config prints several words on purpose
    cc -std=c17 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Wshadow -Wmissing-prototypes \
        -Wstrict-prototypes -Wformat=2 -Werror $(pkg-config --cflags "$pkgs") \
        -o "$out" "$src" $(pkg-config --libs "$pkgs") -lpthread ||
        die "could not build $src"
}

build() {
    if [[ -n ${WATTLINE_BIN:-} ]]; then
        [[ -x $WATTLINE_BIN ]] || die "WATTLINE_BIN=$WATTLINE_BIN is not an executable"
        SERVER_BIN="$(realpath "$WATTLINE_BIN")"
        echo "$PROG: benchmarking $SERVER_BIN; building the ceiling programs"
    else
        echo "$PROG: building bin/wattline (release) and the ceiling programs"
        make -C "$ROOT" --no-print-directory bin/wattline >"$WORK/build.log" 2>&1 || {
            tail -n 30 "$WORK/build.log" >&2
            die "make bin/wattline failed"
        }
        SERVER_BIN="$ROOT/bin/wattline"
    fi
    build_helper mhd204 libmicrohttpd
    build_helper notify_rtt libpq
    build_helper grouped_sql libpq
}

# ---- cleanup ------------------------------------------------------------------------

WORK=""
PG_DATA=""
SERVER_BIN=""

as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

# bench.js records every process it starts as "pid starttime" in $WORK/pids; a pid is
# only killed while its start time still matches, so a recycled pid is never hit.
# shellcheck disable=SC2317 # called from cleanup, which the traps call
kill_recorded() {
    local file="$WORK/pids" pid start now
    [[ -f $file ]] || return 0
    while read -r pid start; do
        now="$(sed 's/^.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f20)" || continue
        [[ -n $now && $now == "$start" ]] && kill -KILL "$pid" 2>/dev/null
    done <"$file"
    return 0
}

# shellcheck disable=SC2317 # called from the traps below
cleanup() {
    trap - EXIT INT TERM HUP
    if [[ -n $WORK && -d $WORK ]]; then
        kill_recorded
        if [[ -n $PG_DATA && -f $PG_DATA/postmaster.pid ]]; then
            as_owner "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m immediate -w -t 30 >/dev/null 2>&1 ||
                echo "$PROG: could not stop PostgreSQL in $PG_DATA" >&2
        fi
        rm -rf "$WORK"
    fi
}

# shellcheck disable=SC2317 # called from the traps below
on_signal() {
    echo "$PROG: interrupted; cleaning up" >&2
    cleanup
    exit "$1"
}

# ---- PostgreSQL ---------------------------------------------------------------------

# A loopback port nobody listens on now (PostgreSQL start retries if one is taken since).
free_port() {
    local port
    for _ in $(seq 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "no free port found"
}

# Production settings for this machine: durability exactly as deployed (fsync,
# synchronous_commit, full_page_writes), memory for 24 GiB shared with the server and
# the load generators, and a WAL size that keeps checkpoints from dominating a
# 10-minute run (a production server would set the same).
write_pg_conf() {
    local port="$1"
    as_owner tee "$PG_DATA/bench.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$WORK/pg'
max_connections = 200
fsync = on
synchronous_commit = on
full_page_writes = on
wal_level = replica
shared_buffers = 1GB
effective_cache_size = 16GB
work_mem = 16MB
maintenance_work_mem = 512MB
max_wal_size = 8GB
min_wal_size = 1GB
checkpoint_timeout = 15min
checkpoint_completion_target = 0.9
random_page_cost = 1.1
max_worker_processes = 2
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
EOF
    if [[ ${BENCH_PG_STATS:-} == 1 ]]; then
        as_owner tee -a "$PG_DATA/bench.conf" >/dev/null <<EOF
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track_planning = on
EOF
    fi
}

start_postgres() {
    mkdir -p "$WORK/pg"
    if [[ $EUID -eq 0 ]]; then
        chown "$RUN_AS:" "$WORK/pg"
    fi
    PG_DATA="$WORK/pg/data"
    as_owner "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" -A trust -E UTF8 --locale=C.UTF-8 \
        --no-instructions >"$WORK/initdb.log" 2>&1 || {
        cat "$WORK/initdb.log" >&2
        die "initdb failed"
    }
    echo "include = 'bench.conf'" | as_owner tee -a "$PG_DATA/postgresql.conf" >/dev/null
    local port attempt
    for attempt in 1 2 3 4 5; do
        port="$(free_port)"
        write_pg_conf "$port"
        if as_owner "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$WORK/pg/postgres.log" -w -t 60 \
            -s >/dev/null 2>&1; then
            PG_PORT="$port"
            "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" -d postgres \
                -c "CREATE DATABASE $PG_DB" || die "could not create the database"
            return 0
        fi
        grep -qi 'could not bind\|already in use' "$WORK/pg/postgres.log" 2>/dev/null ||
            break
        echo "$PROG: port $port taken (attempt $attempt); trying another" >&2
    done
    tail -n 20 "$WORK/pg/postgres.log" >&2 || true
    die "PostgreSQL did not start"
}

# ---- main ---------------------------------------------------------------------------

PG_BIN="$(pg_bindir)"
readonly PG_BIN
PG_PORT=""

preflight
trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM
trap 'on_signal 129' HUP

WORK="$(mktemp -d /tmp/wattline-bench.XXXXXX)"
chmod 0755 "$WORK" # the postgres user runs the cluster inside it

# Root may raise the hard limit too; others get theirs, and the scale scenario reports
# how many sessions it reached.
ulimit -Hn "$OPEN_FILES" 2>/dev/null || true
ulimit -n "$OPEN_FILES" 2>/dev/null || ulimit -n "$(ulimit -Hn)"
build
start_postgres

mkdir -p "$BENCH_DIR/results"
status=0
BENCH_WORK="$WORK" \
    BENCH_PG_URL="postgresql://$PG_USER@127.0.0.1:$PG_PORT/$PG_DB" \
    BENCH_PG_BIN="$PG_BIN" \
    BENCH_PG_DATA="$PG_DATA" \
    BENCH_HELPERS="$HELPER_DIR" \
    BENCH_SERVER_BIN="$SERVER_BIN" \
    BENCH_RESULTS="$BENCH_DIR/results" \
    node "$BENCH_DIR/bench.js" || status=$?
exit "$status"
