#!/bin/sh
# Development TLS material for Wattline (`make certs`).
#
#   tools/certs.sh [--force] [DIR]        DIR defaults to var/certs in the repo
#
# Creates a private development CA (ca.key, ca.crt, 10 years) and a server
# certificate signed by it (server.key, server.crt, 825 days) for
# DNS:localhost, IP:127.0.0.1 and IP:::1. Keys are EC P-256: the cheapest
# handshake for both GnuTLS (libmicrohttpd) and OpenSSL (libwebsockets, nginx).
#
# Idempotent: files that are present and valid are kept, because replacing
# the CA would break every trust store it was added to. A server certificate
# that is missing, expiring within 30 days or no longer verifies is reissued
# from the existing CA; the CA itself is only replaced when it is missing or
# expiring, or with --force (which replaces everything).
set -eu

CA_DAYS=3650
SERVER_DAYS=825 # the longest validity Apple platforms accept for a TLS server
RENEW_SECONDS=2592000 # reissue what expires within 30 days
CA_SUBJECT="/O=Wattline/CN=Wattline Development CA"
SERVER_SUBJECT="/O=Wattline/CN=localhost"
SERVER_SAN="DNS:localhost,IP:127.0.0.1,IP:::1"

usage() {
	cat <<EOF
usage: $0 [--force] [DIR]

Create a development CA and a localhost server certificate in DIR
(default: var/certs in the repository). --force replaces existing files.
EOF
}

die() {
	printf 'certs.sh: %s\n' "$*" >&2
	exit 1
}

# --- validity checks --------------------------------------------------------

# A certificate is usable when it parses and does not expire soon.
cert_is_fresh() {
	[ -s "$1" ] && openssl x509 -in "$1" -noout -checkend "$RENEW_SECONDS" >/dev/null 2>&1
}

# The key belongs to the certificate when their public keys are identical.
key_matches_cert() {
	[ -s "$1" ] && [ -s "$2" ] || return 1
	key_pub=$(openssl pkey -in "$1" -pubout 2>/dev/null) || return 1
	cert_pub=$(openssl x509 -in "$2" -noout -pubkey 2>/dev/null) || return 1
	[ "$key_pub" = "$cert_pub" ]
}

ca_is_valid() {
	cert_is_fresh "$dir/ca.crt" && key_matches_cert "$dir/ca.key" "$dir/ca.crt"
}

# Verifies the chain, the serverAuth purpose and every name clients use.
server_is_valid() {
	cert_is_fresh "$dir/server.crt" || return 1
	key_matches_cert "$dir/server.key" "$dir/server.crt" || return 1
	for check in "-verify_hostname localhost" "-verify_ip 127.0.0.1" "-verify_ip ::1"; do
		# $check is deliberately split into option and value.
		# shellcheck disable=SC2086
		openssl verify -purpose sslserver $check -CAfile "$dir/ca.crt" \
			"$dir/server.crt" >/dev/null 2>&1 || return 1
	done
}

# --- generation -------------------------------------------------------------

