package dashboards

// The dashboards. Metric names are the ones of the observability contract: the services'
// warren_* metrics, RabbitMQ's rabbitmq_prometheus plugin (per-queue rabbitmq_detailed_*
// from /metrics/detailed, broker-wide rabbitmq_global_* from /metrics) and the
// PostgreSQL exporter's pg_*.
//
// A counter with labels has no series until it is first incremented: a system that never
// rejected an order has no warren_orders_settled_total{outcome="rejected"}. Such queries
// end in `or vector(0)` (or `or 0 * <a series that exists>` for one line per label), so
// that a quiet system shows 0 rather than "No data", which reads like a broken scrape.

const (
	// Queue name patterns (shared/events/topology.go): the dead-letter queues, and the
	// two queues of the broker's own (the archive of dead letters and the unroutable
	// messages). [.] rather than \. keeps the regular expressions free of escapes.
	dlqQueues    = `queue=~".*[.]dlq"`
	brokerQueues = `queue=~"warren[.](dead-letter-archive|unroutable-messages)"`
	workQueues   = `queue!~".*[.]dlq|warren[.].*"`
)

func orderFlow() spec {
	settled := func(outcome string) string {
		return `sum(rate(warren_orders_settled_total{outcome="` + outcome + `"}[$__rate_interval])) or vector(0)`
	}
	settleQuantile := func(quantile string) string {
		return `histogram_quantile(` + quantile + `, sum by (le) (rate(warren_order_settle_duration_seconds_bucket[$__rate_interval])))`
	}
	return spec{
		uid:   "warren-order-flow",
		title: "Warren — order flow",
		description: "Orders from placement to settlement (the order service), and the HTTP " +
			"APIs of every service.",
		sections: []section{
			{title: "Orders", panels: []panel{
				{title: "Orders per second", unit: "ops", width: 16,
					description: "Placed by the API; confirmed or rejected when inventory answers; cancelled by their owner.",
					queries: []query{
						q(`sum(rate(warren_orders_placed_total[$__rate_interval])) or vector(0)`, "placed"),
						q(settled("confirmed"), "confirmed"),
						q(settled("rejected"), "rejected"),
						q(`sum(rate(warren_orders_cancelled_total[$__rate_interval])) or vector(0)`, "cancelled"),
					}},
				{kind: value, title: "Rejected, last hour", unit: "percentunit", width: 8,
					description: "Share of the orders settled in the last hour that inventory rejected (out of stock).",
					queries:     []query{q(`(sum(increase(warren_orders_settled_total{outcome="rejected"}[1h])) or vector(0)) / clamp_min(sum(increase(warren_orders_settled_total[1h])), 1)`, "rejected")}},
				{title: "Settle latency", unit: "s",
					description: "From an order's creation to its confirmation or rejection: the whole saga, outbox and broker included.",
					queries: []query{
						q(settleQuantile("0.5"), "p50"),
						q(settleQuantile("0.95"), "p95"),
						q(settleQuantile("0.99"), "p99"),
					}},
				{title: "Pending orders by age", unit: "short",
					description: "Orders not yet settled, older than each age (cumulative: the 1m line counts the 5m ones too).",
					queries:     []query{q(`max by (older_than) (warren_orders_pending)`, "older than {{older_than}}")}},
				{title: "Orders pending too long", unit: "short", width: 24,
					description: "Orders whose event is still in the outbox (unpublished) or was published without an answer, past the order service's limit.",
					queries:     []query{q(`max by (event) (warren_orders_pending_too_long)`, "{{event}}")}},
			}},
			{title: "HTTP", panels: []panel{
				{title: "Requests per second by route", unit: "reqps",
					queries: []query{q(`sum by (job, route) (rate(warren_http_requests_total[$__rate_interval]))`, "{{job}} {{route}}")}},
				{title: "p95 duration by route", unit: "s",
					description: "Exemplars link to the request's trace in Jaeger.",
					queries:     []query{withExemplars(`histogram_quantile(0.95, sum by (job, route, le) (rate(warren_http_request_duration_seconds_bucket[$__rate_interval])))`, "{{job}} {{route}}")}},
				{title: "Server errors (5xx) per second by route", unit: "reqps",
					queries: []query{q(`sum by (job, route) (rate(warren_http_requests_total{code=~"5.."}[$__rate_interval])) or 0 * sum by (job, route) (rate(warren_http_requests_total[$__rate_interval]))`, "{{job}} {{route}}")}},
				{title: "Client errors (4xx) per second by route", unit: "reqps",
					description: "Refused requests: invalid input, missing or insufficient access token, unknown order.",
					queries:     []query{q(`sum by (job, route) (rate(warren_http_requests_total{code=~"4.."}[$__rate_interval])) or 0 * sum by (job, route) (rate(warren_http_requests_total[$__rate_interval]))`, "{{job}} {{route}}")}},
			}},
		},
	}
}

