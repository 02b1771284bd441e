package flowbench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenhq/warren/e2e"
	"github.com/warrenhq/warren/shared/events"
)

// plentiful are the SKUs the benchmark orders; it stocks them so that every order is
// confirmed (a rejection would end the flow one hop early).
var plentiful = []string{"carrot-seeds", "garden-trowel", "watering-can"}

// order is one order the benchmark placed.
type order struct {
	n      int
	trace  [16]byte
	req    e2e.OrderRequest
	want   []hop
	accept time.Time // when its 202 arrived
}

// newOrder is order n: a region in turn, one to three lines of plentiful SKUs.
func newOrder(n int) *order {
	rnd := mrand.New(mrand.NewPCG(uint64(n), 0xbe4c))
	o := &order{n: n, req: e2e.OrderRequest{
		Customer: events.Customer{
			Name:  fmt.Sprintf("Bench Customer %d", n),
			Email: fmt.Sprintf("customer-%d@bench.example", n),
			Phone: "+44 20 7946 0958",
		},
		Region: events.Regions[n%len(events.Regions)],
	}}
	for _, i := range rnd.Perm(len(plentiful))[:1+rnd.IntN(len(plentiful))] {
		o.req.Items = append(o.req.Items, e2e.Line{SKU: plentiful[i], Quantity: 1 + rnd.IntN(5)})
	}
	_, _ = rand.Read(o.trace[:])
	o.want = done(o.req.Region)
	return o
}

// done lists what must have happened to a confirmed order of region for the benchmark to
// count it done: its OrderPlaced handled by inventory, email and analytics, inventory's
// verdict by order (the order is confirmed) and by analytics, and the confirmation by
// email, analytics and, in the regions it serves, sms. Not OrderPlaced by sms: sms does
// nothing with it, and the topology no longer sends it there (a broker still bound the old
// way delivers it all the same, and the benchmark counts that delivery, but does not wait
// for it).
func done(region events.Region) []hop {
	want := []hop{
		{events.QueueInventory, events.TypeOrderPlaced},
		{events.QueueEmail, events.TypeOrderPlaced},
		{events.QueueAnalytics, events.TypeOrderPlaced},
		{events.QueueOrder, events.TypeStockReserved},
		{events.QueueAnalytics, events.TypeStockReserved},
		{events.QueueEmail, events.TypeOrderConfirmed},
		{events.QueueAnalytics, events.TypeOrderConfirmed},
	}
	for _, r := range events.DefaultSMSRegions {
		if r == region {
			want = append(want, hop{events.QueueSMS, events.TypeOrderConfirmed})
		}
	}
	return want
}

// client is the load's HTTP client: connections enough for every request in flight.
var client = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: time.Minute},
}

// placer posts orders to the order API, each with a traceparent header naming the trace
// the collector follows.
type placer struct {
	url       string
	collector *collector
	// customers are the access tokens of the customers who place the orders, order n
	// placed by customer n mod len(customers): as many customers as keep each one well
	// under the per-customer quotas, which stay at their defaults.
	customers []string
	next      atomic.Int64 // order number
}

// place posts o and records when it was accepted. Anything but 202 is an error:
// the benchmark raises the rate limit, so a 429 means a misconfiguration, not load.
func (p *placer) place(ctx context.Context, o *order) error {
	body, err := json.Marshal(o.req)
	if err != nil {
		return err
	}
	p.collector.expect(o.trace, o.want)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url+"/orders", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+p.customers[o.n%len(p.customers)])
	var parent [8]byte
	_, _ = rand.Read(parent[:])
	req.Header.Set("traceparent", "00-"+hex.EncodeToString(o.trace[:])+"-"+hex.EncodeToString(parent[:])+"-01")
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("place order: %w", err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	o.accept = time.Now()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("place order: HTTP %d: %s", resp.StatusCode, data)
	}
	return nil
}

// burst places n orders as fast as the order API takes them, with workers requests in
// flight, and returns them.
func (p *placer) burst(ctx context.Context, n, workers int) ([]*order, error) {
	orders := make([]*order, n)
	for i := range orders {
		orders[i] = newOrder(int(p.next.Add(1)))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n); i = next.Add(1) - 1 {
				if err := p.place(ctx, orders[i]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return orders, <-errs
}

// paced places orders at rate per second for d, each on schedule whatever the answers
// before it (an open loop: a slow answer does not slow the arrivals), and returns them.
func (p *placer) paced(ctx context.Context, rate float64, d time.Duration) ([]*order, error) {
	n := max(int(rate*d.Seconds()), 1)
	orders := make([]*order, n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	start := time.Now()
	for i := range orders {
		orders[i] = newOrder(int(p.next.Add(1)))
		time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		wg.Go(func() {
			if err := p.place(ctx, orders[i]); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return orders, first
}
