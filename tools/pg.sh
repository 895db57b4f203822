#!/usr/bin/env bash
# pg.sh: the private PostgreSQL cluster behind `make run`.
#
#   tools/pg.sh init | start | stop | status | url [app] | app-role | dir | destroy | psql [ARGS...]
#
# `url` is the owner's (the superuser, which migrates); `url app` the serving login role
# wattline_app's, which `app-role` creates (once the migrations made its group role
# wattline_server: README, "Database roles").
#
# Where it lives: outside the checkout, in /var/tmp/wattline-pg.OWNER.NAME-HASH, where
# OWNER is the system user that runs the cluster, NAME the checkout's directory name and
# HASH a digest of the checkout's absolute path, so every clone has its own cluster and
# two clones never share one. PostgreSQL refuses to run as root, so as root every
# server-side program runs as the `postgres` system user; a checkout under a home
# directory that other users cannot enter (mode 0700, like /root) is out of that user's
# reach, and /var/tmp is not: it is reachable by everyone, survives reboots (Debian never
# cleans it) and suits state that can be rebuilt. The directory is owned by OWNER with
# mode 0700, and is refused when it exists with another owner or mode. var/pg in the
# checkout is a symbolic link to it (`tools/pg.sh dir` prints it); WATTLINE_PG_DIR
# overrides the place. A checkout that still has a real var/pg directory from before
# keeps using it. Moving a checkout starts a new, empty cluster: `tools/pg.sh destroy`
# (before the move) removes the old one.
#
# Inside: data in data/, the unix socket in run/, the server log in log/postgresql.log,
# and in clone the checkout it belongs to. It listens on no TCP port at all, only on the
# socket, and trusts local connections: run/ is mode 0700, so only its owner (and root)
# can reach the socket. The superuser and the database are both called wattline.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly PROG="tools/pg.sh"
readonly RUN_AS=postgres # the system user that runs the cluster when we are root
readonly LINK="$ROOT/var/pg"
if [[ $EUID -eq 0 ]]; then OWNER="$RUN_AS"; else OWNER="$(id -un)"; fi
readonly OWNER

# The cluster's directory for this checkout (see the header).
default_pg_dir() {
    if [[ -d $LINK && ! -L $LINK ]]; then
        echo "$LINK" # the layout before clusters moved out of the checkout
        return
    fi
    local name hash
    name="$(basename "$ROOT" | tr -c 'A-Za-z0-9._\n-' '_')"
    hash="$(cd "$ROOT" && pwd -P | tr -d '\n' | sha256sum | cut -c1-12)"
    echo "/var/tmp/wattline-pg.$OWNER.${name:0:32}-$hash"
}

PG_DIR="${WATTLINE_PG_DIR:-$(default_pg_dir)}"
readonly PG_DIR
readonly DATA_DIR="$PG_DIR/data"
readonly SOCKET_DIR="$PG_DIR/run"
readonly LOG_DIR="$PG_DIR/log"
readonly LOG_FILE="$LOG_DIR/postgresql.log"
readonly PORT=5432 # only names the socket file (.s.PGSQL.5432); no TCP listener
readonly DB_NAME=wattline
readonly DB_USER=wattline
readonly APP_USER=wattline_app     # the serving login role
readonly APP_GROUP=wattline_server # its group role, made and granted by the migrations

die() {
    echo "$PROG: $*" >&2
    exit 1
}

usage() {
    echo "usage: $PROG init | start | stop | status | url [app] | app-role | dir | destroy | psql [ARGS...]" >&2
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

# Runs a PostgreSQL program as the cluster's owner, from /: the working directory may be
# one the owner cannot enter (a checkout under /root), which initdb and psql warn about.
as_owner() {
    if [[ $EUID -eq 0 ]]; then
        (cd / && runuser -u "$RUN_AS" -- "$@")
    else
        "$@"
    fi
}

# As root, the postgres user must reach the cluster's directory: names the first parent
# it cannot enter. Only a WATTLINE_PG_DIR (or an old var/pg) can be out of its reach.
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
    blocked="$(as_owner sh -c \
        'for d; do [ ! -e "$d" ] || [ -x "$d" ] || { echo "$d"; exit; }; done' sh "${dirs[@]}")"
    [[ -z $blocked ]] ||
        die "user '$RUN_AS' cannot enter $blocked, so it cannot run the cluster in $PG_DIR;" \
            "unset WATTLINE_PG_DIR (or remove an old var/pg) to use /var/tmp"
}

