#!/usr/bin/env bash
# pg.sh: the private PostgreSQL cluster behind `make run`.
#
#   tools/pg.sh init | start | stop | status | url | psql [ARGS...]
#
# The cluster lives in var/pg (WATTLINE_PG_DIR overrides): data in data/, the unix
# socket in run/, the server log in log/postgresql.log. It listens on no TCP port at
# all, only on the socket, and trusts local connections: run/ is mode 0700, so only its
# owner (and root) can reach the socket. The superuser and the database are both called
# wattline. PostgreSQL refuses to run as root, so as root every server-side program runs
# as the `postgres` system user, which then owns var/pg.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly PROG="tools/pg.sh"
readonly PG_DIR="${WATTLINE_PG_DIR:-$ROOT/var/pg}"
readonly DATA_DIR="$PG_DIR/data"
readonly SOCKET_DIR="$PG_DIR/run"
readonly LOG_DIR="$PG_DIR/log"
readonly LOG_FILE="$LOG_DIR/postgresql.log"
readonly PORT=5432 # only names the socket file (.s.PGSQL.5432); no TCP listener
readonly DB_NAME=wattline
readonly DB_USER=wattline
readonly RUN_AS=postgres # the system user that runs the cluster when we are root

die() {
    echo "$PROG: $*" >&2
    exit 1
}

usage() {
    echo "usage: $PROG init | start | stop | status | url | psql [ARGS...]" >&2
    exit 2
}

pg_bindir() {
    if [[ -x /usr/lib/postgresql/15/bin/pg_ctl ]]; then
        echo /usr/lib/postgresql/15/bin
    elif command -v pg_config >/dev/null 2>&1 && [[ -x "$(pg_config --bindir)/pg_ctl" ]]; then
        pg_config --bindir
    else
        die "PostgreSQL server programs not found; run 'tools/deps.sh run'"
    fi
}

BINDIR="$(pg_bindir)"
readonly BINDIR

# Runs a PostgreSQL program as the cluster's owner.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        runuser -u "$RUN_AS" -- "$@"
    else
        "$@"
    fi
}

# As root, the postgres user must reach var/pg: names the first parent it cannot enter.
check_owner_can_reach() {
    [[ $EUID -eq 0 ]] || return 0
    id "$RUN_AS" >/dev/null 2>&1 ||
        die "user '$RUN_AS' does not exist; install PostgreSQL with 'tools/deps.sh run'"
    local parent dirs=()
    parent="$(dirname "$PG_DIR")"
    while :; do
        dirs=("$parent" "${dirs[@]}")
        [[ $parent == / ]] && break
        parent="$(dirname "$parent")"
    done
    local blocked
    # shellcheck disable=SC2016 # the inner script expands its own "$d"
    blocked="$(runuser -u "$RUN_AS" -- sh -c \
        'for d; do [ ! -e "$d" ] || [ -x "$d" ] || { echo "$d"; exit; }; done' sh "${dirs[@]}")"
    [[ -z $blocked ]] ||
        die "user '$RUN_AS' cannot enter $blocked, so it cannot run the cluster in $PG_DIR; fix: chmod o+x $blocked"
}

is_initialized() {
    [[ -f $DATA_DIR/PG_VERSION ]]
}

is_running() {
    is_initialized && as_owner "$BINDIR/pg_ctl" status -D "$DATA_DIR" >/dev/null 2>&1
}

# PostgreSQL settings that name absolute paths are rewritten on every start, so the
# cluster keeps working when the checkout moves.
write_local_conf() {
    local data="$1" quoted_socket="${SOCKET_DIR//\'/\'\'}"
    as_owner tee "$data/wattline.conf" >/dev/null <<EOF
# Written by $PROG on every start; edit $PROG instead.
listen_addresses = ''
port = $PORT
unix_socket_directories = '$quoted_socket'
unix_socket_permissions = 0700
EOF
}

start_cluster() {
    local data="$1"
    write_local_conf "$data"
    as_owner "$BINDIR/pg_ctl" start -D "$data" -l "$LOG_FILE" -w -t 60 -s ||
        die "PostgreSQL did not start; see $LOG_FILE"
}

stop_cluster() {
    as_owner "$BINDIR/pg_ctl" stop -D "$1" -m fast -w -t 60 -s
}

cmd_init() {
    check_owner_can_reach
    if is_initialized; then
        return 0
    fi
    mkdir -p "$PG_DIR" "$SOCKET_DIR" "$LOG_DIR"
    chmod 0700 "$PG_DIR" "$SOCKET_DIR"
    if [[ $EUID -eq 0 ]]; then
        chown -R "$RUN_AS:" "$PG_DIR"
    fi
    # Build the cluster next to its final place and rename it at the end, so an
    # interrupted init leaves nothing that looks initialized.
    local staging="$PG_DIR/data.new"
    rm -rf "$staging"
    echo "$PROG: creating the PostgreSQL cluster in $DATA_DIR"
    as_owner "$BINDIR/initdb" -D "$staging" -U "$DB_USER" -E UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256 >"$LOG_DIR/initdb.log" 2>&1 ||
        die "initdb failed; see $LOG_DIR/initdb.log"
    echo "include_if_exists = 'wattline.conf'" | as_owner tee -a "$staging/postgresql.conf" >/dev/null
    start_cluster "$staging"
    local created=0
    as_owner "$BINDIR/createdb" -h "$SOCKET_DIR" -p "$PORT" -U "$DB_USER" "$DB_NAME" || created=$?
    stop_cluster "$staging"
    ((created == 0)) || die "could not create database $DB_NAME; see $LOG_FILE"
    mv "$staging" "$DATA_DIR"
}

cmd_start() {
    is_initialized || die "no cluster in $PG_DIR; run '$PROG init' first"
    check_owner_can_reach
    is_running && return 0
    start_cluster "$DATA_DIR"
}

cmd_stop() {
    is_running || return 0
    stop_cluster "$DATA_DIR" || die "PostgreSQL did not stop; see $LOG_FILE"
}

cmd_status() {
    if is_running; then
        echo "running: $(cmd_url)"
    elif is_initialized; then
        echo "stopped ($PG_DIR)"
        return 3
    else
        echo "not initialized ($PG_DIR)"
        return 4
    fi
}

# Percent-encodes a value for a URL query (unreserved characters and '/' pass through).
url_encode() {
    local LC_ALL=C s="$1" out="" c i
    for ((i = 0; i < ${#s}; i++)); do
        c="${s:i:1}"
        case "$c" in
        [A-Za-z0-9._~/-]) out+="$c" ;;
        *) out+="$(printf '%%%02X' "'$c")" ;;
        esac
    done
    printf '%s' "$out"
}

# libpq takes a socket directory as the host: an absolute path in the host parameter.
cmd_url() {
    printf 'postgresql:///%s?host=%s&port=%s&user=%s\n' \
        "$DB_NAME" "$(url_encode "$SOCKET_DIR")" "$PORT" "$DB_USER"
}

cmd_psql() {
    is_running || die "the cluster is not running; run '$PROG start'"
    exec "$BINDIR/psql" -h "$SOCKET_DIR" -p "$PORT" -U "$DB_USER" "$DB_NAME" "$@"
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
init | start | stop | status | url) [[ $# -eq 0 ]] || usage ;;
esac
case "$command" in
init) cmd_init ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) cmd_url ;;
psql) cmd_psql "$@" ;;
*) usage ;;
esac
