package loadgen

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Counts are what a run has done so far.
type Counts struct {
	// Placed orders were accepted (202); Confirmed, Rejected and Cancelled are the ones
	// that reached that status.
	Placed, Confirmed, Rejected, Cancelled int
	// Unexpected orders settled in another status than their kind wants (an in-stock order
	// rejected because the stock ran out, say); they are also counted in their status.
	Unexpected int
	// Unsettled orders were still pending when the run gave up waiting for them.
	Unsettled int
	// Abandoned orders were never placed: the run ended while they waited out a
	// Retry-After.
	Abandoned int
	// Throttled counts the answers 429 (and 503) whose Retry-After was waited out.
	Throttled int
	// StockQueries counts the GET /stock/{sku} inventory answered.
	StockQueries int
	// Errors counts unexpected answers and failed requests.
	Errors int
}

// Stats is a snapshot of a run, as progress lines and the summary show it.
type Stats struct {
	Counts
	// Elapsed is the time since the run started.
	Elapsed time.Duration
	// Rate is orders placed per second: over the last interval in a progress line, over
	// the whole run in the summary.
	Rate float64
	// P50 and P99 are the latencies of the accepted POST /orders of the same span.
	P50, P99 time.Duration
}

// String is one line of figures.
func (s Stats) String() string {
	return fmt.Sprintf("t=%s placed=%d confirmed=%d rejected=%d cancelled=%d errors=%d throttled=%d stock_queries=%d "+
		"unsettled=%d unexpected=%d abandoned=%d rate=%.1f/s p50=%s p99=%s",
		s.Elapsed.Round(time.Second), s.Placed, s.Confirmed, s.Rejected, s.Cancelled, s.Errors, s.Throttled,
		s.StockQueries, s.Unsettled, s.Unexpected, s.Abandoned, s.Rate,
		s.P50.Round(100*time.Microsecond), s.P99.Round(100*time.Microsecond))
}

// recorder keeps the counts and latencies, for the whole run and since the last
// progress line.
type recorder struct {
	mu       sync.Mutex
	start    time.Time
	counts   Counts
	all      []time.Duration
	interval []time.Duration
	last     time.Time
	lastN    int
}

func newRecorder(start time.Time) *recorder { return &recorder{start: start, last: start} }

func (r *recorder) add(f func(*Counts)) {
	r.mu.Lock()
	f(&r.counts)
	r.mu.Unlock()
}

func (r *recorder) placed(latency time.Duration) {
	r.mu.Lock()
	r.counts.Placed++
	r.all = append(r.all, latency)
	r.interval = append(r.interval, latency)
	r.mu.Unlock()
}

// progress returns the figures since the last call, and starts a new interval.
func (r *recorder) progress(now time.Time) Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Counts: r.counts, Elapsed: now.Sub(r.start)}
	if d := now.Sub(r.last).Seconds(); d > 0 {
		s.Rate = float64(r.counts.Placed-r.lastN) / d
	}
	s.P50, s.P99 = percentiles(r.interval)
	r.interval, r.last, r.lastN = r.interval[:0], now, r.counts.Placed
	return s
}

// total returns the figures of the whole run.
func (r *recorder) total(now time.Time) Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Counts: r.counts, Elapsed: now.Sub(r.start)}
	if d := s.Elapsed.Seconds(); d > 0 {
		s.Rate = float64(r.counts.Placed) / d
	}
	s.P50, s.P99 = percentiles(r.all)
	return s
}

// percentiles returns the 50th and 99th percentiles (nearest rank) of d, which it sorts.
func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	if len(d) == 0 {
		return 0, 0
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	return rank(0.50), rank(0.99)
}
