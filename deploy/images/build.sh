#!/usr/bin/env bash
# Provide the third-party images Warren needs under their OFFICIAL names:
#
#   rabbitmq:4.0-management  ($RABBITMQ_IMAGE)
#   postgres:17              ($POSTGRES_IMAGE)
#   golang:1.27              ($GO_IMAGE)
#   jaegertracing/jaeger:2.13.0  ($JAEGER_IMAGE)
#   axllent/mailpit:v1.33.1  ($MAILPIT_IMAGE)
#   oryd/hydra:v2.3.0        ($HYDRA_IMAGE)
#   prom/prometheus:v2.53.3  ($PROMETHEUS_IMAGE)
#   prom/alertmanager:v0.28.1  ($ALERTMANAGER_IMAGE)
#   prometheuscommunity/postgres-exporter:v0.17.1  ($POSTGRES_EXPORTER_IMAGE)
#
# For each image: present locally -> nothing to do; else `docker pull` (what a
# normal machine does); else build a local stand-in: rabbitmq, postgres and
# golang from Debian trixie packages (prometheus, alertmanager and
# postgres-exporter from one shared rootfs with the three packages), jaeger, mailpit and hydra from the Go module
# proxy in a multi-stage build FROM $GO_IMAGE (machines with no container
# registry). See README.md beside this file.
#
# Usage: deploy/images/build.sh [--rebuild] [KIND ...]
#   KIND       = rabbitmq postgres golang jaeger mailpit hydra prometheus
#                alertmanager postgres-exporter
#   no names   = all nine
#   --rebuild  = rebuild the named local stand-ins (and their imported rootfs)
#                even if present; official images are never touched.
# Env: RABBITMQ_IMAGE POSTGRES_IMAGE GO_IMAGE JAEGER_IMAGE MAILPIT_IMAGE
#      HYDRA_IMAGE PROMETHEUS_IMAGE ALERTMANAGER_IMAGE POSTGRES_EXPORTER_IMAGE (names),
#      DEBIAN_MIRROR, PULL_TIMEOUT (s, default 60),
#      WARREN_IMAGES_CACHE (default ./.cache),
#      WARREN_IMAGES_PARALLEL (1: the rootfs stand-ins and each Go-built one
#      in lanes side by side, the default; 0: one build at a time).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${WARREN_IMAGES_CACHE:-$HERE/.cache}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=trixie
PULL_TIMEOUT=${PULL_TIMEOUT:-60}
RABBITMQ_IMAGE=${RABBITMQ_IMAGE:-rabbitmq:4.0-management}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-postgres:17}
GO_IMAGE=${GO_IMAGE:-golang:1.27}
JAEGER_IMAGE=${JAEGER_IMAGE:-jaegertracing/jaeger:2.13.0}
MAILPIT_IMAGE=${MAILPIT_IMAGE:-axllent/mailpit:v1.33.1}
HYDRA_IMAGE=${HYDRA_IMAGE:-oryd/hydra:v2.3.0}
PROMETHEUS_IMAGE=${PROMETHEUS_IMAGE:-prom/prometheus:v2.53.3}
ALERTMANAGER_IMAGE=${ALERTMANAGER_IMAGE:-prom/alertmanager:v0.28.1}
POSTGRES_EXPORTER_IMAGE=${POSTGRES_EXPORTER_IMAGE:-prometheuscommunity/postgres-exporter:v0.17.1}
ALL_KINDS=(rabbitmq postgres golang jaeger mailpit hydra prometheus alertmanager postgres-exporter)
# Bump when the rootfs recipe below changes: forces new base images.
ROOTFS_REV=1
REBUILD=0
GO_BIN=$(command -v go 2>/dev/null || echo /usr/local/go/bin/go)
# results of the ensure_* functions (globals: no subshells, so set -e and the
# cleanup trap keep working)
MINBASE_TAR=""
BASE=""

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------- rootfs --

