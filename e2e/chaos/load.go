package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenhq/warren/e2e"
	"github.com/warrenhq/warren/shared/events"
)

// The stock a load starts from (set with inventory's PUT /stock/{sku}): plenty of three
// SKUs, a little of one (it runs out during the load, so late orders for it are rejected
// while others go through) and none of one (every order naming it is rejected).
var initialStock = map[string]int{
	"carrot-seeds":  1_000_000,
	"garden-trowel": 1_000_000,
	"watering-can":  1_000_000,
	"burrow-lamp":   300,
	"rare-orchid":   0,
}

var plentiful = []string{"carrot-seeds", "garden-trowel", "watering-can"}

// Load is a bounded load of orders placed over HTTP, as customers would place them.
type Load struct {
	// Orders is how many orders to place.
	Orders int
	// Concurrency bounds the requests in flight; Rate the orders started per second.
	Concurrency int
	Rate        float64
	// Deadline is how long one order (or cancellation) is retried before the load gives up.
	Deadline time.Duration
	// CancelEvery: every CancelEvery-th order, of plentiful SKUs only, is cancelled once
	// it is confirmed. 0 cancels none.
	CancelEvery int
	// AttemptTimeout is how long one request waits for its answer before the client gives
	// up on it (an ambiguous failure, retried with the same Idempotency-Key). 0: the e2e
	// client's 10 s.
	AttemptTimeout time.Duration
}

// Placed is one order of a load.
type Placed struct {
	N       int
	Request e2e.OrderRequest
	// Key is the order's Idempotency-Key, sent with every attempt: however many attempts
	// reach the service, they place one order.
	Key string
	// ID is the order's id once accepted (202), else "".
	ID string
	// Attempts counts the POSTs it took.
	Attempts int
	// Cancel tells that the load cancels it once confirmed; Cancelled that it did.
	Cancel, Cancelled bool
	// Probe marks the orders placed to time the recovery.
	Probe bool
	// Err is why it was not accepted, or not cancelled.
	Err error
}

// Counts are what a run has done so far.
type Counts struct {
	Sent, Accepted, GaveUp int
	// Retried counts the failed requests that were retried, by failure.
	Refused, ServerErrors, Throttled, Ambiguous int
	// Rejected counts 4xx answers other than 429: a bug, never retried.
	Rejected int
}

// Retried is every failed request that was retried.
func (c Counts) Retried() int { return c.Refused + c.ServerErrors + c.Throttled + c.Ambiguous }

// Run is a load being placed.
type Run struct {
	load  Load
	order string // the order API's base URL
	token string // the customer's access token, sent with every request
	// keys prefixes the orders' Idempotency-Keys: unique to the run, so that a system
	// that keeps keys across runs never answers one run's order with another's.
	keys string

	started  atomic.Int64
	counters [5]atomic.Int64 // by failure
	sent     atomic.Int64
	accepted atomic.Int64
	gaveUp   atomic.Int64

	mu     sync.Mutex
	orders []*Placed
	// serverErrors holds when each request answered 5xx was sent and answered.
	serverErrors []exchange

	cancels chan *Placed
	done    chan struct{}
}

// Start starts placing the load on the order API at orderURL, as the customer whose access
// token is token, and returns at once.
func (l Load) Start(ctx context.Context, orderURL, token string) *Run {
	r := &Run{load: l, order: orderURL, token: token, keys: fmt.Sprintf("chaos-%016x", rand.Uint64()),
		cancels: make(chan *Placed, l.Orders), done: make(chan struct{})}
	var cancellers sync.WaitGroup
	for range 2 {
		cancellers.Go(func() {
			for p := range r.cancels {
				r.cancel(ctx, p)
			}
		})
	}
	go func() {
		defer close(r.done)
		defer cancellers.Wait()
		defer close(r.cancels)
		var placers sync.WaitGroup
		slots := make(chan struct{}, l.Concurrency)
		tick := time.NewTicker(time.Duration(float64(time.Second) / l.Rate))
		defer tick.Stop()
		for n := range l.Orders {
			select {
			case <-ctx.Done():
				placers.Wait()
				return
			case <-tick.C:
			}
			slots <- struct{}{}
			p := newOrder(n, l.CancelEvery)
			r.add(p)
			r.started.Add(1)
			placers.Go(func() {
				defer func() { <-slots }()
				if r.place(ctx, p) && p.Cancel {
					r.cancels <- p
				}
			})
		}
		placers.Wait()
	}()
	return r
}

