#!/bin/bash
# Checks the Docker files with what runs without a Docker engine.
#
#   tools/docker-check.sh [--no-build]
#
#   1. Dockerfile: every apt package of both stages exists (apt-cache show);
#      every COPY source exists; the runtime stage runs as a non-root user,
#      has a HEALTHCHECK and exposes 8080 and 8081.
#   2. The build stage's `RUN make ...` commands, run here, outside Docker
#      (--no-build skips them). The binaries' shared libraries must then come
#      from the runtime stage's packages (or the base image's libc6 & co.).
#   3. docker/entrypoint.sh and tools/render-nginx.sh: sh -n, and shellcheck
#      when installed.
#   4. docker/nginx.conf rendered for loopback upstreams with a throwaway
#      certificate, then `nginx -t`: as the current user and, when that is
#      root, also as `nobody` from a temp prefix in /tmp (mode 0700, owned by
#      nobody) holding copies of the template, tools/render-nginx.sh and the
#      certificate: nobody may not be able to enter the checkout (a clone in
#      /root), as compose's nginx never reads it either. The render with
#      compose's values must leave no placeholder.
#   5. docker/compose.yaml: `docker compose config -q` if the compose plugin
#      is installed, else `docker-compose config -q` (v1, which predates the
#      top-level `name:`, so that line is dropped for it); then a structural
#      check of what this project relies on (python3-yaml).
#
# Prints one PASS/FAIL/SKIP line per check; exits 1 if any check failed.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dockerfile=$root/docker/Dockerfile
compose=$root/docker/compose.yaml
nginx_bin=${NGINX:-/usr/sbin/nginx}
build=yes
failures=0

case "${1:-}" in
--no-build) build=no ;;
'') ;;
*)
	echo "usage: $0 [--no-build]" >&2
	exit 2
	;;
esac

scratch=$(mktemp -d) || exit 1
trap 'rm -rf "$scratch"' EXIT

pass() { printf 'PASS  %s\n' "$*"; }
skip() { printf 'SKIP  %s\n' "$*"; }
fail() {
	printf 'FAIL  %s\n' "$*"
	failures=$((failures + 1))
}

# Prints the output of a failed command, indented under its FAIL line.
show() { sed 's/^/      /' "$1"; }

# --- Dockerfile parsing ---------------------------------------------------------

# Prints the Dockerfile as one logical instruction per line: continuation
# lines joined, comments and blank lines dropped, each prefixed by the
# number of its stage (0 = first FROM).
instructions() {
	awk '
	/^[[:space:]]*#/ && !cont { next }
	{
		line = $0
		cont = sub(/\\[[:space:]]*$/, "", line)
		acc = acc line
		if (cont) next
		if (acc ~ /^[[:space:]]*$/) { acc = ""; next }
		if (toupper(acc) ~ /^[[:space:]]*FROM[[:space:]]/) stage++
		print stage - 1 "\t" acc
		acc = ""
	}' "$dockerfile"
}

# Prints "stage<TAB>package" for every package an `apt-get install` names.
apt_packages() {
	instructions | awk -F'\t' '
	toupper($2) ~ /^[[:space:]]*RUN[[:space:]]/ {
		n = split($2, word, /[[:space:]]+/)
		installing = 0
		for (i = 1; i <= n; i++) {
			if (word[i] == "&&" || word[i] == ";" || word[i] == "||") { installing = 0; continue }
			if (word[i] == "install" && word[i - 1] == "apt-get") { installing = 1; continue }
			if (installing && word[i] !~ /^-/ && word[i] != "") print $1 "\t" word[i]
		}
	}'
}

