#!/usr/bin/env bash
# layers.sh: fail when a server source includes a header of a layer above its own,
# or a library header its layer may not use (part of `make lint`).
#
#   tools/layers.sh
#
# The layers, lowest first; each may include its own headers and those of the layers
# before it. The Makefile compiles each layer with only its libraries' flags (PKGS_*).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly LAYERS=(base db auth ingest api broker notify live handlers server)

# Library headers a layer may include, as extended regular expressions; headers of the C
# library and POSIX are open to every layer. Everything else is refused.
declare -A LIBRARY=(
    [base]='^(openssl/|jansson\.h$)'
    [db]='^(libpq-fe\.h|postgres_ext\.h|jansson\.h)$'
    [auth]='^(openssl/|jwt\.h$|jansson\.h$)'
    [ingest]='^jansson\.h$'
    [broker]='^(amqp\.h|amqp_framing\.h|amqp_tcp_socket\.h|jansson\.h)$'
    [api]='^(jansson\.h|zlib\.h)$'
    # libcurl: outbound HTTP (webhooks) only, kept apart from the server's transport.
    [notify]='^(curl/curl\.h|jansson\.h)$'
    [live]='^jansson\.h$'
    [handlers]='^jansson\.h$'
    [server]='^(jansson\.h|microhttpd\.h|libwebsockets\.h)$'
)
# What looks like a library header: a path, or a name no C library or POSIX header has.
readonly SYSTEM='^(arpa|netinet|sys|linux)/|^(assert|ctype|dirent|errno|fcntl|float|inttypes|limits|math|netdb|poll|pthread|signal|stdalign|stdarg|stdatomic|stdbool|stddef|stdint|stdio|stdlib|string|strings|time|unistd)\.h$'

# One pass over every layer's files; the rules above are handed to awk as strings.
failures=$(
    for layer in "${LAYERS[@]}"; do
        for file in "$layer"/*.[ch]; do [[ -e $file ]] && echo "$file"; done
    done | xargs awk -v layers="${LAYERS[*]}" -v posix="$SYSTEM" \
        -v libraries="$(for l in "${LAYERS[@]}"; do printf '%s=%s\n' "$l" "${LIBRARY[$l]}"; done)" '
        BEGIN {
            n = split(layers, names, " ")
            for (i = 1; i <= n; i++) rank[names[i]] = i
            split(libraries, lines, "\n")
            for (i in lines) { eq = index(lines[i], "="); lib[substr(lines[i], 1, eq - 1)] = substr(lines[i], eq + 1) }
            bad = 0
        }
        FNR == 1 { split(FILENAME, parts, "/"); layer = parts[1] }
        /^[ \t]*#[ \t]*include/ {
            quoted = match($0, /"[^"]+"/)
            if (quoted) {
                header = substr($0, RSTART + 1, RLENGTH - 2)
                # Resolve "../x/y.h" against the including file'"'"'s folder.
                path = layer "/" header
                while (sub(/[^\/]+\/\.\.\//, "", path)) {}
                target = path ~ /\// ? substr(path, 1, index(path, "/") - 1) : layer
                if (!(target in rank) || rank[target] > rank[layer]) {
                    printf "%s:%d: %s/ may not include %s (layer %s is above it)\n", FILENAME, FNR, layer, path, target > "/dev/stderr"
                    bad++
                }
            } else if (match($0, /<[^>]+>/)) {
                header = substr($0, RSTART + 1, RLENGTH - 2)
                if (header !~ posix && header !~ lib[layer]) {
                    printf "%s:%d: %s/ may not use the library header <%s>\n", FILENAME, FNR, layer, header > "/dev/stderr"
                    bad++
                }
            }
        }
        END { print bad }'
)
if ((failures > 0)); then
    echo "tools/layers.sh: $failures include(s) against the layering (lowest first: ${LAYERS[*]})" >&2
    exit 1
fi