# Writes the OpenSSL config used for both certificates, so the result does
# not depend on the system openssl.cnf defaults.
write_openssl_config() {
	cat >"$1" <<EOF
[req]
distinguished_name = req_dn
prompt = no

[req_dn]

[ca_ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = $SERVER_SAN
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
}

new_key() {
	(umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null) ||
		die "cannot create key $1"
}

# Random positive 128-bit serial: clients may reject two certificates from
# one CA with the same serial, which reissuing would otherwise produce.
new_serial() {
	printf '0x%s' "$(openssl rand -hex 16)"
}

make_ca() {
	new_key "$work/ca.key"
	openssl req -x509 -new -config "$work/openssl.cnf" -key "$work/ca.key" \
		-subj "$CA_SUBJECT" -sha256 -days "$CA_DAYS" -set_serial "$(new_serial)" \
		-extensions ca_ext -out "$work/ca.crt" 2>"$work/err" ||
		die "cannot create the CA: $(cat "$work/err")"
}

# Signs a new server certificate with the CA key found in $1.
make_server() {
	new_key "$work/server.key"
	openssl req -new -config "$work/openssl.cnf" -key "$work/server.key" \
		-subj "$SERVER_SUBJECT" -out "$work/server.csr" 2>"$work/err" ||
		die "cannot create the certificate request: $(cat "$work/err")"
	openssl x509 -req -in "$work/server.csr" -CA "$1/ca.crt" -CAkey "$1/ca.key" \
		-set_serial "$(new_serial)" -sha256 -days "$SERVER_DAYS" \
		-extfile "$work/openssl.cnf" -extensions server_ext \
		-out "$work/server.crt" 2>"$work/err" ||
		die "cannot sign the server certificate: $(cat "$work/err")"
}

# Moves finished files into place; key files stay 0600, certificates 0644.
install_files() {
	for name in "$@"; do
		case "$name" in
		*.key) chmod 600 "$work/$name" ;;
		*) chmod 644 "$work/$name" ;;
		esac
		mv -f "$work/$name" "$dir/$name"
	done
}

print_instructions() {
	cat <<EOF

Run Wattline over HTTPS and WSS:
  TLS_CERT=$shown/server.crt TLS_KEY=$shown/server.key make run

Trust the development CA ($shown/ca.crt):
  curl:     curl --cacert $shown/ca.crt https://localhost:8080/healthz
  Debian:   sudo cp $shown/ca.crt /usr/local/share/ca-certificates/wattline-dev-ca.crt
            sudo update-ca-certificates
  Browsers: Firefox: Settings > Privacy & Security > Certificates > View
            Certificates > Authorities > Import, tick "trust to identify
            websites". Chromium/Chrome on Linux: Settings > Privacy and
            security > Security > Manage certificates > Authorities > Import
            (or: certutil -d sql:\$HOME/.pki/nssdb -A -t C,, -n wattline-dev
            -i $shown/ca.crt).
  The CA key ($shown/ca.key) can sign a certificate for any name: keep it
  private and trust this CA on development machines only.
EOF
}

# --- main -------------------------------------------------------------------

force=no
dir_arg=
while [ $# -gt 0 ]; do
	case "$1" in
	--force) force=yes ;;
	-h | --help)
		usage
		exit 0
		;;
	-*)
		usage >&2
		exit 2
		;;
	*)
		[ -z "$dir_arg" ] || {
			usage >&2
			exit 2
		}
		dir_arg=$1
		;;
	esac
	shift
done

command -v openssl >/dev/null 2>&1 || die "the openssl command is needed (apt-get install openssl)"

if [ -n "$dir_arg" ]; then
	dir=$dir_arg
	shown=$dir_arg
else
	dir="$(cd "$(dirname "$0")/.." && pwd)/var/certs"
	shown=var/certs
fi
mkdir -p "$dir" || die "cannot create $dir"

# Everything is built in a scratch directory next to the final files and
# moved in only when complete: an interrupted run leaves the old set intact.
work=$(mktemp -d "$dir/.certs.XXXXXX") || die "cannot create a scratch directory in $dir"
trap 'rm -rf "$work"' EXIT
trap 'exit 1' HUP INT TERM
write_openssl_config "$work/openssl.cnf"

if [ "$force" = yes ] || ! ca_is_valid; then
	make_ca
	make_server "$work"
	install_files ca.key ca.crt server.key server.crt
	echo "Created a development CA and a server certificate in $shown."
elif ! server_is_valid; then
	make_server "$dir"
	install_files server.key server.crt
	echo "Reissued the server certificate in $shown (the CA was kept)."
else
	echo "The certificates in $shown are present and valid; nothing to do (--force replaces them)."
fi

server_is_valid || die "the certificates in $shown do not verify; run again with --force"
print_instructions
