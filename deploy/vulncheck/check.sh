#!/usr/bin/env bash
# govulncheck on every module of go.work, against an offline copy of the Go vulnerability
# database built from the golang.org/x/vulndb module (deploy/vulncheck/README.md).
#
# Fails (exit 3) when code of a module calls a function that a report in the database says
# is vulnerable, in a dependency or in the standard library of the Go that runs this.
# Vulnerable code that is only imported or required, never called, is listed but does not
# fail the check (govulncheck's own rule: such code cannot be reached).
#
# Settings (environment):
#   VULNDB_VERSION    version of golang.org/x/vulndb to build the database from
#   VULN_VERSION      version of golang.org/x/vuln that gives govulncheck
#   VULNCHECK_CACHE   where the database and the tools are kept (deploy/vulncheck/.cache)
#   VULNCHECK_MODULES module folders to check, relative to the repository (every go.work module)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
root=$PWD
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
VULN_VERSION=${VULN_VERSION:-v1.9.0}
cache=${VULNCHECK_CACHE:-$root/deploy/vulncheck/.cache}
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

# The tools are programs of their own modules, built with those modules' own go.mod: outside
# the workspace, so that they neither need nor change Warren's requirements.
export GOWORK=off GOFLAGS=-mod=mod

# govulncheck must be built by the Go it checks with: its type checker reads that Go's library.
bin=$cache/bin-$(go env GOVERSION)-$VULN_VERSION-$VULNDB_VERSION
if [ ! -x "$bin/govulncheck" ] || [ ! -x "$bin/indexdb" ]; then
	echo "== building govulncheck $VULN_VERSION and vulndb's indexdb $VULNDB_VERSION"
	GOBIN=$bin go install "golang.org/x/vuln/cmd/govulncheck@$VULN_VERSION"
	GOBIN=$bin go install "golang.org/x/vulndb/cmd/indexdb@$VULNDB_VERSION"
fi

# The module holds every report as OSV JSON in data/osv; indexdb (vulndb's own tool) writes
# the v1 database govulncheck reads: index/db.json, index/modules.json, ID/<id>.json.
db=$cache/db-$VULNDB_VERSION
if [ ! -f "$db/index/db.json" ]; then
	echo "== building the vulnerability database from golang.org/x/vulndb@$VULNDB_VERSION"
	src=$(go mod download -json "golang.org/x/vulndb@$VULNDB_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
	[ -d "$src/data/osv" ] || { echo "golang.org/x/vulndb@$VULNDB_VERSION has no data/osv" >&2; exit 1; }
	rm -rf "$db.tmp"
	"$bin/indexdb" -vulns "$src/data/osv" -out "$db.tmp"
	# indexdb leaves the database's date at zero; the module's pseudo-version carries the
	# time of the vulndb commit it was cut from (govulncheck reports it as the db's date).
	stamp=${VULNDB_VERSION#v0.0.0-}
	stamp=${stamp%%-*}
	modified="${stamp:0:4}-${stamp:4:2}-${stamp:6:2}T${stamp:8:2}:${stamp:10:2}:${stamp:12:2}Z"
	printf '{"modified":"%s"}' "$modified" >"$db.tmp/index/db.json" # the whole of db.json in format v1
	gzip -9nc "$db.tmp/index/db.json" >"$db.tmp/index/db.json.gz"
	mv "$db.tmp" "$db"
fi
echo "== database: $(cat "$db/index/db.json"), $(find "$db/ID" -name '*.json' | wc -l) reports"

if [ -n "${VULNCHECK_MODULES:-}" ]; then
	read -r -a modules <<<"$VULNCHECK_MODULES"
else
	mapfile -t modules < <(GOWORK= GOFLAGS= go list -m -f '{{.Dir}}')
fi
failed=()
for m in "${modules[@]}"; do
	echo "== govulncheck $m"
	# Each module alone (GOWORK=off), with the versions its own go.mod pins: those are what
	# its Docker image builds.
	if ! (cd "$m" && GOFLAGS=-mod=readonly "$bin/govulncheck" -db "file://$db" ./...); then
		failed+=("$m")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "govulncheck failed (vulnerable code called, or the check itself broke) in: ${failed[*]}" >&2
	exit 3
fi
