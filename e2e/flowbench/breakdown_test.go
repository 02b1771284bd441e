package flowbench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
)

// Where an order's time goes. An order's critical path is the chain of spans from its
// POST /orders to the consumer span that ended last: the HTTP server span, then for each
// hop a producer span (the outbox relay publishing) and a consumer span. The path is cut
// into stages that add up to its length exactly:
//
//	http          the POST's server span, less its database work
//	pool wait     waits for a connection of the service's pool (db.pool.wait_ms)
//	database      the database spans (transactions, statements) of the HTTP and consumer spans
//	outbox relay  from the span that stored an event to its publish starting
//	broker        from the publish starting to the consumer's span starting: the broker,
//	              and the wait in the queue while the consumer handles earlier messages
//	consumer      the consumer span, less its database work (SMTP for email)
var layers = []string{"http", "pool wait", "database", "outbox relay", "broker", "consumer"}

// stage is one piece of a critical path.
type stage struct {
	label, layer string
	d            time.Duration
}

// criticalPath cuts an order's trace into stages, and reports false when the trace lacks
// the spans to do so.
func criticalPath(spans []span) ([]stage, bool) {
	byID := map[[8]byte]span{}
	dbTime := map[[8]byte]time.Duration{}   // statements, by parent span
	poolTime := map[[8]byte]time.Duration{} // pool waits, by parent span
	var leaf span
	for _, s := range spans {
		byID[s.id] = s
		if s.db {
			// A transaction's span (postgres.InTx) begins before it waits for its
			// connection, a lone statement's after: the wait is inside the one, before
			// the other.
			poolTime[s.parent] += s.poolWait
			d := s.duration()
			if s.name == "db.transaction" {
				d -= s.poolWait
			}
			dbTime[s.parent] += d
		}
		if s.kind == tracepb.Span_SPAN_KIND_CONSUMER && s.end.After(leaf.end) {
			leaf = s
		}
	}
	var path []span
	for s, ok := leaf, leaf.kind != 0; ok; s, ok = byID[s.parent] {
		switch s.kind {
		case tracepb.Span_SPAN_KIND_SERVER, tracepb.Span_SPAN_KIND_PRODUCER, tracepb.Span_SPAN_KIND_CONSUMER:
			path = append(path, s)
		}
	}
	slices.Reverse(path)
	if len(path) == 0 || path[0].kind != tracepb.Span_SPAN_KIND_SERVER {
		return nil, false
	}
	var out []stage
	for i, s := range path {
		switch s.kind {
		case tracepb.Span_SPAN_KIND_SERVER:
			db, pool := dbTime[s.id], poolTime[s.id]
			out = append(out, stage{"HTTP " + s.name, "http", s.duration() - db - pool},
				stage{"  pool wait (HTTP)", "pool wait", pool},
				stage{"  database (HTTP)", "database", db})
		case tracepb.Span_SPAN_KIND_PRODUCER:
			out = append(out, stage{"outbox relay (" + s.service + ") " + shortType(s.typ), "outbox relay", s.start.Sub(path[i-1].end)})
		case tracepb.Span_SPAN_KIND_CONSUMER:
			db, pool := dbTime[s.id], poolTime[s.id]
			out = append(out, stage{"broker and queue to " + s.service, "broker", s.start.Sub(path[i-1].start)},
				stage{s.service + " handles " + shortType(s.typ), "consumer", s.duration() - db - pool},
				stage{"  pool wait (" + s.service + ")", "pool wait", pool},
				stage{"  database (" + s.service + ")", "database", db})
		}
	}
	return out, true
}

// shortType is a message type without its version: "order.placed.v1" is "order.placed".
func shortType(t string) string {
	if i := strings.LastIndex(t, ".v"); i > 0 {
		return t[:i]
	}
	return t
}

// breakdown aggregates the critical paths of many orders.
type breakdown struct {
	labels []string // in the order they first appear on a path
	stages map[string]*stageStats
	layers map[string]time.Duration // summed over orders
	total  time.Duration            // the paths' lengths, summed
	orders int
}

type stageStats struct {
	layer string
	ds    []time.Duration
}

func newBreakdown(c *collector, orders []*order) breakdown {
	b := breakdown{stages: map[string]*stageStats{}, layers: map[string]time.Duration{}}
	for _, o := range orders {
		path, ok := criticalPath(c.spansOf(o.trace))
		if !ok {
			continue
		}
		b.orders++
		for _, st := range path {
			s := b.stages[st.label]
			if s == nil {
				s = &stageStats{layer: st.layer}
				b.stages[st.label] = s
				b.labels = append(b.labels, st.label)
			}
			s.ds = append(s.ds, st.d)
			b.layers[st.layer] += st.d
			b.total += st.d
		}
	}
	return b
}

