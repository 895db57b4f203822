#!/usr/bin/env bash
# run.sh: run Wattline locally, what `make run` does after building bin/wattline.
#
# Without DATABASE_URL it uses the private PostgreSQL cluster of tools/pg.sh (created on
# first use, started here and stopped again on exit if this script started it). That
# cluster lives outside the checkout, in /var/tmp/wattline-pg.OWNER.NAME-HASH (one per
# clone; var/pg links to it; `tools/pg.sh dir` prints it), so that the postgres user that
# runs it as root can reach it even when the checkout is in a private home. It keeps
# the JWT secret in var/jwt_secret, applies the migrations, creates the first admin
# account (printing its password once) and serves in the foreground until Ctrl-C or
# SIGTERM, after which no server or database process is left behind.
#
# Settings come from the environment as for `wattline serve` (HTTP_PORT, WS_PORT,
# TLS_CERT, TLS_KEY, ...); WATTLINE_BIN chooses another binary.
#
# With --broker (`make run-broker`) and no AMQP_URL, it also starts the private RabbitMQ
# node of tools/rabbitmq.sh (data in var/rabbitmq; reused if it runs already, and then
# left running), serves with its AMQP_URL and prints its addresses and credentials.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly PROG="tools/run.sh"
readonly PG="$ROOT/tools/pg.sh"
readonly RABBIT="$ROOT/tools/rabbitmq.sh"
readonly ADMIN_EMAIL="admin@wattline.local"
readonly STOP_TIMEOUT=15 # seconds the server gets to shut down before SIGKILL

die() {
    echo "$PROG: $*" >&2
    exit 1
}

cd "$ROOT" # the server's default WEB_ROOT, MIGRATIONS_DIR and OPENAPI_FILE are relative
BIN="${WATTLINE_BIN:-$ROOT/bin/wattline}"
[[ -x $BIN ]] || die "$BIN not found; build it with 'make'"

SERVER_PID=""
STARTED_PG=false
STARTED_RABBIT=false
ADMIN_NOTE=""
DB_NOTE=""
BROKER_NOTE=""
WITH_BROKER=false
case "${1:-}" in
"") ;;
--broker) WITH_BROKER=true ;;
*) die "usage: $PROG [--broker]" ;;
esac

# Stops what this script started, newest first. Runs once, from whichever of the traps
# fires first.
# shellcheck disable=SC2317 # called from the traps below
cleanup() {
    trap - EXIT INT TERM
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        local waited=0
        while kill -0 "$SERVER_PID" 2>/dev/null && ((waited < STOP_TIMEOUT * 10)); do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            echo "$PROG: the server did not stop within ${STOP_TIMEOUT}s; killing it" >&2
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if $STARTED_RABBIT; then
        "$RABBIT" stop || echo "$PROG: could not stop RabbitMQ; run '$RABBIT stop'" >&2
    fi
    if $STARTED_PG; then
        "$PG" stop || echo "$PROG: could not stop PostgreSQL; run '$PG stop'" >&2
    fi
}

# shellcheck disable=SC2317 # called from the traps below
on_signal() {
    cleanup
    exit "$1"
}

trap cleanup EXIT
trap 'on_signal 130' INT
trap 'on_signal 143' TERM

use_private_cluster() {
    "$PG" init
    if ! "$PG" status >/dev/null; then
        STARTED_PG=true
        "$PG" start
    fi
    # Migrations as the owner, the server as the serving role (README, "Database roles").
    DATABASE_OWNER_URL="$("$PG" url)"
    DATABASE_URL="$("$PG" url app)"
    export DATABASE_OWNER_URL DATABASE_URL
    PRIVATE_PG=true
    DB_NOTE="  Database:          private PostgreSQL in $("$PG" dir) (tools/pg.sh)"
}

# The node is marked as ours before it starts, so a Ctrl-C during its start stops it.
use_private_broker() {
    if ! "$RABBIT" status >/dev/null; then STARTED_RABBIT=true; fi
    "$RABBIT" start >/dev/null
    AMQP_URL="$("$RABBIT" url)"
    export AMQP_URL
    BROKER_NOTE="$(printf '  AMQP:              %s\n  MQTT:              %s %s\n  Broker:            %s' \
        "$AMQP_URL" "$("$RABBIT" mqtt)" "(devices: id or serial / device token)" \
        "private RabbitMQ in $("$RABBIT" dir) (tools/rabbitmq.sh; user wattline, password in its 'password')")"
}

