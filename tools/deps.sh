#!/usr/bin/env bash
# deps.sh: install what Wattline needs to build, run or test, and only what is missing.
#
#   tools/deps.sh [build|run|broker|test|all]     (default: all)
#
#   build   compilers and the libraries' headers
#   run     build, plus PostgreSQL 15 and openssl (make run builds, then runs)
#   broker  run, plus RabbitMQ (make run-broker)
#   test    broker, plus the test tools, Node and tests/node_modules (same as all)
#
# Debian packages come from apt (as root, or through passwordless sudo); the Node test
# modules come from `npm ci` in tests/. When everything is present this prints nothing
# and returns in well under a second, so every make target can call it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly ROOT
readonly PROG="tools/deps.sh"

readonly BUILD_PACKAGES=(build-essential pkg-config libmicrohttpd-dev libwebsockets-dev
    libjansson-dev libjwt-dev libssl-dev libpq-dev libcurl4-openssl-dev librabbitmq-dev
    libmosquitto-dev zlib1g-dev)
readonly RUN_PACKAGES=(postgresql openssl)
# Debian's RabbitMQ ships the MQTT, HTTP-auth and auth-cache plugins; amqp-tools and
# mosquitto-clients are the clients that are not ours, which the README's examples and
# the tests use.
readonly BROKER_PACKAGES=(rabbitmq-server amqp-tools mosquitto-clients)
# chromium is Debian's (/usr/bin/chromium): the browser tests use playwright-core, which
# never downloads a browser of its own. clang and its runtime (libFuzzer, the sanitizers)
# build the fuzz targets (tests/fuzz/) that `make test` replays.
readonly TEST_PACKAGES=(libcmocka-dev chromium nginx clang-format cppcheck valgrind wrk
    clang libclang-rt-14-dev)

usage() {
    echo "usage: $PROG [build|run|broker|test|all]" >&2
    exit 2
}

die() {
    echo "$PROG: $*" >&2
    exit 1
}

# Prints the packages among "$@" that dpkg does not report as installed. One dpkg-query
# for the whole list keeps the no-op path fast; unknown names only go to stderr.
missing_packages() {
    local -A installed=()
    local pkg status
    while read -r pkg status; do
        if [[ $status == "install ok installed" ]]; then installed[$pkg]=1; fi
    done < <(dpkg-query -W -f='${Package} ${Status}\n' "$@" 2>/dev/null || true)
    for pkg in "$@"; do
        [[ -n ${installed[$pkg]:-} ]] || echo "$pkg"
    done
}

# Sets AS_ROOT to the command prefix that runs a command as root: nothing when we are root,
# sudo when it needs no password; otherwise says what to do and exits.
AS_ROOT=()
find_root() {
    if [[ $EUID -eq 0 ]]; then
        AS_ROOT=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        AS_ROOT=(sudo -n)
    else
        die "missing packages: $*; run 'sudo $PROG $MODE' or install them with apt-get"
    fi
}

# True when tests/node_modules is absent or older than the manifests. npm writes
# node_modules/.package-lock.json on every install, which makes it the install's stamp.
node_modules_stale() {
    local stamp="$ROOT/tests/node_modules/.package-lock.json"
    [[ -f $stamp ]] || return 0
    [[ $stamp -ot $ROOT/tests/package.json ]] && return 0
    [[ -f $ROOT/tests/package-lock.json && $stamp -ot $ROOT/tests/package-lock.json ]] && return 0
    return 1
}

install_node_modules() {
    echo "$PROG: installing the test modules in tests/ (npm)"
    # playwright-core downloads nothing; the variable guards against a future dependency
    # that would: the tests use Debian's /usr/bin/chromium.
    local npm_cmd=install
    [[ -f $ROOT/tests/package-lock.json ]] && npm_cmd=ci
    (cd "$ROOT/tests" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm "$npm_cmd" --no-audit --no-fund --loglevel=error)
    # npm may keep an old stamp when nothing changed; make the next run a no-op anyway.
    touch "$ROOT/tests/node_modules/.package-lock.json"
}

# Each mode includes what it needs to get there: `make run` compiles first, and `make test`
# also runs PostgreSQL.
MODE="${1:-all}"
[[ $# -le 1 ]] || usage
WANTED=()
case "$MODE" in
build) WANTED=("${BUILD_PACKAGES[@]}") ;;
run) WANTED=("${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}") ;;
broker) WANTED=("${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}" "${BROKER_PACKAGES[@]}") ;;
test | all)
    WANTED=("${BUILD_PACKAGES[@]}" "${RUN_PACKAGES[@]}" "${BROKER_PACKAGES[@]}" "${TEST_PACKAGES[@]}")
    ;;
*) usage ;;
esac

WANT_NODE_MODULES=false
if [[ $MODE == test || $MODE == all ]]; then
    # A node that is already there (Debian's or another vendor's) is left alone; Debian's
    # nodejs (18) is recent enough for `node --test`.
    if ! command -v node >/dev/null 2>&1; then
        WANTED+=(nodejs npm)
    fi
    if node_modules_stale; then
        WANT_NODE_MODULES=true
        command -v npm >/dev/null 2>&1 || WANTED+=(npm)
    fi
fi

mapfile -t APT_WANTED < <(missing_packages "${WANTED[@]}" | sort -u)
if ((${#APT_WANTED[@]} > 0)); then
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these yourself: ${APT_WANTED[*]}"
    find_root "${APT_WANTED[@]}"
    echo "$PROG: installing ${APT_WANTED[*]}"
    # Once per install, and only when something is missing: the lists may be stale or absent.
    "${AS_ROOT[@]}" apt-get update -qq
    "${AS_ROOT[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${APT_WANTED[@]}"
fi

if $WANT_NODE_MODULES; then
    install_node_modules
fi