// print writes the stages as a table, then the share of each layer.
func (b breakdown) print(w io.Writer, title string) {
	fmt.Fprintf(w, "\n%s (%d orders; critical path from POST /orders to the last consumer done)\n", title, b.orders)
	fmt.Fprintf(w, "  %-46s %-12s %6s %8s %8s %8s %6s\n", "stage", "layer", "orders", "p50 ms", "p95 ms", "mean ms", "share")
	for _, label := range b.labels {
		s := b.stages[label]
		var sum time.Duration
		for _, d := range s.ds {
			sum += d
		}
		fmt.Fprintf(w, "  %-46s %-12s %6d %8.1f %8.1f %8.1f %5.1f%%\n", label, s.layer, len(s.ds),
			ms(percentile(s.ds, 0.50)), ms(percentile(s.ds, 0.95)), ms(sum/time.Duration(len(s.ds))), share(sum, b.total))
	}
	if b.orders == 0 {
		return
	}
	fmt.Fprintf(w, "  mean path %.1f ms:", ms(b.total/time.Duration(b.orders)))
	for _, l := range layers {
		fmt.Fprintf(w, "  %s %.1f ms (%.0f%%)", l, ms(b.layers[l]/time.Duration(b.orders)), share(b.layers[l], b.total))
	}
	fmt.Fprintln(w)
}

// utilization reports, for each consumer and outbox relay, how many messages it handled
// and how busy it was over window: the sum of its spans' lengths over the window's. A
// stage that handles one message at a time is the flow's bottleneck near 100%; one that
// handles several at once (concurrent handlers, pipelined publishes) can exceed it.
func utilization(w io.Writer, c *collector, orders []*order, window time.Duration) {
	type load struct {
		n    int
		busy time.Duration
	}
	loads := map[string]*load{}
	for _, o := range orders {
		for _, s := range c.spansOf(o.trace) {
			var name string
			switch s.kind {
			case tracepb.Span_SPAN_KIND_CONSUMER:
				name = s.service + " consumer (" + s.dest + ")"
			case tracepb.Span_SPAN_KIND_PRODUCER:
				name = s.service + " outbox relay publishing"
			case tracepb.Span_SPAN_KIND_SERVER:
				name = s.service + " HTTP " + s.name
			default:
				continue
			}
			l := loads[name]
			if l == nil {
				l = &load{}
				loads[name] = l
			}
			l.n++
			l.busy += s.duration()
		}
	}
	names := make([]string, 0, len(loads))
	for n := range loads {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Fprintf(w, "\nbusy time during the max-rate phase (%.1f s; over 100%%: spans that overlap, as HTTP requests and pipelined publishes do)\n", window.Seconds())
	fmt.Fprintf(w, "  %-46s %8s %8s %7s\n", "who", "spans", "mean ms", "busy")
	for _, n := range names {
		l := loads[n]
		fmt.Fprintf(w, "  %-46s %8d %8.2f %6.0f%%\n", n, l.n, ms(l.busy/time.Duration(l.n)), share(l.busy, window))
	}
}

// percentile returns the p-quantile of ds (nearest rank).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(p*float64(len(s)))) - 1
	return s[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func share(part, whole time.Duration) float64 {
	if whole == 0 {
		return 0
	}
	return 100 * float64(part) / float64(whole)
}

// dbWorkRows is how many statements dbWork lists.
const dbWorkRows = 12

// dbWork reports the database spans of orders by service and statement: how many each
// order costs and how long they take, the costliest first.
func dbWork(w io.Writer, c *collector, orders []*order) {
	type work struct {
		n     int
		total time.Duration
	}
	byName := map[string]*work{}
	for _, o := range orders {
		for _, s := range c.spansOf(o.trace) {
			if !s.db {
				continue
			}
			k := s.service + " " + s.name
			if byName[k] == nil {
				byName[k] = &work{}
			}
			byName[k].n++
			byName[k].total += s.duration()
		}
	}
	names := make([]string, 0, len(byName))
	for k := range byName {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return byName[names[i]].total > byName[names[j]].total })
	fmt.Fprintf(w, "\ndatabase statements and pool waits per order at half rate (%d orders), costliest first\n", len(orders))
	fmt.Fprintf(w, "  %-46s %8s %8s %8s\n", "service and statement", "per order", "mean ms", "ms/order")
	for _, k := range names[:min(len(names), dbWorkRows)] {
		wk := byName[k]
		fmt.Fprintf(w, "  %-46.46s %8.1f %8.2f %8.2f\n", k, float64(wk.n)/float64(len(orders)),
			ms(wk.total/time.Duration(wk.n)), ms(wk.total/time.Duration(len(orders))))
	}
}