// WaitStarted returns once n orders were started (or the run is over).
func (r *Run) WaitStarted(ctx context.Context, n int) {
	for r.started.Load() < int64(n) {
		select {
		case <-ctx.Done():
			return
		case <-r.done:
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Wait waits until every order was accepted or given up on, and every cancellation done,
// and returns the orders, probes included.
func (r *Run) Wait() []*Placed {
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*Placed(nil), r.orders...)
}

// Counts returns what the run has done so far.
func (r *Run) Counts() Counts {
	return Counts{
		Sent: int(r.sent.Load()), Accepted: int(r.accepted.Load()), GaveUp: int(r.gaveUp.Load()),
		Refused: int(r.counters[refused].Load()), ServerErrors: int(r.counters[serverError].Load()),
		Throttled: int(r.counters[throttled].Load()), Ambiguous: int(r.counters[ambiguous].Load()),
		Rejected: int(r.counters[rejected].Load()),
	}
}

// Probe places one more order (retried like the others) and waits until it is settled:
// the time it takes is how long the system needs to carry an order end to end again.
func (r *Run) Probe(ctx context.Context) (time.Duration, error) {
	t0 := time.Now()
	r.mu.Lock()
	p := newOrder(r.load.Orders+len(r.orders), 0)
	r.mu.Unlock()
	p.Probe = true
	p.Request.Items = []e2e.Line{{SKU: "carrot-seeds", Quantity: 1}}
	r.add(p)
	if !r.place(ctx, p) {
		return 0, fmt.Errorf("probe order not accepted: %w", p.Err)
	}
	deadline := time.Now().Add(r.load.Deadline)
	for {
		o, err := getOrder(ctx, r.order, r.token, p.ID)
		if err == nil && o.Status != e2e.StatusPending {
			return time.Since(t0), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("probe order %s not settled within %s (last: %+v, %v)", p.ID, r.load.Deadline, o.Status, err)
		}
		if !sleep(ctx, 100*time.Millisecond) {
			return 0, ctx.Err()
		}
	}
}

// add records p as one of the run's orders and gives it its Idempotency-Key.
func (r *Run) add(p *Placed) {
	p.Key = fmt.Sprintf("%s-%d", r.keys, p.N)
	r.mu.Lock()
	r.orders = append(r.orders, p)
	r.mu.Unlock()
	r.sent.Add(1)
}

// place posts p until it is accepted, retrying what a fault explains (refused
// connections, 5xx, 429, timeouts) with backoff until the load's deadline. It reports
// whether p was accepted. Every attempt carries p's Idempotency-Key: an attempt that timed
// out after the service placed the order is answered, when retried, with that same order.
func (r *Run) place(ctx context.Context, p *Placed) bool {
	deadline := time.Now().Add(r.load.Deadline)
	wait := 100 * time.Millisecond
	for {
		p.Attempts++
		var out struct {
			ID string `json:"id"`
		}
		sent := time.Now()
		err := r.attempt(ctx, func(ctx context.Context) error {
			return e2e.Call(ctx, http.MethodPost, r.order+"/orders", http.Header{"Idempotency-Key": {p.Key}, "Authorization": {"Bearer " + r.token}}, p.Request, http.StatusAccepted, &out)
		})
		if err == nil {
			p.ID, p.Err = out.ID, nil
			r.accepted.Add(1)
			return true
		}
		p.Err = err
		kind := classify(err)
		r.counters[kind].Add(1)
		if kind == serverError {
			r.serverError(sent)
		}
		if kind == rejected || time.Now().After(deadline) || ctx.Err() != nil {
			r.gaveUp.Add(1)
			return false
		}
		if se, ok := err.(*e2e.StatusError); ok && se.RetryAfter > wait {
			wait = se.RetryAfter
		}
		if !sleep(ctx, wait/2+rand.N(wait/2)) {
			return false
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// cancel waits until p is confirmed, then cancels it, retrying through faults. A 409 to a
// retried cancellation is fine when the order is cancelled: the earlier attempt did it.
func (r *Run) cancel(ctx context.Context, p *Placed) {
	deadline := time.Now().Add(r.load.Deadline)
	for {
		o, err := getOrder(ctx, r.order, r.token, p.ID)
		switch {
		case err == nil && o.Status == e2e.StatusCancelled:
			p.Cancelled = true
			return
		case err == nil && o.Status == e2e.StatusConfirmed:
			sent := time.Now()
			err = r.attempt(ctx, func(ctx context.Context) error {
				return call(ctx, r.token, http.MethodPost, r.order+"/orders/"+url.PathEscape(p.ID)+"/cancel", nil, http.StatusOK, nil)
			})
			if err == nil {
				p.Cancelled = true
				return
			}
			if classify(err) == serverError {
				r.serverError(sent)
			}
		case err == nil && o.Status == e2e.StatusRejected:
			p.Err = fmt.Errorf("not cancelled: the order was rejected (%s)", o.Reason)
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Err = fmt.Errorf("not cancelled within %s: %v", r.load.Deadline, err)
			return
		}
		if !sleep(ctx, 200*time.Millisecond) {
			return
		}
	}
}

// attempt makes one request, given the load's AttemptTimeout.
func (r *Run) attempt(ctx context.Context, request func(ctx context.Context) error) error {
	if r.load.AttemptTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.load.AttemptTimeout)
		defer cancel()
	}
	return request(ctx)
}

// exchange is one request: when it was sent and when its answer came.
type exchange struct{ sent, answered time.Time }

// serverError records a 5xx answer, now, to a request sent at sent.
func (r *Run) serverError(sent time.Time) {
	r.mu.Lock()
	r.serverErrors = append(r.serverErrors, exchange{sent: sent, answered: time.Now()})
	r.mu.Unlock()
}

// ServerErrorsOutside returns when each request answered 5xx was sent, for those a fault
// from from to to cannot explain: answered before from, or sent after to. A request sent
// just before the fault and answered during it was in flight when the fault struck.
func (r *Run) ServerErrorsOutside(from, to time.Time) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []time.Time
	for _, e := range r.serverErrors {
		if e.answered.Before(from) || e.sent.After(to) {
			out = append(out, e.sent)
		}
	}
	return out
}

func getOrder(ctx context.Context, base, token, id string) (e2e.Order, error) {
	var o e2e.Order
	err := call(ctx, token, http.MethodGet, base+"/orders/"+url.PathEscape(id), nil, http.StatusOK, &o)
	return o, err
}

// newOrder is order n of a load, the same in every run: a region in turn, one to three
// lines; about one in twelve names rare-orchid (rejected), one in seven burrow-lamp
// (confirmed until it runs out). Each customer has an address of their own.
func newOrder(n, cancelEvery int) *Placed {
	rnd := rand.New(rand.NewPCG(uint64(n), 0x5eed))
	p := &Placed{N: n, Request: e2e.OrderRequest{
		Customer: events.Customer{
			Name:  fmt.Sprintf("Chaos Customer %d", n),
			Email: fmt.Sprintf("customer-%d@chaos.example", n),
			Phone: "+44 20 7946 0958",
		},
		Region: events.Regions[n%len(events.Regions)],
	}}
	skus := rnd.Perm(len(plentiful))[:1+rnd.IntN(len(plentiful))]
	for _, i := range skus {
		p.Request.Items = append(p.Request.Items, e2e.Line{SKU: plentiful[i], Quantity: 1 + rnd.IntN(5)})
	}
	switch {
	case n%12 == 5:
		p.Request.Items = append(p.Request.Items, e2e.Line{SKU: "rare-orchid", Quantity: 1})
	case n%7 == 3:
		p.Request.Items = append(p.Request.Items, e2e.Line{SKU: "burrow-lamp", Quantity: 1 + rnd.IntN(3)})
	case cancelEvery > 0 && n%cancelEvery == 0:
		p.Cancel = true
	}
	return p
}

// sleep waits d and reports whether ctx is still live.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
