#!/bin/bash
# Entry point of the extra broker nodes of compose.ha.yml and of their one-shot setup.
#
#   ha.sh node   take the first node's Erlang cookie (its data volume is mounted read-only
#                at /var/lib/rabbitmq-seed), then start the broker as the image would;
#                cluster.conf makes the node join rabbit@rabbitmq on its first boot
#   ha.sh grow   add a replica on rabbitmq-2 and rabbitmq-3 to every quorum queue that was
#                declared before they joined (queues declared later get one anyway)
#
# Copying the cookie keeps docker-compose.yml's broker as it is: it keeps the cookie it
# generated on its first start instead of being given one.
set -euo pipefail

install -m 600 /var/lib/rabbitmq-seed/.erlang.cookie /var/lib/rabbitmq/.erlang.cookie

case "${1:-}" in
node)
	exec docker-entrypoint.sh rabbitmq-server
	;;
grow)
	for node in rabbitmq-2 rabbitmq-3; do
		rabbitmq-queues -n "rabbit@$node" grow "rabbit@$node" all
	done
	;;
*)
	echo "usage: ha.sh node|grow" >&2
	exit 2
	;;
esac
