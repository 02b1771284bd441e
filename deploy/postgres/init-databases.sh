#!/usr/bin/env bash
# Creates one database and one owner role per Warren service, and one for Ory Hydra, each
# with its own password from <NAME>_DB_PASSWORD or the file <NAME>_DB_PASSWORD_FILE names,
# and closes each database to every other role: a service cannot read another's data, nor
# Hydra's (its keys and sessions); and a pg_monitor login for the Prometheus exporter
# (POSTGRES_EXPORTER_DB_PASSWORD[_FILE]). The postgres image runs this once, when the data volume is
# new (docker-entrypoint-initdb.d): to change a password later, ALTER ROLE, or start
# afresh with `docker-compose down -v`.
set -euo pipefail

# password_of NAME: the password in <NAME>_DB_PASSWORD, else in the file
# <NAME>_DB_PASSWORD_FILE names; exits if neither is set.
password_of() {
	local var="${1^^}_DB_PASSWORD"
	local password="${!var:-}"
	local file_var="${var}_FILE"
	if [[ -z "$password" && -n "${!file_var:-}" ]]; then
		password="$(<"${!file_var}")"
	fi
	if [[ -z "$password" ]]; then
		echo "init-databases: neither $var nor $file_var is set" >&2
		exit 1
	fi
	printf '%s' "$password"
}

# create_database NAME: a role and a database called NAME, owned by it.
create_database() {
	local name="$1" password
	password="$(password_of "$name")"
	# psql variables (:"name" quotes an identifier, :'password' a literal): no password
	# or name is ever pasted into SQL text. "order" needs the quoting: it is a keyword.
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
		-v name="$name" -v password="$password" <<-'SQL'
		CREATE ROLE :"name" LOGIN PASSWORD :'password';
		CREATE DATABASE :"name" OWNER :"name";
		REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
	SQL
	echo "init-databases: database and role $name created"
}

for service in order inventory email sms analytics; do
	create_database "$service"
done
# Ory Hydra's (hydra-migrate creates its tables).
create_database hydra

# The Prometheus exporter's login: pg_monitor only (the statistics views and settings, read
# only; no table of any database), and CONNECT to the postgres database alone, which PUBLIC
# has: every service database is closed to it above.
password="$(password_of postgres_exporter)"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres -v password="$password" <<-'SQL'
	CREATE ROLE postgres_exporter LOGIN PASSWORD :'password' NOSUPERUSER NOCREATEDB NOCREATEROLE;
	GRANT pg_monitor TO postgres_exporter;
SQL
echo "init-databases: role postgres_exporter (pg_monitor) created"