check_dockerfile() {
	local stage pkg missing=0 count=0 src
	while IFS=$'\t' read -r stage pkg; do
		count=$((count + 1))
		if ! apt-cache show --no-all-versions "$pkg" >/dev/null 2>&1; then
			fail "Dockerfile stage $stage: package $pkg does not exist in apt"
			missing=1
		fi
	done < <(apt_packages)
	if [ "$count" -eq 0 ]; then
		fail "Dockerfile: found no apt-get install packages (parser out of date?)"
	elif [ "$missing" -eq 0 ]; then
		pass "Dockerfile: all $count apt packages exist ($(apt_packages | cut -f2 | tr '\n' ' '))"
	fi

	# COPY sources from the build context (not --from=stage) must exist.
	local copies_ok=1
	while read -r src; do
		[ -e "$root/$src" ] || {
			fail "Dockerfile: COPY source $src does not exist"
			copies_ok=0
		}
	done < <(instructions | cut -f2 | awk '
		toupper($1) == "COPY" && $2 !~ /^--from=/ {
			for (i = 2; i < NF; i++) if ($i !~ /^--/) print $i
		}')
	[ "$copies_ok" -eq 0 ] || pass "Dockerfile: every COPY source from the build context exists"

	local last runtime
	last=$(instructions | cut -f1 | tail -n 1)
	runtime=$(instructions | awk -F'\t' -v s="$last" '$1 == s { print $2 }')
	# USER must name someone other than root (by name or uid 0).
	if grep -Eq '^[[:space:]]*USER[[:space:]]+[^0r]' <<<"$runtime" &&
		grep -Eq '^[[:space:]]*HEALTHCHECK[[:space:]].*/healthz' <<<"$runtime" &&
		grep -Eq '^[[:space:]]*EXPOSE[[:space:]]+8080[[:space:]]+8081' <<<"$runtime"; then
		pass "Dockerfile: runtime stage has a non-root USER, HEALTHCHECK on /healthz, EXPOSE 8080 8081"
	else
		fail "Dockerfile: runtime stage lacks a non-root USER, HEALTHCHECK on /healthz or EXPOSE 8080 8081"
	fi
}

# --- build outside Docker ---------------------------------------------------------

# The build stage's `RUN make ...` instructions, without the RUN.
make_commands() {
	instructions | awk -F'\t' '$1 == 0 && $2 ~ /^[[:space:]]*RUN[[:space:]]+make([[:space:]]|$)/ {
		sub(/^[[:space:]]*RUN[[:space:]]+/, "", $2); print $2 }'
}

# Every NEEDED library of a binary must come from a runtime-stage package or
# from the base image (libc6 and the few libraries apt itself needs).
check_runtime_libs() {
	local bin=$1 runtime_pkgs soname pkg bad=""
	runtime_pkgs=" libc6 libgcc-s1 libstdc++6 zlib1g $(apt_packages | awk -F'\t' -v s="$(instructions | cut -f1 | tail -n 1)" '$1 == s { printf "%s ", $2 }')"
	while read -r soname; do
		pkg=$(dpkg -S "*/$soname" 2>/dev/null | head -n 1 | cut -d: -f1)
		case "$runtime_pkgs" in
		*" $pkg "*) ;;
		*) bad="$bad $soname(${pkg:-no package})" ;;
		esac
	done < <(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
	if [ -z "$bad" ]; then
		pass "runtime stage provides every shared library of ${bin#"$root"/}"
	else
		fail "runtime stage lacks the package of:$bad (needed by ${bin#"$root"/})"
	fi
}

