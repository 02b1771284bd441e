#!/bin/bash
# Entrypoint of Warren's local stand-in for the official postgres image.
# Same contract as the official one for what Warren and testcontainers use:
#   - CMD postgres [args] (args starting with '-' are passed to postgres)
#   - starts as root, fixes $PGDATA ownership, re-runs itself as postgres
#   - first start (empty $PGDATA): initdb with POSTGRES_USER (default
#     postgres) and POSTGRES_PASSWORD (required unless
#     POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_INITDB_ARGS; remote hosts
#     authenticate with scram-sha-256 (or POSTGRES_HOST_AUTH_METHOD);
#     a temporary socket-only server creates POSTGRES_DB and runs
#     /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz in name order, then
#     stops; so "database system is ready to accept connections" is logged
#     twice on first start, as with the official image
#   - *_FILE variants of the POSTGRES_* variables (Docker secrets)
set -Eeuo pipefail

# file_env VAR [DEFAULT]: VAR or VAR_FILE
file_env() {
	local var=$1 fileVar="${1}_FILE" def=${2:-}
	if [ -n "${!var:-}" ] && [ -n "${!fileVar:-}" ]; then
		echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
		exit 1
	fi
	local val=$def
	if [ -n "${!var:-}" ]; then
		val=${!var}
	elif [ -n "${!fileVar:-}" ]; then
		val=$(<"${!fileVar}")
	fi
	export "$var"="$val"
	unset "$fileVar"
}

if [ "${1:0:1}" = '-' ]; then
	set -- postgres "$@"
fi

if [ "$1" != postgres ]; then
	exec "$@"
fi

: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chmod 00700 "$PGDATA" || true
	find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' + 2>/dev/null || true
	chown postgres:postgres /var/run/postgresql
	chmod 3777 /var/run/postgresql
	exec gosu postgres "${BASH_SOURCE[0]}" "$@"
fi

mkdir -p "$PGDATA"
chmod 00700 "$PGDATA" 2>/dev/null || true

if [ ! -s "$PGDATA/PG_VERSION" ]; then
	file_env POSTGRES_PASSWORD
	file_env POSTGRES_USER postgres
	file_env POSTGRES_DB "$POSTGRES_USER"
	file_env POSTGRES_INITDB_ARGS
	: "${POSTGRES_HOST_AUTH_METHOD:=}"
	if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
		cat >&2 <<-'EOM'
			Error: Database is uninitialized and superuser password is not specified.
			       You must specify POSTGRES_PASSWORD to a non-empty value for the
			       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
			       (or set POSTGRES_HOST_AUTH_METHOD=trust to allow all connections
			       without a password: not recommended)
		EOM
		exit 1
	fi

	pwfile=""
	if [ -n "$POSTGRES_PASSWORD" ]; then
		pwfile=$(mktemp)
		printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	fi
	# shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a word list on purpose
	initdb --username="$POSTGRES_USER" ${pwfile:+--pwfile="$pwfile"} $POSTGRES_INITDB_ARGS
	[ -z "$pwfile" ] || rm -f "$pwfile"

	auth=${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}
	if [ -z "$POSTGRES_HOST_AUTH_METHOD" ] && [ -z "$POSTGRES_PASSWORD" ]; then
		auth=trust
	fi
	printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

	# temporary server: unix socket only, with the user's own -c options
	export PGUSER=$POSTGRES_USER PGPASSWORD=${POSTGRES_PASSWORD:-}
	opts=""
	[ $# -lt 2 ] || opts=$(printf '%q ' "${@:2}")
	pg_ctl -D "$PGDATA" -w start -o "$opts-c listen_addresses='' -p 5432"

	psql_base=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
	if [ "$POSTGRES_DB" != postgres ]; then
		exists=$(
			"${psql_base[@]}" --dbname postgres -tA --set db="$POSTGRES_DB" <<-'EOSQL'
				SELECT 1 FROM pg_database WHERE datname = :'db';
			EOSQL
		)
		if [ -z "$exists" ]; then
			"${psql_base[@]}" --dbname postgres --set db="$POSTGRES_DB" <<-'EOSQL'
				CREATE DATABASE :"db";
			EOSQL
		fi
	fi
	psql_db=("${psql_base[@]}" --dbname "$POSTGRES_DB")

	echo
	shopt -s nullglob
	for f in /docker-entrypoint-initdb.d/*; do
		case "$f" in
		*.sh)
			if [ -x "$f" ]; then
				echo "$0: running $f"
				"$f"
			else
				echo "$0: sourcing $f"
				# shellcheck disable=SC1090
				. "$f"
			fi
			;;
		*.sql)
			echo "$0: running $f"
			"${psql_db[@]}" -f "$f"
			echo
			;;
		*.sql.gz)
			echo "$0: running $f"
			gunzip -c "$f" | "${psql_db[@]}"
			echo
			;;
		*) echo "$0: ignoring $f" ;;
		esac
	done
	shopt -u nullglob

	pg_ctl -D "$PGDATA" -m fast -w stop
	unset PGPASSWORD
	echo
	echo 'PostgreSQL init process complete; ready for start up.'
	echo
fi

exec "$@"