# The secret outlives restarts so that issued tokens stay valid across them.
use_local_jwt_secret() {
    local file="$ROOT/var/jwt_secret"
    if [[ ! -s $file ]]; then
        mkdir -p "$ROOT/var"
        (
            umask 077
            openssl rand -base64 48 | tr -d '\n' >"$file.new"
            mv "$file.new" "$file"
        ) || die "could not create $file"
    fi
    export JWT_SECRET_FILE="$file"
}

# Creates the admin account if there is no user at all; prints its password only then.
# The CLI prints the generated password either alone or on a "password: ..." line.
ensure_admin() {
    local out password
    out="$("$BIN" user add --email "$ADMIN_EMAIL" --name Admin --role admin \
        --generate-password --if-none)" || die "could not create the admin account"
    password="$(sed -n 's/^password:[[:space:]]*//p' <<<"$out" | head -n 1)"
    [[ -z $password && -n $out && $out != *[[:space:]]* ]] && password="$out"
    if [[ -z $out ]]; then
        ADMIN_NOTE="Admin account exists: log in with the credentials printed on the first run."
    elif [[ -n $password ]]; then
        ADMIN_NOTE="$(printf 'Admin login (shown only this once, note it down):\n  email:    %s\n  password: %s' \
            "$ADMIN_EMAIL" "$password")"
    else
        ADMIN_NOTE="$(printf 'Admin account %s created (shown only this once, note it down):\n%s' \
            "$ADMIN_EMAIL" "$out")"
    fi
}

# Returns once the HTTP port accepts connections, or fails if the server exits first.
wait_for_port() {
    local host="$1" port="$2" tries=0
    while ! (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
        kill -0 "$SERVER_PID" 2>/dev/null || return 1
        tries=$((tries + 1))
        ((tries < 300)) || return 1
        sleep 0.1
    done
}

print_banner() {
    local http_scheme=http ws_scheme=ws host="${HTTP_ADDR:-127.0.0.1}"
    if [[ -n ${TLS_CERT:-} ]]; then
        http_scheme=https
        ws_scheme=wss
    fi
    # A wildcard address is reachable locally through the loopback interface.
    [[ $host == 0.0.0.0 || $host == "::" ]] && host=127.0.0.1
    [[ $host == *:* ]] && host="[$host]"
    local ws_url="${PUBLIC_WS_URL:-$ws_scheme://$host:${WS_PORT:-8081}/ws}"
    echo
    echo "Wattline is running (Ctrl-C stops it)."
    echo "  Dashboard and API: $http_scheme://$host:${HTTP_PORT:-8080}/"
    echo "  WebSocket:         $ws_url"
    [[ -z $DB_NOTE ]] || echo "$DB_NOTE"
    [[ -z $BROKER_NOTE ]] || echo "$BROKER_NOTE"
    echo "$ADMIN_NOTE"
    echo
}

PRIVATE_PG=false
if [[ -z ${DATABASE_URL:-} ]]; then
    use_private_cluster
fi
if [[ -z ${JWT_SECRET:-} && -z ${JWT_SECRET_FILE:-} ]]; then
    use_local_jwt_secret
fi
if $WITH_BROKER && [[ -z ${AMQP_URL:-} ]]; then
    use_private_broker
fi

"$BIN" migrate
# The login role joins the group role the migrations made.
if $PRIVATE_PG; then "$PG" app-role; fi
ensure_admin

"$BIN" serve --no-migrate &
SERVER_PID=$!

probe_host="${HTTP_ADDR:-127.0.0.1}"
[[ $probe_host == 0.0.0.0 ]] && probe_host=127.0.0.1
[[ $probe_host == "::" ]] && probe_host=::1
if wait_for_port "$probe_host" "${HTTP_PORT:-8080}"; then
    print_banner
elif kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "$PROG: the server does not accept connections on port ${HTTP_PORT:-8080} yet" >&2
fi

# `wait` returns early when a trapped signal arrives; the trap then cleans up and exits.
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=""
if ((status != 0)); then
    echo "$PROG: the server exited with status $status" >&2
fi
exit "$status"