check_build() {
	local cmd built=0 target
	if [ "$build" = no ]; then
		skip "build outside Docker (--no-build)"
		return
	fi
	while read -r cmd; do
		built=1
		if (cd "$root" && eval "$cmd") >"$scratch/build.log" 2>&1; then
			pass "build stage command, run here: $cmd"
		else
			fail "build stage command, run here: $cmd"
			tail -n 15 "$scratch/build.log" | show /dev/stdin
		fi
		# Also for the targets that did build when another one failed.
		for target in $cmd; do
			case "$target" in
			bin/*) [ ! -x "$root/$target" ] || check_runtime_libs "$root/$target" ;;
			esac
		done
	done < <(make_commands)
	[ "$built" -eq 1 ] || fail "Dockerfile: the build stage has no RUN make step"
}

# --- shell scripts ------------------------------------------------------------------

check_scripts() {
	local script
	for script in docker/entrypoint.sh tools/render-nginx.sh; do
		if ! sh -n "$root/$script" 2>"$scratch/sh.log"; then
			fail "$script: sh -n"
			show "$scratch/sh.log"
		elif ! command -v shellcheck >/dev/null; then
			pass "$script: sh -n (shellcheck not installed)"
		elif shellcheck -s sh "$root/$script" >"$scratch/sc.log" 2>&1; then
			pass "$script: sh -n and shellcheck"
		else
			fail "$script: shellcheck"
			show "$scratch/sc.log"
		fi
	done
}

# --- nginx ----------------------------------------------------------------------------

# render_local DIR: renders the template for loopback upstreams into DIR,
# with DIR as the prefix and the certificate copied there.
render_local() {
	"$root/tools/render-nginx.sh" "$1/nginx.conf" \
		LISTEN=127.0.0.1:18443 PREFIX="$1" \
		TLS_CERT="$1/server.crt" TLS_KEY="$1/server.key" \
		WATTLINE_HTTP_1=127.0.0.1:18080 WATTLINE_HTTP_2=127.0.0.1:18090 \
		WATTLINE_WS_1=127.0.0.1:18081 WATTLINE_WS_2=127.0.0.1:18091
}

check_nginx() {
	if [ ! -x "$nginx_bin" ]; then
		skip "nginx -t: no $nginx_bin"
		return
	fi
	if ! "$root/tools/certs.sh" "$scratch/certs" >"$scratch/certs.log" 2>&1; then
		fail "nginx: tools/certs.sh could not make a test certificate"
		show "$scratch/certs.log"
		return
	fi

	local as_self=$scratch/nginx-self
	mkdir -p "$as_self" && cp "$scratch/certs/server.crt" "$scratch/certs/server.key" "$as_self/"
	if render_local "$as_self" 2>"$scratch/render.log" &&
		"$nginx_bin" -t -q -p "$as_self" -e stderr -c "$as_self/nginx.conf" >"$scratch/nginx.log" 2>&1; then
		pass "nginx -t on the rendered docker/nginx.conf (as $(id -un))"
	else
		fail "nginx -t on the rendered docker/nginx.conf (as $(id -un))"
		show "$scratch/render.log"
		show "$scratch/nginx.log"
	fi

	if [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null; then
		# A prefix only nobody can write, like an unprivileged test run's, with its
		# own copies of what it reads: the checkout may be out of nobody's reach.
		# runuser from /, which nobody can enter, unlike maybe the current directory.
		local as_nobody
		as_nobody=$(mktemp -d /tmp/wattline-nginx.XXXXXX)
		cp "$scratch/certs/server.crt" "$scratch/certs/server.key" "$as_nobody/"
		cp "$root/tools/render-nginx.sh" "$root/docker/nginx.conf" "$as_nobody/"
		mv "$as_nobody/nginx.conf" "$as_nobody/nginx.conf.in"
		chown -R nobody: "$as_nobody"
		if (cd / && runuser -u nobody -- env TMPDIR="$as_nobody" NGINX_TEMPLATE="$as_nobody/nginx.conf.in" \
			sh "$as_nobody/render-nginx.sh" "$as_nobody/nginx.conf" \
			LISTEN=127.0.0.1:18443 PREFIX="$as_nobody" \
			TLS_CERT="$as_nobody/server.crt" TLS_KEY="$as_nobody/server.key" \
			WATTLINE_HTTP_1=127.0.0.1:18080 WATTLINE_HTTP_2=127.0.0.1:18090 \
			WATTLINE_WS_1=127.0.0.1:18081 WATTLINE_WS_2=127.0.0.1:18091) \
			2>"$scratch/render.log" &&
			(cd / && runuser -u nobody -- "$nginx_bin" -t -q -p "$as_nobody" -e stderr \
				-c "$as_nobody/nginx.conf") >"$scratch/nginx.log" 2>&1; then
			pass "nginx -t on the rendered docker/nginx.conf (as nobody, prefix in /tmp)"
		else
			fail "nginx -t on the rendered docker/nginx.conf (as nobody, prefix in /tmp)"
			show "$scratch/render.log"
			show "$scratch/nginx.log"
		fi
		rm -rf "$as_nobody"
	fi

	# Compose's values: names that only resolve inside Docker, so no -t.
	if "$root/tools/render-nginx.sh" "$scratch/nginx-compose.conf" \
		LISTEN=8443 PREFIX=/var/cache/nginx/wattline \
		TLS_CERT=/etc/wattline/certs/server.crt TLS_KEY=/etc/wattline/certs/server.key \
		WATTLINE_HTTP_1=wattline1:8080 WATTLINE_HTTP_2=wattline2:8080 \
		WATTLINE_WS_1=wattline1:8081 WATTLINE_WS_2=wattline2:8081 2>"$scratch/render.log"; then
		pass "render-nginx with compose's values leaves no placeholder"
	else
		fail "render-nginx with compose's values"
		show "$scratch/render.log"
	fi
}

# --- compose ------------------------------------------------------------------------------

check_compose_cli() {
	if docker compose version >/dev/null 2>&1; then
		if docker compose -f "$compose" config -q >"$scratch/compose.log" 2>&1; then
			pass "docker compose config -q"
		else
			fail "docker compose config -q"
			show "$scratch/compose.log"
		fi
	elif command -v docker-compose >/dev/null; then
		grep -v '^name:' "$compose" >"$scratch/compose-v1.yaml"
		if docker-compose --project-directory "$root/docker" -f "$scratch/compose-v1.yaml" \
			config -q >"$scratch/compose.log" 2>&1; then
			pass "docker-compose (v1) config -q"
		else
			fail "docker-compose (v1) config -q"
			show "$scratch/compose.log"
		fi
	else
		skip "compose schema validation: neither the docker compose plugin nor docker-compose is installed"
	fi
}

# What the deployment relies on, beyond the schema.
check_compose_structure() {
	if ! python3 -c 'import yaml' 2>/dev/null; then
		skip "compose structure: python3-yaml is not installed"
		return
	fi
	if python3 - "$compose" >"$scratch/structure.log" 2>&1 <<'EOF'; then
import os, sys, yaml

path = sys.argv[1]
base = os.path.dirname(path)
doc = yaml.safe_load(open(path))
problems = []
def need(cond, what):
    if not cond:
        problems.append(what)

services = doc.get("services") or {}
for name in ("postgres", "wattline1", "wattline2", "nginx"):
    need(name in services, f"service {name} is missing")

pg = services.get("postgres", {})
need(str(pg.get("image", "")).startswith("postgres:15"), "postgres must use the postgres:15 image")
need("pg_isready" in str(pg.get("healthcheck", {}).get("test")), "postgres needs a pg_isready healthcheck")
volumes = doc.get("volumes") or {}
for v in pg.get("volumes", []):
    source = str(v).split(":")[0]
    need(source in volumes, f"postgres volume {source} is not a declared named volume")

secrets = doc.get("secrets") or {}
for name in ("wattline1", "wattline2"):
    s = services.get(name, {})
    build = s.get("build") or {}
    need(os.path.isfile(os.path.join(base, build.get("context", "."), build.get("dockerfile", "Dockerfile"))),
         f"{name}: the Dockerfile is not found from its build context")
    need(s.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
         f"{name} must wait for postgres to be healthy")
    env = s.get("environment") or {}
    need("DATABASE_URL" in env, f"{name} needs DATABASE_URL")
    need("jwt_secret" in s.get("secrets", []), f"{name} needs the jwt_secret secret")
    need(env.get("PUBLIC_WS_URL") == "wss://localhost:8443/ws",
         f"{name} needs PUBLIC_WS_URL=wss://localhost:8443/ws")
for name, spec in secrets.items():
    need("file" in spec, f"secret {name} must come from a file")
for name, s in services.items():
    for ref in s.get("secrets", []):
        ref = ref if isinstance(ref, str) else ref.get("source")
        need(ref in secrets, f"{name} uses undeclared secret {ref}")

ng = services.get("nginx", {})
mounts = [str(v) for v in ng.get("volumes", [])]
for host_path in ("./nginx.conf", "../tools/render-nginx.sh", "../var/certs"):
    need(any(m.startswith(host_path + ":") for m in mounts), f"nginx must mount {host_path}")
for m in mounts:
    src = m.split(":")[0]
    if not src.startswith("../var/"):  # var/ is made by `make certs` at deploy time
        need(os.path.exists(os.path.join(base, src)), f"nginx mount source {src} does not exist")
command = " ".join(ng.get("command", [])) if isinstance(ng.get("command"), list) else str(ng.get("command"))
need("render-nginx" in command, "nginx must render docker/nginx.conf with render-nginx")
for name in ("wattline1", "wattline2"):
    need(ng.get("depends_on", {}).get(name, {}).get("condition") == "service_healthy",
         f"nginx must wait for {name} to be healthy")

# The instances believe X-Forwarded-For from nginx alone: its fixed address,
# inside the network's fixed range, is what TRUSTED_PROXIES names.
import ipaddress
nginx_addr = ((ng.get("networks") or {}).get("default") or {}).get("ipv4_address")
need(nginx_addr is not None, "nginx needs a fixed ipv4_address on the default network")
subnets = [c.get("subnet") for c in
           (((doc.get("networks") or {}).get("default") or {}).get("ipam") or {}).get("config", [])]
if nginx_addr:
    need(any(ipaddress.ip_address(nginx_addr) in ipaddress.ip_network(n) for n in subnets if n),
         f"nginx's address {nginx_addr} is not in the default network's subnet {subnets}")
for name in ("wattline1", "wattline2"):
    env = services.get(name, {}).get("environment") or {}
    trusted = [t.strip() for t in str(env.get("TRUSTED_PROXIES", "")).split(",") if t.strip()]
    need(nginx_addr is not None and trusted == [nginx_addr],
         f"{name}: TRUSTED_PROXIES must be nginx's address ({nginx_addr}), not {trusted}")

for p in problems:
    print(p)
sys.exit(1 if problems else 0)
EOF
		pass "compose structure: services, healthchecks, ordering, secrets, mounts, trusted proxy"
	else
		fail "compose structure"
		show "$scratch/structure.log"
	fi
}

check_dockerfile
check_build
check_scripts
check_nginx
check_compose_cli
check_compose_structure

if [ "$failures" -gt 0 ]; then
	echo "$failures check(s) failed"
	exit 1
fi
echo "all checks passed"