func queues() spec {
	perQueue := func(metric, filter string) string {
		return `sum by (queue) (` + metric + `{` + filter + `})`
	}
	perQueueRate := func(metric, filter string) string {
		return `sum by (queue) (rate(` + metric + `{` + filter + `}[$__rate_interval]))`
	}
	// handled is the rate of every message a handler finished, the series that exist for
	// every queue a service consumes: 0 times it gives a line at 0 for each queue.
	const handled = `sum by (queue) (rate(warren_messages_processed_total[$__rate_interval]))`
	handlerQuantile := func(quantile string) string {
		return `histogram_quantile(` + quantile + `, sum by (queue, le) (rate(warren_message_handler_duration_seconds_bucket[$__rate_interval])))`
	}
	return spec{
		uid:   "warren-queues",
		title: "Warren — queues",
		description: "RabbitMQ's view of each queue (its per-queue metrics) and the services' view " +
			"of the messages they handle. RabbitMQ publishes its own dashboards for the broker " +
			"itself: grafana.com 10991 (RabbitMQ-Overview) and 11340 (RabbitMQ-Quorum-Queues-Raft).",
		sections: []section{
			{title: "Work queues (RabbitMQ)", panels: []panel{
				{title: "Ready messages", unit: "short",
					description: "Waiting for a consumer. Growing: the consumers do not keep up, or none is connected.",
					queries:     []query{q(perQueue("rabbitmq_detailed_queue_messages_ready", workQueues), "{{queue}}")}},
				{title: "Unacknowledged messages", unit: "short",
					description: "Delivered to a consumer and not yet acknowledged: being handled (prefetch bounds it per consumer).",
					queries:     []query{q(perQueue("rabbitmq_detailed_queue_messages_unacked", workQueues), "{{queue}}")}},
				{title: "Published per second", unit: "ops",
					description: "Messages routed into each queue, from every exchange.",
					queries:     []query{q(perQueueRate("rabbitmq_detailed_queue_exchange_messages_published_total", workQueues), "{{queue}}")}},
				{title: "Delivered and acknowledged per second", unit: "ops",
					description: "Deliveries to consumers (manual acknowledgement), acknowledgements, and redeliveries (a consumer died or nacked with requeue).",
					queries: []query{
						q(perQueueRate("rabbitmq_detailed_queue_messages_delivered_ack_total", workQueues), "{{queue}} delivered"),
						q(perQueueRate("rabbitmq_detailed_queue_messages_acked_total", workQueues), "{{queue}} acked"),
						q(perQueueRate("rabbitmq_detailed_queue_messages_redelivered_total", workQueues), "{{queue}} redelivered"),
					}},
				{title: "Consumers", unit: "short", width: 24,
					description: "0 on a work queue: nothing handles it (the service is down, or paused its consumer).",
					queries:     []query{q(perQueue("rabbitmq_detailed_queue_consumers", workQueues), "{{queue}}")}},
			}},
			{title: "Dead letters and unroutable messages", panels: []panel{
				{title: "Dead-letter queues", unit: "short",
					description: "Messages a handler gave up on (<queue>.dlq). `warrenctl dlq` inspects and replays them.",
					queries:     []query{q(perQueue("rabbitmq_detailed_queue_messages", dlqQueues), "{{queue}}")}},
				{title: "Archive and unroutable", unit: "short",
					description: "warren.dead-letter-archive: dead letters that outlived their DLQ's retention, kept until an operator purges them; warren.unroutable-messages: messages no binding matched (the alternate exchange).",
					queries:     []query{q(perQueue("rabbitmq_detailed_queue_messages", brokerQueues), "{{queue}}")}},
				{title: "Dead-lettered by the broker per second", unit: "ops",
					description: "Messages RabbitMQ dead-lettered, by why: rejected (a handler's final nack), delivery limit (quorum queues), expired, queue full.",
					queries: []query{
						q(`sum(rate(rabbitmq_global_messages_dead_lettered_rejected_total[$__rate_interval]))`, "rejected"),
						q(`sum(rate(rabbitmq_global_messages_dead_lettered_delivery_limit_total[$__rate_interval]))`, "delivery limit"),
						q(`sum(rate(rabbitmq_global_messages_dead_lettered_expired_total[$__rate_interval]))`, "expired"),
						q(`sum(rate(rabbitmq_global_messages_dead_lettered_maxlen_total[$__rate_interval]))`, "queue full"),
					}},
				{title: "Unroutable per second", unit: "ops",
					description: "Published messages no queue took: returned to the publisher or dropped.",
					queries: []query{
						q(`sum(rate(rabbitmq_global_messages_unroutable_returned_total[$__rate_interval]))`, "returned"),
						q(`sum(rate(rabbitmq_global_messages_unroutable_dropped_total[$__rate_interval]))`, "dropped"),
					}},
			}},
			{title: "Handlers (Warren services)", panels: []panel{
				{title: "Handled per second", unit: "ops",
					queries: []query{q(handled, "{{queue}}")}},
				{title: "Handler latency", unit: "s",
					queries: []query{
						q(handlerQuantile("0.5"), "{{queue}} p50"),
						q(handlerQuantile("0.95"), "{{queue}} p95"),
					}},
				{title: "Failures per second", unit: "ops",
					description: "Handler attempts that failed (each retry counts).",
					queries:     []query{q(`sum by (queue) (rate(warren_messages_failed_total[$__rate_interval])) or 0 * `+handled, "{{queue}}")}},
				{title: "Dead-lettered per second", unit: "ops",
					description: "Messages a handler gave up on after its retries: sent to the queue's DLQ.",
					queries:     []query{q(`sum by (queue) (rate(warren_messages_dead_lettered_total[$__rate_interval])) or 0 * `+handled, "{{queue}}")}},
				{title: "Consumers paused", unit: "short", width: 24,
					description: "1: the service stopped consuming the queue (its database is unreachable, so it lets the broker keep the messages).",
					queries:     []query{q(`max by (queue) (warren_consumer_paused)`, "{{queue}}")}},
			}},
		},
	}
}

