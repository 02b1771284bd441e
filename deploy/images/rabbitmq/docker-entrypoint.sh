#!/bin/bash
# Entrypoint of Warren's local stand-in for the official rabbitmq image.
# Same contract as the official one for what Warren and testcontainers use:
#   - CMD rabbitmq-server (args starting with '-' are passed to it)
#   - starts as root, fixes ownership of /var/lib/rabbitmq, then runs the
#     server in the foreground as the rabbitmq user, logging to stdout
#   - RABBITMQ_DEFAULT_USER / RABBITMQ_DEFAULT_PASS / RABBITMQ_DEFAULT_VHOST:
#     that user (instead of guest) is created on first boot of a fresh node
#   - RABBITMQ_CONFIG_FILE (default /etc/rabbitmq/rabbitmq.conf) plus
#     /etc/rabbitmq/conf.d/*.conf; load_definitions works as usual
#   - Erlang cookie in /var/lib/rabbitmq/.erlang.cookie (RABBITMQ_ERLANG_COOKIE
#     if set, else random), shared with root's CLI tools (rabbitmq-diagnostics)
set -euo pipefail

if [ "${1:0:1}" = '-' ]; then
	set -- rabbitmq-server "$@"
fi

if [ "$1" = rabbitmq-server ] && [ "$(id -u)" = 0 ]; then
	mkdir -p /var/lib/rabbitmq /var/log/rabbitmq
	find /var/lib/rabbitmq /var/log/rabbitmq \! -user rabbitmq -exec chown rabbitmq:rabbitmq '{}' + 2>/dev/null || true
	exec gosu rabbitmq "${BASH_SOURCE[0]}" "$@"
fi

if [ "$1" = rabbitmq-server ]; then
	cookie_file=/var/lib/rabbitmq/.erlang.cookie
	if [ -n "${RABBITMQ_ERLANG_COOKIE:-}" ]; then
		printf '%s' "$RABBITMQ_ERLANG_COOKIE" >"$cookie_file"
	elif [ ! -s "$cookie_file" ]; then
		od -An -N20 -tx1 /dev/urandom | tr -d ' \n' | tr 'a-f' 'A-F' >"$cookie_file"
	fi
	chmod 600 "$cookie_file"
	unset RABBITMQ_ERLANG_COOKIE
fi

exec "$@"
