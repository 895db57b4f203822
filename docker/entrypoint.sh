#!/bin/sh
# Container entrypoint for the Wattline image: prepares the secrets, then
# becomes `wattline` with the container's arguments (default: serve).
#
# `wattline serve` applies pending migrations itself before listening, under
# a PostgreSQL advisory lock, so several instances starting at once are safe;
# NO_MIGRATE=true skips that step.
#
# Secrets: with neither JWT_SECRET nor JWT_SECRET_FILE set, the Docker secret
# /run/secrets/jwt_secret is used when present. PGPASSWORD_FILE names a file
# holding the database password; it is exported as PGPASSWORD, which libpq
# reads when DATABASE_URL carries none (so the URL holds no password).
set -eu

if [ -z "${JWT_SECRET:-}" ] && [ -z "${JWT_SECRET_FILE:-}" ] &&
	[ -f /run/secrets/jwt_secret ]; then
	export JWT_SECRET_FILE=/run/secrets/jwt_secret
fi

if [ -n "${PGPASSWORD_FILE:-}" ] && [ -z "${PGPASSWORD:-}" ]; then
	if [ ! -r "$PGPASSWORD_FILE" ]; then
		echo "entrypoint: cannot read PGPASSWORD_FILE $PGPASSWORD_FILE" >&2
		exit 2
	fi
	# $(...) drops the trailing newline an editor or echo leaves in the file.
	PGPASSWORD=$(cat "$PGPASSWORD_FILE")
	export PGPASSWORD
fi

[ $# -gt 0 ] || set -- serve

# exec: wattline becomes PID 1 and receives docker stop's SIGTERM itself.
exec /opt/wattline/bin/wattline "$@"
