#!/usr/bin/env bash
# Creates one database and one owner role per Warren service, and one for Ory Hydra, each
# with its own password from <NAME>_DB_PASSWORD or the file <NAME>_DB_PASSWORD_FILE names,
# and closes each database to every other role: a service cannot read another's data, nor
# Hydra's (its keys and sessions). The postgres image runs this once, when the data volume is
# new (docker-entrypoint-initdb.d): to change a password later, ALTER ROLE, or start
# afresh with `docker-compose down -v`.
set -euo pipefail

# create_database NAME: a role and a database called NAME, owned by it.
create_database() {
	local name="$1"
	local var="${name^^}_DB_PASSWORD"
	local password="${!var:-}"
	local file_var="${var}_FILE"
	if [[ -z "$password" && -n "${!file_var:-}" ]]; then
		password="$(<"${!file_var}")"
	fi
	if [[ -z "$password" ]]; then
		echo "init-databases: neither $var nor $file_var is set" >&2
		exit 1
	fi
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