func outboxAndDatabase() spec {
	publishQuantile := func(quantile string) string {
		return `histogram_quantile(` + quantile + `, sum by (job, le) (rate(warren_outbox_publish_duration_seconds_bucket[$__rate_interval])))`
	}
	const databases = `datname!~"template.*"`
	return spec{
		uid:   "warren-outbox-database",
		title: "Warren — outbox and database",
		description: "The transactional outboxes of the order and inventory services, and " +
			"PostgreSQL as the exporter sees it.",
		sections: []section{
			{title: "Outbox", panels: []panel{
				{title: "Unpublished events", unit: "short",
					description: "Events committed with their change and not yet confirmed by the broker.",
					queries:     []query{q(`max by (job) (warren_outbox_unpublished_events)`, "{{job}}")}},
				{title: "Oldest unpublished event", unit: "s",
					description: "Age of the oldest event waiting; 0 when the outbox is empty. Growing: the relay cannot publish (broker down or blocked).",
					queries:     []query{q(`max by (job) (warren_outbox_oldest_unpublished_age_seconds)`, "{{job}}")}},
				{title: "Relay publish latency", unit: "s",
					description: "One event's publish and broker confirm. Exemplars link to the event's trace in Jaeger.",
					queries: []query{
						withExemplars(publishQuantile("0.5"), "{{job}} p50"),
						withExemplars(publishQuantile("0.95"), "{{job}} p95"),
						withExemplars(publishQuantile("0.99"), "{{job}} p99"),
					}},
				{title: "Published per second", unit: "ops",
					queries: []query{q(`sum by (job) (rate(warren_outbox_published_total[$__rate_interval]))`, "{{job}}")}},
			}},
			{title: "PostgreSQL", panels: []panel{
				{kind: value, title: "Exporter connected", unit: "short", width: 6,
					description: "1: the exporter reaches PostgreSQL.",
					queries:     []query{q(`max(pg_up)`, "up")}},
				{title: "Connections by database", unit: "short", width: 18,
					description: "Backends connected to each database, and the server's limit.",
					queries: []query{
						q(`sum by (datname) (pg_stat_database_numbackends{`+databases+`})`, "{{datname}}"),
						q(`max(pg_settings_max_connections)`, "max_connections"),
					}},
				{title: "Transactions per second", unit: "ops",
					queries: []query{
						q(`sum by (datname) (rate(pg_stat_database_xact_commit{`+databases+`}[$__rate_interval]))`, "{{datname}} commit"),
						q(`sum by (datname) (rate(pg_stat_database_xact_rollback{`+databases+`}[$__rate_interval]))`, "{{datname}} rollback"),
					}},
				{title: "Deadlocks per second", unit: "ops",
					queries: []query{q(`sum by (datname) (rate(pg_stat_database_deadlocks{`+databases+`}[$__rate_interval]))`, "{{datname}}")}},
				{title: "Locks held by mode", unit: "short", width: 24,
					queries: []query{q(`sum by (mode) (pg_locks_count)`, "{{mode}}")}},
			}},
		},
	}
}
