#!/bin/sh
# Renders the nginx template (docker/nginx.conf) into a usable config.
#
#   tools/render-nginx.sh OUT KEY=VALUE...
#
# Every @KEY@ in the template is replaced by VALUE. It fails, writing
# nothing, when a KEY does not occur in the template or a placeholder is
# left without a value, so a typo never yields a half-rendered config.
# The template is $NGINX_TEMPLATE, by default docker/nginx.conf next to this
# script's directory. POSIX sh and awk only: docker/compose.yaml runs this
# same script inside the nginx image.
#
# Example (local, unprivileged):
#   tools/render-nginx.sh /tmp/n/nginx.conf LISTEN=127.0.0.1:18443 \
#     PREFIX=/tmp/n TLS_CERT=$PWD/var/certs/server.crt \
#     TLS_KEY=$PWD/var/certs/server.key \
#     WATTLINE_HTTP_1=127.0.0.1:18080 WATTLINE_HTTP_2=127.0.0.1:18090 \
#     WATTLINE_WS_1=127.0.0.1:18081 WATTLINE_WS_2=127.0.0.1:18091
set -eu

die() {
	printf 'render-nginx: %s\n' "$*" >&2
	exit 1
}

[ $# -ge 1 ] || die "usage: $0 OUT KEY=VALUE..."
out=$1
shift
template=${NGINX_TEMPLATE:-$(dirname "$0")/../docker/nginx.conf}
[ -r "$template" ] || die "cannot read the template $template"

pairs=$(mktemp) || die "cannot create a temporary file"
rendered="$out.tmp.$$"
trap 'rm -f "$pairs" "$rendered"' EXIT
trap 'exit 1' HUP INT TERM

for pair in "$@"; do
	case "$pair" in
	*=*) ;;
	*) die "not KEY=VALUE: $pair" ;;
	esac
	key=${pair%%=*}
	case "$key" in
	'' | *[!A-Z0-9_]*) die "bad placeholder name: $key" ;;
	esac
	grep -q "@$key@" "$template" || die "@$key@ does not occur in $template"
	# One pair per line; an argument cannot hold a newline here because
	# the pair file is line-based (and no nginx value needs one).
	printf '%s\n' "$pair" >>"$pairs"
done

# Literal replacement (index/substr, not regex): values are paths and
# addresses that may hold characters sed or gsub would treat specially.
awk '
function replace_all(s, pat, rep,    out, p) {
	out = ""
	while ((p = index(s, pat)) > 0) {
		out = out substr(s, 1, p - 1) rep
		s = substr(s, p + length(pat))
	}
	return out s
}
FILENAME == ARGV[1] {
	eq = index($0, "=")
	n++
	key[n] = "@" substr($0, 1, eq - 1) "@"
	val[n] = substr($0, eq + 1)
	next
}
{
	line = $0
	for (i = 1; i <= n; i++)
		line = replace_all(line, key[i], val[i])
	print line
}' "$pairs" "$template" >"$rendered" || die "cannot write $rendered"

left=$(grep -o '@[A-Z0-9_]*@' "$rendered" | sort -u | tr '\n' ' ') || true
[ -z "$left" ] || die "no value given for: $left"
mv -f "$rendered" "$out" || die "cannot write $out"
