#!/usr/bin/env bash
# rabbitmq.sh: the private RabbitMQ node behind `make run-broker` and the broker tests.
#
#   tools/rabbitmq.sh start | stop | status | url | mqtt | env | dir | destroy | ctl ARGS...
#
# It runs Debian's RabbitMQ (the rabbitmq-server package) as the invoking user, never as a
# system service: /usr/sbin/rabbitmq-server would switch to the rabbitmq user, who cannot
# enter a checkout in /root, so this calls the scripts in /usr/lib/rabbitmq/bin directly
# and everything the node writes lives in one folder of ours (mode 0700):
#
#   WATTLINE_RABBITMQ_DIR   the folder (default var/rabbitmq in the checkout); inside:
#     rabbitmq.conf, enabled_plugins   written on every start from the settings below
#     password                          the wattline user's password, made on first start
#     home/.erlang.cookie               the node's own cookie (HOME points here for the node
#                                       and for rabbitmqctl, so both read the same one)
#     mnesia/, log/, rabbitmq.pid       data, logs (log/startup.log holds the VM's output)
#     node.conf                         the ports of the node last started, for the others
#
# Settings, read by `start` (the other commands use those of the node last started):
#   WATTLINE_AMQP_PORT (5672), WATTLINE_MQTT_PORT (1883), WATTLINE_RABBITMQ_DIST_PORT
#   (25672), WATTLINE_EPMD_PORT (4369), HTTP_PORT (8080: Wattline's, which the HTTP auth
#   backend asks), WATTLINE_RABBITMQ_START_TIMEOUT (60 s).
#
# Every listener is on 127.0.0.1 only: AMQP, MQTT, Erlang distribution and the epmd the VM
# starts when none answers on the epmd port. An epmd may be shared by several nodes (each
# registers its own name), so `stop` ends it only when no node is registered with it any
# more. Guest never exists: the node's first boot creates the administrator `wattline`
# with the random password, and that user (`default_user`) is what AMQP_URL names. MQTT
# clients (devices) are not RabbitMQ users: after the internal users, RabbitMQ asks
# Wattline's /api/v1/broker/auth/* (rabbitmq_auth_backend_http, behind
# rabbitmq_auth_backend_cache for at most 1 s).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly PROG="tools/rabbitmq.sh"
readonly RMQ_BIN=/usr/lib/rabbitmq/bin
readonly USER_NAME=wattline
readonly STOP_TIMEOUT=20 # seconds a node gets to shut down cleanly before SIGKILL