ensure_debootstrap() {
	command -v debootstrap >/dev/null 2>&1 && return 0
	[ "$(id -u)" = 0 ] || die "debootstrap is missing and we are not root (apt-get install debootstrap)"
	log "installing debootstrap"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq debootstrap >/dev/null
}

# $CACHE/trixie-minbase.tar: one debootstrap for all images (apt lists kept,
# so the per-image chroots can apt-get install without another update).
ensure_minbase() {
	local tar=$CACHE/$SUITE-minbase-r$ROOTFS_REV.tar
	MINBASE_TAR=$tar
	[ -s "$tar" ] && return 0
	ensure_debootstrap
	mkdir -p "$CACHE"
	local dir
	dir=$(mktemp -d "$CACHE/minbase.XXXXXX")
	log "debootstrap --variant=minbase $SUITE ($MIRROR)"
	local t0=$SECONDS
	if ! debootstrap --variant=minbase "$SUITE" "$dir/root" "$MIRROR" >"$dir/debootstrap.log" 2>&1; then
		tail -n 30 "$dir/debootstrap.log" >&2
		rm -rf "$dir"
		die "debootstrap failed"
	fi
	rm -f "$dir"/root/var/cache/apt/archives/*.deb
	tar -C "$dir/root" -cf "$tar.tmp" . && mv "$tar.tmp" "$tar"
	rm -rf "$dir"
	log "minbase rootfs cached in $((SECONDS - t0))s: $tar"
}

CHROOT_DIR=""
cleanup_chroot() {
	[ -n "$CHROOT_DIR" ] || return 0
	if mountpoint -q "$CHROOT_DIR/root/proc" 2>/dev/null; then
		umount "$CHROOT_DIR/root/proc" || umount -l "$CHROOT_DIR/root/proc" || true
	fi
	# never rm -rf through a live mount
	if ! grep -q " $CHROOT_DIR/" /proc/mounts; then
		rm -rf "$CHROOT_DIR"
	fi
	CHROOT_DIR=""
}
trap cleanup_chroot EXIT

in_chroot() { chroot "$CHROOT_DIR/root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

chroot_install() {
	if ! in_chroot apt-get install -y -q --no-install-recommends "$@" >>"$CHROOT_DIR/apt.log" 2>&1; then
		log "apt-get install failed with the cached lists; apt-get update in the chroot and retry"
		in_chroot apt-get update -q >>"$CHROOT_DIR/apt.log" 2>&1 || { tail -n 30 "$CHROOT_DIR/apt.log" >&2; die "apt-get update (chroot) failed"; }
		in_chroot apt-get install -y -q --no-install-recommends "$@" >>"$CHROOT_DIR/apt.log" 2>&1 || { tail -n 30 "$CHROOT_DIR/apt.log" >&2; die "apt-get install $* failed"; }
	fi
}

# Per-image rootfs customisation, run inside the unpacked minbase chroot.
rootfs_rabbitmq() {
	chroot_install rabbitmq-server gosu
}
rootfs_postgres() {
	chroot_install postgresql-common gosu locales
	# like the official image: no Debian "main" cluster, we initdb into $PGDATA
	sed -ri 's/#? *(create_main_cluster) .*$/\1 = false/' "$CHROOT_DIR/root/etc/postgresql-common/createcluster.conf"
	chroot_install postgresql-17
	in_chroot localedef -i en_US -c -f UTF-8 -A /usr/share/locale/locale.alias en_US.UTF-8
}
# One rootfs for the three monitoring images (base kind "promstack", see
# base_kind): the packages share most of their files (libc, adduser, tzdata), so
# one chroot install and one import cost about a third of three, and Docker
# stores the shared base layer once. busybox gives the images the wget the
# official (busybox-based) images have, for healthchecks.
# prometheus-postgres-exporter depends on "daemon | systemd-sysv": apt takes
# the small first alternative.
rootfs_promstack() {
	chroot_install prometheus prometheus-alertmanager prometheus-postgres-exporter busybox ca-certificates
}
rootfs_golang() {
	chroot_install ca-certificates git netbase
	local goroot
	goroot=$("$GO_BIN" env GOROOT 2>/dev/null || echo /usr/local/go)
	[ -x "$goroot/bin/go" ] || die "no Go toolchain on the host (looked in $goroot)"
	mkdir -p "$CHROOT_DIR/root/usr/local"
	cp -a "$goroot" "$CHROOT_DIR/root/usr/local/go"
	mkdir -p "$CHROOT_DIR/root/go/bin" "$CHROOT_DIR/root/go/src"
	chmod -R 1777 "$CHROOT_DIR/root/go"
	# Trust what the host trusts: where HTTPS egress goes through an
	# intercepting proxy whose CA only the host's store knows, `go mod
	# download` in a RUN step fails with "x509: certificate signed by unknown
	# authority" otherwise. Opt out with WARREN_IMAGES_HOST_CA=0.
	if [ -n "$(host_ca_file)" ]; then
		log "golang: adding the host's CA bundle ($(host_ca_file)) to the image's trust store"
		mkdir -p "$CHROOT_DIR/root/usr/local/share/ca-certificates"
		cp "$(host_ca_file)" "$CHROOT_DIR/root/usr/local/share/ca-certificates/warren-host-trust.crt"
		in_chroot update-ca-certificates >>"$CHROOT_DIR/apt.log" 2>&1
	fi
}
host_ca_file() {
	[ "${WARREN_IMAGES_HOST_CA:-1}" = 1 ] || return 0
	local f=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
	[ -s "$f" ] && echo "$f"
	return 0
}

# base_kind KIND: the rootfs KIND's stand-in is built on (kinds may share one).
base_kind() {
	case $1 in
	prometheus | alertmanager | postgres-exporter) echo promstack ;;
	*) echo "$1" ;;
	esac
}

# base_tag KIND: name of the imported rootfs image for KIND
base_tag() {
	local tag="$SUITE-r$ROOTFS_REV" ca
	if [ "$1" = golang ]; then
		tag="$tag-$(host_go_version)"
		ca=$(host_ca_file)
		[ -z "$ca" ] || tag="$tag-ca$(sha256sum "$ca" | cut -c1-8)"
	fi
	echo "warren-base-$(base_kind "$1"):$tag"
}
# The host Go's version (go1.27.3 as GOTOOLCHAIN pins it, else the installed one's), read once (main calls init_host_go_version
# before anything runs in a subshell): $GOROOT/VERSION, else `go env` (which
# costs tens of ms, too much for the no-op path).
HOST_GO_VERSION=""
init_host_go_version() {
	[ -z "$HOST_GO_VERSION" ] || return 0
	# A pinned toolchain (the Makefile exports GOTOOLCHAIN=go1.27.3) is what `go` runs.
	case ${GOTOOLCHAIN:-} in
	go[0-9]*)
		HOST_GO_VERSION=${GOTOOLCHAIN%%+*}
		return 0
		;;
	esac
	local bin root
	bin=$(readlink -f "$GO_BIN" 2>/dev/null || echo "$GO_BIN")
	root=${bin%/bin/go}
	[ "$root" != "$bin" ] && [ -r "$root/VERSION" ] && read -r HOST_GO_VERSION <"$root/VERSION"
	case $HOST_GO_VERSION in
	go[0-9]*) ;;
	*) HOST_GO_VERSION=$("$GO_BIN" env GOVERSION 2>/dev/null || echo unknown) ;;
	esac
}
host_go_version() { init_host_go_version; echo "$HOST_GO_VERSION"; }

# ensure_base KIND: debootstrap (once) + chroot install + docker import.
ensure_base() {
	local kind base
	kind=$(base_kind "$1")
	base=$(base_tag "$kind")
	BASE=$base
	if [ "$REBUILD" = 0 ] && docker image inspect "$base" >/dev/null 2>&1; then
		return 0
	fi
	[ "$(id -u)" = 0 ] || die "building the $kind stand-in needs root (debootstrap/chroot)"
	local mb t0=$SECONDS
	ensure_minbase
	mb=$MINBASE_TAR
	mkdir -p "$CACHE"
	CHROOT_DIR=$(mktemp -d "$CACHE/$kind.XXXXXX")
	mkdir "$CHROOT_DIR/root"
	tar -C "$CHROOT_DIR/root" -xf "$mb"
	cp -L /etc/resolv.conf "$CHROOT_DIR/root/etc/resolv.conf"
	printf '#!/bin/sh\nexit 101\n' >"$CHROOT_DIR/root/usr/sbin/policy-rc.d"
	chmod +x "$CHROOT_DIR/root/usr/sbin/policy-rc.d"
	mount -t proc proc "$CHROOT_DIR/root/proc"
	log "$kind: installing packages into the rootfs"
	"rootfs_$kind"
	in_chroot apt-get clean
	# lazily if busy (a process still reading the rootfs's /proc): the tar below skips it
	umount "$CHROOT_DIR/root/proc" || umount -l "$CHROOT_DIR/root/proc"
	rm -rf "$CHROOT_DIR"/root/var/lib/apt/lists/* "$CHROOT_DIR/root/usr/sbin/policy-rc.d" \
		"$CHROOT_DIR"/root/var/log/*.log "$CHROOT_DIR"/root/var/log/apt/* "$CHROOT_DIR"/root/tmp/*
	: >"$CHROOT_DIR/root/etc/resolv.conf"
	log "$kind: docker import -> $base"
	tar -C "$CHROOT_DIR/root" --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' -c . |
		docker import -m "Warren stand-in rootfs ($SUITE, $kind)" - "$base" >/dev/null
	cleanup_chroot
	# drop base images of this kind from older recipes (disk)
	local old
	for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "warren-base-$kind"); do
		[ "$old" = "$base" ] || docker image rm "$old" >/dev/null 2>&1 || true
	done
	log "$kind: base image ready in $((SECONDS - t0))s"
}

# -------------------------------------------------------------- images --

# Stand-ins built FROM $GO_IMAGE (multi-stage, Go module proxy) rather than
# from a Debian rootfs.
is_go_kind() { case $1 in jaeger | mailpit | hydra) return 0 ;; *) return 1 ;; esac; }

# content hash of the stand-in's recipe (Dockerfile folder + base tag; for the
# Go-built ones the builder image's name, not its id: a new host Go does not
# force a 5-minute Jaeger rebuild)
standin_hash() {
	local kind=$1
	{
		if is_go_kind "$kind"; then echo "$GO_IMAGE"; else base_tag "$kind"; fi
		(cd "$HERE/$kind" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -c1-16
}

# The version a Go-built stand-in's Dockerfile builds (ARG <VAR>=v...).
dockerfile_version() { sed -n "s/^ARG $2=v\{0,1\}//p" "$HERE/$1/Dockerfile" | head -n 1; }

build_standin() {
	local kind=$1 name=$2 base hash t0=$SECONDS args=()
	if is_go_kind "$kind"; then
		# multi-stage build FROM the golang image: make sure it exists first
		# (as a dependency only: --rebuild applies to the named kinds)
		local rebuild=$REBUILD
		REBUILD=0
		ensure_image golang "$GO_IMAGE"
		REBUILD=$rebuild
		base=$GO_IMAGE
		args=(--build-arg "GO_IMAGE=$GO_IMAGE")
		local var want
		case $kind in jaeger) var=JAEGER_VERSION ;; mailpit) var=MAILPIT_VERSION ;; hydra) var=HYDRA_VERSION ;; esac
		want=$(dockerfile_version "$kind" "$var")
		case ${name##*:} in
		"$want" | "v$want") ;;
		*) log "$kind: warning: $kind/Dockerfile builds version $want but the image is named $name" ;;
		esac
		local minutes
		case $kind in jaeger) minutes='about 5-12 min' ;; hydra) minutes='about 3-4 min' ;; *) minutes='about 2 min' ;; esac
		log "$kind: building from the Go module proxy ($minutes on 2 cores)"
	else
		ensure_base "$kind"
		base=$BASE
		args=(--build-arg "BASE=$base")
	fi
	hash=$(standin_hash "$kind")
	log "$kind: docker build $name (FROM $base)"
	local out
	if ! out=$(DOCKER_BUILDKIT=0 docker build "${args[@]}" \
		--label "org.warren.standin=$kind" --label "org.warren.standin.hash=$hash" \
		-t "$name" "$HERE/$kind" 2>&1); then
		printf '%s\n' "$out" >&2
		die "docker build of the $kind stand-in failed"
	fi
	log "$kind: $name built in $((SECONDS - t0))s ($(docker image inspect -f '{{.Size}}' "$name" | awk '{printf "%d MB", $1/1e6}'))"
}

HASH_FMT='{{index .Config.Labels "org.warren.standin.hash"}}'

ensure_image() {
	local kind=$1 name=$2 have
	if have=$(docker image inspect -f "$HASH_FMT" "$name" 2>/dev/null); then
		if [ -z "$have" ] || [ "$have" = "<no value>" ]; then
			log "$kind: $name present"
			return 0
		fi
		if [ "$REBUILD" = 0 ] && [ "$have" = "$(standin_hash "$kind")" ]; then
			log "$kind: $name present (local stand-in, up to date)"
			return 0
		fi
		log "$kind: $name is a local stand-in built from other files: rebuilding"
		build_standin "$kind" "$name"
		return 0
	fi
	log "$kind: $name missing; trying docker pull"
	if timeout "$PULL_TIMEOUT" docker pull -q "$name" >/dev/null 2>&1; then
		log "$kind: pulled $name"
		return 0
	fi
	log "$kind: pull failed (no registry?); building a local stand-in"
	build_standin "$kind" "$name"
}

image_name() {
	case $1 in
	rabbitmq) echo "$RABBITMQ_IMAGE" ;;
	postgres) echo "$POSTGRES_IMAGE" ;;
	golang) echo "$GO_IMAGE" ;;
	jaeger) echo "$JAEGER_IMAGE" ;;
	mailpit) echo "$MAILPIT_IMAGE" ;;
	hydra) echo "$HYDRA_IMAGE" ;;
	prometheus) echo "$PROMETHEUS_IMAGE" ;;
	alertmanager) echo "$ALERTMANAGER_IMAGE" ;;
	postgres-exporter) echo "$POSTGRES_EXPORTER_IMAGE" ;;
	esac
}

# all_up_to_date KIND...: one `docker image inspect` for all the names (it
# prints in argument order and fails if any is missing); logs and succeeds
# only if nothing needs doing.
all_up_to_date() {
	local kinds=("$@") names=() out have i k
	for k in "${kinds[@]}"; do names+=("$(image_name "$k")"); done
	out=$(docker image inspect -f "$HASH_FMT" "${names[@]}" 2>/dev/null) || return 1
	mapfile -t have <<<"$out"
	[ ${#have[@]} = ${#kinds[@]} ] || return 1
	local msgs=()
	for i in "${!kinds[@]}"; do
		k=${kinds[$i]}
		case ${have[$i]} in
		"" | "<no value>") msgs+=("$k: ${names[$i]} present") ;;
		"$(standin_hash "$k")") msgs+=("$k: ${names[$i]} present (local stand-in, up to date)") ;;
		*) return 1 ;;
		esac
	done
	for i in "${msgs[@]}"; do log "$i"; done
}

main() {
	local kinds=()
	while [ $# -gt 0 ]; do
		case $1 in
		--rebuild) REBUILD=1 ;;
		rabbitmq | postgres | golang | jaeger | mailpit | hydra | prometheus | alertmanager | postgres-exporter) kinds+=("$1") ;;
		-h | --help)
			sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
			return 0
			;;
		*) die "unknown argument: $1 (try --help)" ;;
		esac
		shift
	done
	[ ${#kinds[@]} -gt 0 ] || kinds=("${ALL_KINDS[@]}")
	# canonical order (golang before the images built FROM it), no duplicates
	local k want=" ${kinds[*]} "
	kinds=()
	for k in "${ALL_KINDS[@]}"; do
		case $want in *" $k "*) kinds+=("$k") ;; esac
	done
	init_host_go_version
	# Fast path (no lock, one docker call): every image present and every
	# stand-in built from the current files.
	if [ "$REBUILD" = 0 ] && all_up_to_date "${kinds[@]}"; then
		return 0
	fi
	docker info >/dev/null 2>&1 || die "the Docker daemon is not reachable"
	# One build.sh at a time (shared cache and base images); inside it, lanes.
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	# golang first: the Go-built stand-ins are built FROM it.
	local rootfs_lane=() go_lanes=()
	for k in "${kinds[@]}"; do
		if [ "$k" = golang ]; then
			ensure_golang
		elif is_go_kind "$k"; then
			go_lanes+=("$k")
		else
			rootfs_lane+=("$k")
		fi
	done
	# A Go-built stand-in named alone still needs the builder: make it here, once, rather
	# than in each of its lanes at the same time (as a dependency: --rebuild is for the named).
	if [ ${#go_lanes[@]} -gt 0 ] && ! docker image inspect "$GO_IMAGE" >/dev/null 2>&1; then
		local rebuild=$REBUILD
		REBUILD=0
		ensure_golang
		REBUILD=$rebuild
	fi
	if [ "${WARREN_IMAGES_PARALLEL:-1}" = 0 ]; then
		for k in "${rootfs_lane[@]}" "${go_lanes[@]}"; do ensure_image "$k" "$(image_name "$k")"; done
		return 0
	fi
	run_lanes "${rootfs_lane[*]}" "${go_lanes[@]}"
}

# ensure_golang: the builder image, with a warning when the host Go (copied into the
# stand-in) is not the version its name says.
ensure_golang() {
	case $(host_go_version) in
	go"${GO_IMAGE##*:}"*) ;;
	*) docker image inspect "$GO_IMAGE" >/dev/null 2>&1 ||
		log "golang: warning: host Go is $(host_go_version) but the image is named $GO_IMAGE" ;;
	esac
	ensure_image golang "$GO_IMAGE"
}

# run_lanes "ROOTFS KINDS" GOKIND...: the Debian-rootfs stand-ins one after another in
# one lane (they share the minbase tarball, and their time is mostly downloads and disk),
# and each Go-built stand-in in a lane of its own, all lanes at once. The Go builds are
# CPU-bound, so on 2 cores running them side by side saves little of their compiling;
# what it saves is everything else they wait on (module downloads, the single-threaded
# link, docker's commit of each layer) and the whole rootfs lane, which then costs
# nothing. Set WARREN_IMAGES_PARALLEL=0 for one build at a time (clearer logs).
run_lanes() {
	local rootfs=($1) pids=() names=() k pid failed=0 i
	shift
	if [ ${#rootfs[@]} -gt 0 ]; then
		# A subshell does not inherit the EXIT trap: set it again, so that a failed
		# install leaves no chroot (and no mounted /proc) behind.
		(
			trap cleanup_chroot EXIT
			for k in "${rootfs[@]}"; do ensure_image "$k" "$(image_name "$k")"; done
		) &
		pids+=($!)
		names+=("${rootfs[*]}")
	fi
	for k in "$@"; do
		ensure_image "$k" "$(image_name "$k")" &
		pids+=($!)
		names+=("$k")
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || { log "ERROR: the lane of ${names[$i]} failed (its log is above)"; failed=1; }
	done
	return "$failed"
}

main "$@"
