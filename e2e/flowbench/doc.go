// Package flowbench measures Warren's whole flow: orders placed over HTTP until each is
// confirmed and every consumer has handled it, and where an order's time goes on the way.
// `make bench` runs it after the messaging layer's benchmarks and prints the flow's
// throughput as a ratio to their raw-broker baseline (the median raw round of
// BenchmarkFanoutRatio).
//
//	cd e2e && go test -run '^$' -bench Flow -benchtime 1x -timeout 15m ./flowbench
//	... ./flowbench -orders 5000 -latency-for 30s      # a longer run
//
// It is a benchmark, so plain `go test` never runs it. It needs Docker and the images of
// `make third-party-images` (RABBITMQ_IMAGE, POSTGRES_IMAGE, HYDRA_IMAGE) and takes three to
// four minutes.
//
// The system: RabbitMQ and PostgreSQL in containers (shared/testkit), the broker's vhost
// loaded from deploy/rabbitmq/definitions.json, one database per service; the five
// services built with `go build` from the working tree and run as processes of this
// machine, configured by environment as in production except that the order rate limit is
// raised out of the way. Mail goes to an SMTP sink in the benchmark's process that counts
// and discards it, and spans to an OTLP/HTTP collector in the same process.
//
// PostgreSQL runs with the durability compose gives it: the image's own command with
// PostgreSQL's defaults, so fsync, synchronous_commit and full_page_writes are on and every
// commit waits for the disk (testcontainers' postgres module would run it with fsync=off).
// The benchmark reads the settings back from the server (SHOW) and prints them on one line,
// "database settings (from the server): fsync=on synchronous_commit=on ...", from which
// `make bench` takes the JSON line's "fsync". One addition to compose's server:
// pg_stat_statements is preloaded, to count each service's statements; if the image lacks
// it, the server starts without it and the statements are n/a.
//
// An order is done when its trace holds a consumer span for each thing that must happen
// to it: OrderPlaced handled by inventory, email and analytics; inventory's reservation by
// order (the order is confirmed) and analytics; the confirmation by email, analytics and,
// in the regions it serves, sms. Not OrderPlaced by sms, which does nothing with it: the
// topology no longer delivers it there, and on a broker that still does, the benchmark
// counts the delivery and its spans but no order waits for it. Each POST carries a
// traceparent naming a trace the benchmark chose, so no order has to be looked up. It
// relies on the spans shared/messaging makes: "process <queue>" (kind consumer) and
// "publish <exchange>" (kind producer, a child of the span that stored the event in the
// outbox), both with the messaging.destination.name and messaging.message.type attributes.
//
// The phases, after a warm-up:
//
//  1. max rate: -orders orders (default 2,000) posted with -workers requests in flight
//     (default 32); flow orders/s is their number over the time from the first POST to
//     the last order done.
//  2. latency: orders arriving on schedule (an open loop) at half that rate for
//     -latency-for (default 20 s); each one's latency runs from its 202 to the end of its
//     last consumer span, and p50/p95/p99 are reported.
//
// Then it prints where the time went: each order's critical path (its POST, and each hop's
// outbox relay, broker and consumer, to the consumer that finished last) cut into stages,
// at half rate and at full rate; how busy each consumer and outbox relay was during phase
// 1 (its spans' total length over the phase's: a stage that handles one message at a time
// is the bottleneck near 100%); the CPU each service, the broker, the
// database, the benchmark and everything else on the machine used in phase 1, per order
// (on two cores the flow is bound by CPU); what one order costs in phase 1, by service
// (costs_test.go); and the costliest database statements.
//
// What one order costs, so that a regression shows as a number: counters read before and
// after phase 1, over its orders.
//
//   - database round trips: each service's warren_db_round_trips_total on its ops
//     /metrics (one per statement, BEGIN and COMMIT included, per batch, per COPY); n/a
//     for a service that does not serve it.
//   - database transactions: xact_commit + xact_rollback of the service's database
//     (pg_stat_database).
//   - statements: calls in the service's database (pg_stat_statements), with a table of
//     the costliest statements per order.
//   - deliveries: deliver_get summed over every queue of the broker (the management API),
//     redeliveries and dead letters included, with each queue's share.
//   - spans: every span of the phase's traces, and how many of them are database spans
//     (those with a db.system or db.system.name attribute, whatever their name or
//     granularity: a statement, a transaction, a wait for a connection).
//
// PostgreSQL flushes an idle backend's transaction counts up to 10 s late and RabbitMQ
// refreshes queue figures every 5 s, so those are read 12 s after the warm-up and after
// phase 1; the relays' idle polls during the second wait (one a second per service)
// count, a few hundredths of a transaction per order at 2,000 orders.
//
// The benchmark line carries orders/s, http_orders/s, p50_ms, p95_ms, p99_ms,
// cpu_ms/order (Warren's CPU time per order in phase 1: services, broker and database,
// which varies less between runs than the rates do), db_round_trips/order (all services;
// left out until every service serves the counter), db_transactions/order,
// db_statements/order, deliveries/order, spans/order and db_spans/order.
//
// The services' spans are exported during both phases, as they are when deployed; the
// collector and the load generator share the machine with the system, and so does every
// other process on it (the CPU table shows how much they took): compare runs of the same
// machine, ideally within one `make bench`.
package flowbench