# In a world-writable parent like /var/tmp, a directory (or symbolic link) someone else
# made first must never be used: the cluster's directory must be OWNER's, mode 0700.
check_pg_dir() {
    [[ ! -L $PG_DIR ]] || die "$PG_DIR is a symbolic link; remove it, or set WATTLINE_PG_DIR"
    [[ -d $PG_DIR ]] || die "$PG_DIR is not a directory"
    local uid mode
    read -r uid mode < <(stat -c '%u %a' "$PG_DIR")
    [[ $uid == "$(id -u "$OWNER")" && $mode == 700 ]] ||
        die "$PG_DIR exists but is not $OWNER's with mode 0700; remove it, or set WATTLINE_PG_DIR"
}

# Creates the cluster's directory, owned by OWNER with mode 0700, or checks the one there.
make_pg_dir() {
    mkdir -p "$(dirname "$PG_DIR")"
    as_owner mkdir -m 0700 "$PG_DIR" 2>/dev/null || true
    check_pg_dir
    as_owner mkdir -p -m 0700 "$SOCKET_DIR" "$LOG_DIR"
    printf '%s\n' "$ROOT" | as_owner tee "$PG_DIR/clone" >/dev/null
}

# var/pg in the checkout points at the cluster, for people looking for it there.
link_from_checkout() {
    [[ $PG_DIR == "$LINK" ]] && return 0
    if [[ -L $LINK || ! -e $LINK ]]; then
        mkdir -p "$ROOT/var"
        ln -sfn "$PG_DIR" "$LINK"
    fi
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
        check_pg_dir
        link_from_checkout
        return 0
    fi
    make_pg_dir
    link_from_checkout
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
    check_pg_dir
    is_running && return 0
    start_cluster "$DATA_DIR"
}

cmd_stop() {
    is_running || return 0
    stop_cluster "$DATA_DIR" || die "PostgreSQL did not stop; see $LOG_FILE"
}

# Stops the cluster and removes it, and var/pg if it points at it.
cmd_destroy() {
    cmd_stop
    if [[ -d $PG_DIR && ! -L $PG_DIR ]]; then
        rm -rf "$PG_DIR"
        echo "$PROG: removed the PostgreSQL cluster in $PG_DIR"
    fi
    if [[ -L $LINK && $(readlink "$LINK") == "$PG_DIR" ]]; then rm -f "$LINK"; fi
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
    local user="$DB_USER"
    [[ ${1:-} == app ]] && user="$APP_USER"
    printf 'postgresql:///%s?host=%s&port=%s&user=%s\n' \
        "$DB_NAME" "$(url_encode "$SOCKET_DIR")" "$PORT" "$user"
}

# The serving login role, a member of the group role the migrations grant; no password:
# the cluster trusts its socket, which only its owner can reach.
cmd_app_role() {
    is_running || die "the cluster is not running; run '$PROG start'"
    "$BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKET_DIR" -p "$PORT" -U "$DB_USER" "$DB_NAME" <<SQL
DO \$\$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$APP_USER') THEN
        CREATE ROLE $APP_USER LOGIN IN ROLE $APP_GROUP;
    END IF;
END;
\$\$;
SQL
}

cmd_psql() {
    is_running || die "the cluster is not running; run '$PROG start'"
    exec "$BINDIR/psql" -h "$SOCKET_DIR" -p "$PORT" -U "$DB_USER" "$DB_NAME" "$@"
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
case "$command" in
init | start | stop | status | app-role | dir | destroy) [[ $# -eq 0 ]] || usage ;;
url) [[ $# -eq 0 || ($# -eq 1 && $1 == app) ]] || usage ;;
esac
case "$command" in
init) cmd_init ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) cmd_url "$@" ;;
app-role) cmd_app_role ;;
dir) echo "$PG_DIR" ;;
destroy) cmd_destroy ;;
psql) cmd_psql "$@" ;;
*) usage ;;
esac