DIR="${WATTLINE_RABBITMQ_DIR:-$ROOT/var/rabbitmq}"
[[ $DIR == /* ]] || DIR="$PWD/$DIR"
readonly DIR
readonly NODE_CONF="$DIR/node.conf"
readonly PID_FILE="$DIR/rabbitmq.pid"
readonly LAUNCHER_PID_FILE="$DIR/launcher.pid"
readonly LOG_DIR="$DIR/log"
readonly STARTUP_LOG="$LOG_DIR/startup.log"

die() {
    echo "$PROG: $*" >&2
    exit 1
}

usage() {
    echo "usage: $PROG start | stop | status | url | mqtt | env | dir | destroy | ctl ARGS..." >&2
    exit 2
}

# One node per folder: its name carries a digest of the folder's absolute path, so two
# checkouts (or two tests) never talk to each other's node through a shared epmd.
node_name() {
    local hash
    hash="$(printf '%s' "$DIR" | sha256sum | cut -c1-12)"
    echo "wattline-$hash@localhost"
}
NODENAME="$(node_name)"
readonly NODENAME

# The ports: those of the node last started (node.conf) unless `start` is given others.
AMQP_PORT=5672
MQTT_PORT=1883
DIST_PORT=25672
EPMD_PORT=4369
HTTP_PORT_FOR_AUTH=8080
if [[ -f $NODE_CONF ]]; then
    while IFS='=' read -r key value; do
        [[ $value =~ ^[0-9]+$ ]] || continue
        case "$key" in
        amqp_port) AMQP_PORT="$value" ;;
        mqtt_port) MQTT_PORT="$value" ;;
        dist_port) DIST_PORT="$value" ;;
        epmd_port) EPMD_PORT="$value" ;;
        http_port) HTTP_PORT_FOR_AUTH="$value" ;;
        esac
    done <"$NODE_CONF"
fi

valid_port() {
    if [[ ! $2 =~ ^[0-9]+$ ]] || (($2 < 1 || $2 > 65535)); then
        die "$1 must be a port number, not '$2'"
    fi
}

# The environment of the node and of rabbitmqctl: every file in DIR, nothing from
# /etc/rabbitmq (RABBITMQ_CONF_ENV_FILE names a file that does not exist), our cookie.
node_env() {
    export HOME="$DIR/home"
    export RABBITMQ_NODENAME="$NODENAME"
    export RABBITMQ_USE_LONGNAME=false
    export RABBITMQ_CONF_ENV_FILE="$DIR/rabbitmq-env.conf"
    export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
    export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
    export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
    export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
    export RABBITMQ_LOG_BASE="$LOG_DIR"
    export RABBITMQ_PID_FILE="$PID_FILE"
    export RABBITMQ_DIST_PORT="$DIST_PORT"
    export ERL_EPMD_PORT="$EPMD_PORT"
    export ERL_EPMD_ADDRESS=127.0.0.1
    # The distribution listener on loopback too; rabbitmqctl is a (hidden) node as well,
    # and takes any free port instead of the shared 35672-35682 range.
    export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
    export RABBITMQ_CTL_DIST_PORT_MIN=0
    export RABBITMQ_CTL_DIST_PORT_MAX=0
}

password() {
    [[ -s $DIR/password ]] || die "no password in $DIR; run '$PROG start' first"
    cat "$DIR/password"
}

amqp_url() {
    printf 'amqp://%s:%s@127.0.0.1:%s/%%2f\n' "$USER_NAME" "$(password)" "$AMQP_PORT"
}

mqtt_url() {
    printf 'mqtt://127.0.0.1:%s\n' "$MQTT_PORT"
}

# The folder is ours, private, and not a symbolic link someone else left there.
make_dir() {
    [[ ! -L $DIR ]] || die "$DIR is a symbolic link; remove it, or set WATTLINE_RABBITMQ_DIR"
    mkdir -p "$(dirname "$DIR")"
    mkdir -m 0700 "$DIR" 2>/dev/null || true
    [[ -d $DIR ]] || die "$DIR is not a directory"
    local uid mode
    read -r uid mode < <(stat -c '%u %a' "$DIR")
    [[ $uid == "$(id -u)" && $mode == 700 ]] ||
        die "$DIR exists but is not yours with mode 0700; remove it, or set WATTLINE_RABBITMQ_DIR"
    mkdir -m 0700 "$DIR/home" "$LOG_DIR" 2>/dev/null || true
    [[ -d $DIR/home && -d $LOG_DIR ]] || die "could not create $DIR/home and $LOG_DIR"
}

# Secrets are made once and outlive restarts: the password is in the node's database
# from its first boot on, and the cookie must not change under a running node.
make_secrets() {
    (
        umask 077
        if [[ ! -s $DIR/password ]]; then
            # The user and its password are made at the node's first boot only.
            [[ ! -d $DIR/mnesia ]] || {
                echo "$PROG: $DIR/password is gone but the node's data is not;" \
                    "'$PROG destroy' starts over" >&2
                exit 1
            }
            openssl rand -hex 24 >"$DIR/password.new"
            mv "$DIR/password.new" "$DIR/password"
        fi
        if [[ ! -s $DIR/home/.erlang.cookie ]]; then
            openssl rand -hex 20 | tr -d '\n' | tr 'a-f' 'A-F' >"$DIR/home/.erlang.cookie.new"
            chmod 0400 "$DIR/home/.erlang.cookie.new"
            mv "$DIR/home/.erlang.cookie.new" "$DIR/home/.erlang.cookie"
        fi
    ) || die "could not create the secrets in $DIR"
}

# Rewritten on every start, so a changed port or HTTP_PORT takes effect. default_user
# and default_pass only matter on the first boot, when they replace guest.
write_config() {
    local auth="http://127.0.0.1:$HTTP_PORT_FOR_AUTH/api/v1/broker/auth"
    (
        umask 077
        cat >"$DIR/rabbitmq.conf" <<EOF
# Written by $PROG on every start; edit $PROG instead.
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
# Every listener is on loopback, so no user needs the loopback-only restriction.
loopback_users = none
default_vhost = /
default_user = $USER_NAME
default_pass = $(password)
default_user_tags.administrator = true
default_permissions.configure = .*
default_permissions.read = .*
default_permissions.write = .*

mqtt.listeners.tcp.default = 127.0.0.1:$MQTT_PORT
mqtt.allow_anonymous = false
mqtt.vhost = /
mqtt.exchange = amq.topic

# Internal users (Wattline itself, gateways) first; then devices, which Wattline knows.
auth_backends.1 = internal
auth_backends.2 = cache
auth_cache.cached_backend = http
auth_cache.cache_ttl = 1000
auth_http.http_method = post
auth_http.user_path = $auth/user
auth_http.vhost_path = $auth/vhost
auth_http.resource_path = $auth/resource
auth_http.topic_path = $auth/topic

log.file.level = info
log.console = false
EOF
        echo '[rabbitmq_mqtt,rabbitmq_auth_backend_http,rabbitmq_auth_backend_cache].' \
            >"$DIR/enabled_plugins"
        printf 'amqp_port=%s\nmqtt_port=%s\ndist_port=%s\nepmd_port=%s\nhttp_port=%s\n' \
            "$AMQP_PORT" "$MQTT_PORT" "$DIST_PORT" "$EPMD_PORT" "$HTTP_PORT_FOR_AUTH" \
            >"$NODE_CONF"
    ) || die "could not write the configuration in $DIR"
}

# True when pid is alive and is a VM of this folder's node (not a recycled pid).
is_our_beam() {
    local pid="$1"
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    [[ -r /proc/$pid/environ ]] || return 1
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qxF "RABBITMQ_NODENAME=$NODENAME"
}

beam_pid() {
    local pid=""
    if [[ -f $PID_FILE ]]; then read -r pid <"$PID_FILE" || true; fi
    is_our_beam "$pid" && echo "$pid"
}

is_running() {
    [[ -n $(beam_pid) ]]
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

print_summary() {
    echo "RabbitMQ node $NODENAME is running (data in $DIR)."
    echo "  AMQP:  $(amqp_url)"
    echo "  MQTT:  $(mqtt_url) (devices: username = id or serial, password = device token)"
    echo "  user:  $USER_NAME (administrator), password in $DIR/password"
}

cmd_start() {
    if is_running; then
        # Its configuration was written when it started; a new one needs a restart.
        if [[ -n ${HTTP_PORT:-} && $HTTP_PORT != "$HTTP_PORT_FOR_AUTH" ]]; then
            echo "$PROG: the running node asks Wattline on port $HTTP_PORT_FOR_AUTH about" \
                "MQTT logins, not $HTTP_PORT; '$PROG stop' and start it again to change that" >&2
        fi
        print_summary
        return 0
    fi
    AMQP_PORT="${WATTLINE_AMQP_PORT:-$AMQP_PORT}"
    MQTT_PORT="${WATTLINE_MQTT_PORT:-$MQTT_PORT}"
    DIST_PORT="${WATTLINE_RABBITMQ_DIST_PORT:-$DIST_PORT}"
    EPMD_PORT="${WATTLINE_EPMD_PORT:-$EPMD_PORT}"
    HTTP_PORT_FOR_AUTH="${HTTP_PORT:-$HTTP_PORT_FOR_AUTH}"
    valid_port WATTLINE_AMQP_PORT "$AMQP_PORT"
    valid_port WATTLINE_MQTT_PORT "$MQTT_PORT"
    valid_port WATTLINE_RABBITMQ_DIST_PORT "$DIST_PORT"
    valid_port WATTLINE_EPMD_PORT "$EPMD_PORT"
    valid_port HTTP_PORT "$HTTP_PORT_FOR_AUTH"
    local timeout="${WATTLINE_RABBITMQ_START_TIMEOUT:-60}"
    [[ $timeout =~ ^[0-9]+$ ]] || die "WATTLINE_RABBITMQ_START_TIMEOUT must be whole seconds"
    [[ -x $RMQ_BIN/rabbitmq-server ]] ||
        die "RabbitMQ not found in $RMQ_BIN; run 'tools/deps.sh broker'"
    # Someone else's listener would make the readiness check below pass for nothing.
    local port
    for port in "$AMQP_PORT" "$MQTT_PORT" "$DIST_PORT"; do
        ! port_open "$port" || die "port $port on 127.0.0.1 is in use; choose others" \
            "(WATTLINE_AMQP_PORT, WATTLINE_MQTT_PORT, WATTLINE_RABBITMQ_DIST_PORT)"
    done

    make_dir
    make_secrets
    write_config
    rm -f "$PID_FILE" "$LAUNCHER_PID_FILE"
    node_env
    # setsid: the node is a session of its own, so a Ctrl-C meant for `make run-broker`
    # reaches only the script that stops it in order, and stop can end the whole group.
    # The launcher is rabbitmq-server's shell, which turns SIGTERM into a clean stop.
    (cd "$DIR" && exec setsid "$RMQ_BIN/rabbitmq-server" </dev/null >"$STARTUP_LOG" 2>&1) &
    local launcher=$!
    echo "$launcher" >"$LAUNCHER_PID_FILE"

    # Ready once the MQTT listener accepts: plugins start after the core, whose AMQP
    # listener opens after the default user exists.
    local tries=0 limit=$((timeout * 10))
    until port_open "$AMQP_PORT" && port_open "$MQTT_PORT" && is_running; do
        if ! kill -0 "$launcher" 2>/dev/null; then
            wait "$launcher" 2>/dev/null || true
            rm -f "$LAUNCHER_PID_FILE"
            tail -n 30 "$STARTUP_LOG" >&2 || true
            die "RabbitMQ exited during start-up; see $STARTUP_LOG and $LOG_DIR"
        fi
        tries=$((tries + 1))
        if ((tries > limit)); then
            tail -n 30 "$STARTUP_LOG" >&2 || true
            cmd_stop >&2 || true
            die "RabbitMQ did not start within ${timeout}s; see $LOG_DIR"
        fi
        sleep 0.1
    done
    print_summary
}

# Waits up to $2 tenths of a second for pid $1 to be gone.
wait_gone() {
    local pid="$1" tenths="$2" i=0
    while [[ -e /proc/$pid ]] && ((i < tenths)); do
        # A zombie child of ours is gone for every purpose but this check.
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && return 0
        sleep 0.1
        i=$((i + 1))
    done
    [[ ! -e /proc/$pid || $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]]
}

# The epmd the VM started lives on after it; it goes once no node is registered with it
# (`epmd -kill` refuses while one is, so a shared epmd stays for the others).
stop_idle_epmd() {
    command -v epmd >/dev/null 2>&1 || return 0
    local names
    names="$(ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$EPMD_PORT" -names 2>/dev/null)" || return 0
    grep -q '^name ' <<<"$names" && return 0
    ERL_EPMD_ADDRESS=127.0.0.1 epmd -port "$EPMD_PORT" -kill >/dev/null 2>&1 || true
}

cmd_stop() {
    local pid launcher=""
    pid="$(beam_pid || true)"
    if [[ -f $LAUNCHER_PID_FILE ]]; then read -r launcher <"$LAUNCHER_PID_FILE" || true; fi
    [[ $launcher =~ ^[0-9]+$ ]] || launcher=""
    if [[ -n $pid ]]; then
        # SIGTERM is RabbitMQ's clean shutdown (rabbit_prelaunch_sighandler).
        kill -TERM "$pid" 2>/dev/null || true
        if ! wait_gone "$pid" $((STOP_TIMEOUT * 10)); then
            echo "$PROG: RabbitMQ did not stop within ${STOP_TIMEOUT}s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            wait_gone "$pid" 50 || die "could not stop RabbitMQ (pid $pid)"
        fi
    fi
    # What is left of the node's session (the launcher shell, erl_child_setup): the
    # session's id is the launcher's pid, and only it and its children are in it.
    if [[ -n $launcher && -e /proc/$launcher ]] &&
        [[ $(awk '{print $6}' "/proc/$launcher/stat" 2>/dev/null) == "$launcher" ]]; then
        kill -KILL -- "-$launcher" 2>/dev/null || true
        wait_gone "$launcher" 50 || true
    fi
    rm -f "$PID_FILE" "$LAUNCHER_PID_FILE"
    stop_idle_epmd
}

cmd_status() {
    if is_running; then
        echo "running: $NODENAME, amqp://127.0.0.1:$AMQP_PORT, $(mqtt_url) ($DIR)"
    elif [[ -d $DIR/mnesia ]]; then
        echo "stopped ($DIR)"
        return 3
    else
        echo "not created ($DIR)"
        return 4
    fi
}

# Shell assignments for scripts: eval "$(tools/rabbitmq.sh env)".
cmd_env() {
    printf 'AMQP_URL=%q\n' "$(amqp_url)"
    printf 'MQTT_URL=%q\n' "$(mqtt_url)"
    printf 'RABBITMQ_NODENAME=%q\n' "$NODENAME"
    printf 'WATTLINE_RABBITMQ_DIR=%q\n' "$DIR"
}

cmd_ctl() {
    is_running || die "the node is not running; run '$PROG start'"
    node_env
    exec "$RMQ_BIN/rabbitmqctl" -n "$NODENAME" "$@"
}

cmd_destroy() {
    cmd_stop
    if [[ -d $DIR && ! -L $DIR ]]; then
        rm -rf "$DIR"
        echo "$PROG: removed the RabbitMQ node's data in $DIR"
    fi
}

[[ $# -ge 1 ]] || usage
command="$1"
shift
[[ $command == ctl || $# -eq 0 ]] || usage
case "$command" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
url) amqp_url ;;
mqtt) mqtt_url ;;
env) cmd_env ;;
dir) echo "$DIR" ;;
destroy) cmd_destroy ;;
ctl) cmd_ctl "$@" ;;
*) usage ;;
esac
