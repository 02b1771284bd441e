package postgres

import "github.com/prometheus/client_golang/prometheus"

// roundTrips counts the process's database round trips: its pools' (Connect installs the
// tracer that counts them) and those of connections made from a pool's config, such as the
// outbox relay's. A process-wide counter, like the Go runtime's metrics: one process, one
// figure, whatever the number of pools.
//
// A statement a connection runs for the first time is prepared first, a round trip of its
// own, counted too; except in a batch, which prepares its new statements unseen by tracers.
// Either way that happens once per connection and statement: in steady state the count is
// one per statement, one per batch and one per COPY.
var roundTrips = prometheus.NewCounter(prometheus.CounterOpts{
	Name: "warren_db_round_trips_total",
	Help: "Database round trips this process made: one per statement (BEGIN and COMMIT included), " +
		"one per batch, one per COPY, and one per statement a connection prepares on its first use.",
})

// Collectors returns the package's metrics, to register with the registry the ops
// listener serves (service.NewRegistry does). They are process-wide: register them once
// per registry.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{roundTrips}
}
