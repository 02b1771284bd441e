package flowbench

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/testkit"
)

// TestMain removes the OpenID Connect provider the benchmark starts (testkit.SharedHydra).
func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

var (
	ordersFlag  = flag.Int("orders", 2000, "orders placed in the max-rate phase")
	workersFlag = flag.Int("workers", 32, "requests in flight in the max-rate phase")
	latencyFor  = flag.Duration("latency-for", 20*time.Second, "how long the latency phase places orders")
	warmupFlag  = flag.Int("warmup", 200, "orders placed (and waited for) before measuring")
)

// benchCustomers is how many customers place the benchmark's orders: 2,000 orders at the
// maximum rate are then 10 per customer, under the per-customer burst (20) and open-order
// quota (20) that the order service applies by default.
const benchCustomers = 200

// settle bounds how long the benchmark waits for the orders of a phase to be done.
const settle = 5 * time.Minute

// BenchmarkFlow measures the whole flow; see the package documentation. It runs once
// whatever b.N asks: run it with -benchtime 1x.
func BenchmarkFlow(b *testing.B) {
	if testing.Short() {
		b.Skip("needs Docker and minutes (run without -short)")
	}
	if b.N > 1 {
		b.Fatal("BenchmarkFlow runs a fixed load: use -benchtime 1x")
	}
	collector, otlp := startCollector(b)
	sink, smtpAddr := startSMTPSink(b)
	t0 := time.Now()
	// A real OpenID Connect provider: the services verify every request's token as they do
	// in a deployment (its keys fetched once, then a signature check per request).
	idp := testkit.SharedHydra(b)
	env := map[string]string{
		// The rate limit protects a replica from a flood; it is not what is measured.
		"ORDER_RATE_LIMIT": "1000000",
		"ORDER_RATE_BURST": "1000000",
		"SMTP_ADDR":        smtpAddr,
		// Every span goes to the collector. The batch processor's queue (2,048 spans by
		// default) is raised so that none is dropped under load: a dropped span would
		// leave its order's trace incomplete. Export every 200 ms, not 5 s, so that a
		// phase's last orders are seen soon after they are done.
		"OTEL_EXPORTER_OTLP_ENDPOINT":    otlp,
		"OTEL_BSP_SCHEDULE_DELAY":        "200",
		"OTEL_BSP_MAX_QUEUE_SIZE":        "1000000",
		"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4096",
	}
	maps.Copy(env, idp.Env())
	sys := startSystem(b, env)
	b.Logf("system started in %s", time.Since(t0).Round(100*time.Millisecond))
	ctx := b.Context()
	staff := idp.Token(b, "bench-staff", "staff")
	for _, sku := range plentiful {
		if err := put(ctx, sys.urls["inventory"]+"/stock/"+sku, `{"available": 100000000}`, staff); err != nil {
			b.Fatal(err)
		}
	}
	p := &placer{url: sys.urls["order"], collector: collector}
	for i := range benchCustomers {
		p.customers = append(p.customers, idp.Token(b, fmt.Sprintf("bench-customer-%d", i), "customer"))
	}

	// Warm-up: connections, pools, the database's caches.
	warm, err := p.burst(ctx, *warmupFlag, *workersFlag)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := collector.waitDone(traceIDs(warm), settle); err != nil {
		b.Fatal(err)
	}

	costs, err := newCostMeter(ctx, sys)
	if err != nil {
		b.Fatal(err)
	}
	defer costs.close()
	dbSettings, err := costs.settings(ctx)
	if err != nil {
		b.Fatal(err)
	}
	// Let the warm-up's statistics reach the servers' views before the first reading.
	time.Sleep(statsSettle)
	var costBefore, costAfter costSample
	if err := costs.now(ctx, &costBefore); err != nil {
		b.Fatal(err)
	}
	if err := costs.settled(ctx, &costBefore); err != nil {
		b.Fatal(err)
	}
	meter, err := newCPUMeter(ctx, sys.pids, sys.containers)
	if err != nil {
		b.Fatal(err)
	}
	cpuBefore, err := meter.sample(ctx)
	if err != nil {
		b.Fatal(err)
	}

	// Phase 1: as fast as the system takes them, until every one is done.
	b.ResetTimer()
	start := time.Now()
	burst, err := p.burst(ctx, *ordersFlag, *workersFlag)
	if err != nil {
		b.Fatal(err)
	}
	accepted := time.Since(start)
	doneAt, err := collector.waitDone(traceIDs(burst), settle)
	if err != nil {
		b.Fatal(err)
	}
	cpuAfter, err := meter.sample(ctx)
	if err != nil {
		b.Fatal(err)
	}
	cpuWall := time.Since(start)
	if err := costs.now(ctx, &costAfter); err != nil {
		b.Fatal(err)
	}
	// The counters that are published late, and the spans still on their way (sms's
	// OrderPlaced, if the broker delivers it: no order waits for it).
	time.Sleep(statsSettle)
	if err := costs.settled(ctx, &costAfter); err != nil {
		b.Fatal(err)
	}
	perOrder := newOrderCosts(costBefore, costAfter, collector, burst)
	flowTime := latest(doneAt).Sub(start)
	flowRate := float64(len(burst)) / flowTime.Seconds()
	httpRate := float64(len(burst)) / accepted.Seconds()

	// Phase 2: at half that rate, each order's latency from its 202 to its last consumer.
	rate := flowRate / 2
	paced, err := p.paced(ctx, rate, *latencyFor)
	if err != nil {
		b.Fatal(err)
	}
	doneAt2, err := collector.waitDone(traceIDs(paced), settle)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	latencies := make([]time.Duration, len(paced))
	for i, o := range paced {
		latencies[i] = doneAt2[i].Sub(o.accept)
	}

	w := os.Stdout
	// One line, read by `make bench` for its JSON line: what the server said, not what
	// the benchmark asked for.
	fmt.Fprintf(w, "\ndatabase settings (from the server):")
	for _, name := range settings {
		fmt.Fprintf(w, " %s=%s", name, strings.ReplaceAll(dbSettings[name], " ", ""))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "\nwhole flow: %d orders over HTTP, done = confirmed and handled by every consumer that must\n", len(burst))
	fmt.Fprintf(w, "  %-44s %10.0f orders/s  (all %d accepted in %.1f s)\n", "HTTP accepted:", httpRate, len(burst), accepted.Seconds())
	fmt.Fprintf(w, "  %-44s %10.0f orders/s  (last done after %.1f s)\n", "flow (accepted to done):", flowRate, flowTime.Seconds())
	fmt.Fprintf(w, "  %-44s p50 %.1f ms  p95 %.1f ms  p99 %.1f ms  max %.1f ms\n",
		fmt.Sprintf("latency at %.0f orders/s (%d orders):", rate, len(paced)),
		ms(percentile(latencies, 0.50)), ms(percentile(latencies, 0.95)), ms(percentile(latencies, 0.99)), ms(percentile(latencies, 1)))
	total := len(warm) + len(burst) + len(paced)
	fmt.Fprintf(w, "  %-44s %d (2 per order: %d)\n", "mails received by the SMTP sink:", sink.mails.Load(), 2*total)
	newBreakdown(collector, paced).print(w, fmt.Sprintf("where an order's time goes at %.0f orders/s", rate))
	newBreakdown(collector, burst).print(w, "the same at full rate (queues build up in front of the slowest stage)")
	utilization(w, collector, burst, flowTime)
	cpuPerOrder := printCPU(w, cpuBefore, cpuAfter, cpuWall, len(burst))
	perOrder.print(w, sys.infra.statements)
	dbWork(w, collector, paced)

	b.ReportMetric(flowRate, "orders/s")
	b.ReportMetric(httpRate, "http_orders/s")
	b.ReportMetric(ms(percentile(latencies, 0.50)), "p50_ms")
	b.ReportMetric(ms(percentile(latencies, 0.95)), "p95_ms")
	b.ReportMetric(ms(percentile(latencies, 0.99)), "p99_ms")
	b.ReportMetric(ms(cpuPerOrder), "cpu_ms/order")
	// Until every service serves the round-trip counter the figure would be a part
	// passed off as the whole: leave it out, and `make bench` prints n/a.
	if len(perOrder.roundTrips) == len(services) {
		b.ReportMetric(sum(perOrder.roundTrips), "db_round_trips/order")
	}
	b.ReportMetric(sum(perOrder.xacts), "db_transactions/order")
	if sys.infra.statements {
		b.ReportMetric(sum(perOrder.statements), "db_statements/order")
	}
	b.ReportMetric(sum(perOrder.deliveries), "deliveries/order")
	b.ReportMetric(sum(perOrder.spans), "spans/order")
	b.ReportMetric(sum(perOrder.dbSpans), "db_spans/order")
}

func traceIDs(orders []*order) [][16]byte {
	ids := make([][16]byte, len(orders))
	for i, o := range orders {
		ids[i] = o.trace
	}
	return ids
}

func latest(ts []time.Time) time.Time {
	var last time.Time
	for _, t := range ts {
		if t.After(last) {
			last = t
		}
	}
	return last
}
