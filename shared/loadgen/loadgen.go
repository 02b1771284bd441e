// Package loadgen drives Warren's order API as a crowd of customers would: orders at a
// steady rate, with a mix of regions, of orders inventory must reject (out of stock) and
// of orders the customer cancels once confirmed, and stock queries on the side. It stops
// by itself after a number of orders or a duration, waits for every order to settle, and
// tells what became of each (Result), so that its figures can be checked against the
// system's own.
//
// It is a well-behaved client: every customer logs in through the OpenID Connect
// provider (Config.Token), sends one request at a time, honours Retry-After on 429 and
// 503 (the order service's per-customer rate and open-order quotas stay on), and retries
// an order with the same Idempotency-Key, so that a retry never places a second one.
// Quotas are per customer, so a high rate needs many customers (Config.Customers).
//
// Command warren-load (deploy/cmd/warren-load) runs it against a compose stack; the e2e
// suite runs it against its own system.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// Order statuses, as GET /orders/{id} shows them.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusRejected  = "rejected"
	StatusCancelled = "cancelled"
)

// Config is one run. Zero values take the defaults of Defaults, except the URLs, the
// customers and Token, which are required.
type Config struct {
	// OrderURL and InventoryURL are the services' API base URLs, e.g.
	// http://localhost:8081 and http://localhost:8082.
	OrderURL, InventoryURL string
	// Customers are the users the orders are placed as, in turn (customer role).
	Customers []string
	// Token returns an access token for user; it is called once per user, and again when
	// an API answers 401 (an expired token).
	Token func(ctx context.Context, user string) (string, error)
	// RestockUser, when set, is a staff user who tops up the in-stock SKUs before the
	// run, so that the run cannot exhaust them: each is set to what the run can order of
	// it when it holds less. Empty: stock is left as it is, and in-stock orders may be
	// rejected once it runs out (counted as Unexpected).
	RestockUser string

	// Rate is the orders started per second.
	Rate float64
	// Count and Duration end the run, whichever comes first (0: no bound of that kind;
	// at least one is required).
	Count    int
	Duration time.Duration
	// OutOfStock is the share of orders for OutOfStockSKU, which inventory must reject;
	// Cancel the share of in-stock orders that are cancelled once confirmed. Both 0..1,
	// together at most 1; the rest are in-stock orders that must be confirmed.
	OutOfStock, Cancel float64
	// StockQueries is how many GET /stock/{sku} (inventory) go with each order, e.g. 0.5
	// for one every second order.
	StockQueries float64
	// Regions are where the orders ship, with their shares (the sms service texts by
	// region; each customer's phone number is one of the region's).
	Regions []RegionWeight
	// InStockSKUs are ordered one at a time, in turn; OutOfStockSKU must have no stock
	// (the demo catalogue's rare-orchid).
	InStockSKUs   []string
	OutOfStockSKU string

	// SettleTimeout is how long an order may stay pending before the run counts it
	// unsettled; it also bounds how long the run goes on after its last order.
	SettleTimeout time.Duration
	// MaxInFlight bounds the orders being placed, followed or cancelled at once: past it
	// the rate falls rather than the generator's memory growing.
	MaxInFlight int
	// Progress is how often Report gets the figures of the last interval (0: never).
	Progress time.Duration
	Report   func(Stats)
	// HTTPClient makes the API requests; nil: one with a 10 s timeout.
	HTTPClient *http.Client
}

// Defaults are the settings of a zero Config (deploy/cmd/warren-load documents them).
var Defaults = Config{
	Rate:          10,
	OutOfStock:    0.2,
	Cancel:        0.1,
	StockQueries:  0.5,
	Regions:       []RegionWeight{{events.RegionEurope, 50}, {events.RegionAmericas, 30}, {events.RegionAsia, 20}},
	InStockSKUs:   []string{"carrot-seeds", "garden-trowel", "watering-can", "burrow-lamp"},
	OutOfStockSKU: "rare-orchid",
	SettleTimeout: 30 * time.Second,
	MaxInFlight:   256,
	Progress:      5 * time.Second,
}

func (c Config) withDefaults() Config {
	d := Defaults
	if c.Rate == 0 {
		c.Rate = d.Rate
	}
	if c.Regions == nil {
		c.Regions = d.Regions
	}
	if c.InStockSKUs == nil {
		c.InStockSKUs = d.InStockSKUs
	}
	if c.OutOfStockSKU == "" {
		c.OutOfStockSKU = d.OutOfStockSKU
	}
	if c.SettleTimeout == 0 {
		c.SettleTimeout = d.SettleTimeout
	}
	if c.MaxInFlight == 0 {
		c.MaxInFlight = d.MaxInFlight
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	return c
}

// Validate reports the first setting that cannot make a run.
func (c Config) Validate() error {
	var total float64
	for _, r := range c.Regions {
		total += r.Weight
	}
	switch {
	case c.OrderURL == "" || c.InventoryURL == "":
		return errors.New("loadgen: the order and inventory URLs are required")
	case len(c.Customers) == 0:
		return errors.New("loadgen: no customers")
	case c.Token == nil:
		return errors.New("loadgen: no Token function")
	case !(c.Rate > 0) || math.IsInf(c.Rate, 0):
		return fmt.Errorf("loadgen: rate %v: want orders per second > 0", c.Rate)
	case c.Count <= 0 && c.Duration <= 0:
		return errors.New("loadgen: neither a count nor a duration: the run would never end")
	case c.Count < 0 || c.Duration < 0:
		return errors.New("loadgen: a negative count or duration")
	case c.OutOfStock < 0 || c.Cancel < 0 || c.OutOfStock+c.Cancel > 1:
		return fmt.Errorf("loadgen: out-of-stock share %v and cancellation share %v: want each >= 0, together <= 1", c.OutOfStock, c.Cancel)
	case c.StockQueries < 0:
		return fmt.Errorf("loadgen: stock queries per order %v: want >= 0", c.StockQueries)
	case !(total > 0):
		return errors.New("loadgen: the regions' weights add up to nothing")
	case len(c.InStockSKUs) == 0 && c.OutOfStock < 1:
		return errors.New("loadgen: no in-stock SKUs")
	case c.SettleTimeout < 0 || c.MaxInFlight < 0:
		return errors.New("loadgen: a negative settle timeout or in-flight bound")
	}
	for _, sku := range append([]string{c.OutOfStockSKU}, c.InStockSKUs...) {
		if !events.ValidSKU(sku) {
			return fmt.Errorf("loadgen: SKU %q breaks the contract's rule", sku)
		}
	}
	return nil
}

// Order is one order of a run and what became of it.
type Order struct {
	// N numbers the orders from 0 in the order they were started.
	N        int
	Kind     Kind
	Customer string
	Region   events.Region
	SKU      string
	// ID is the order's id once placed, else "".
	ID string
	// Status is the last status seen: "" for an order never placed.
	Status string
}

// Result is a finished run.
type Result struct {
	Stats
	// Orders are every order started, by N.
	Orders []Order
	// Restocked are the SKUs RestockUser set, with the level each was set to.
	Restocked map[string]int
}

// Failed reports whether the run saw anything but the mix asked for: an unexpected
// answer, an order that did not settle or settled otherwise than its kind wants.
func (r Result) Failed() bool {
	return r.Errors > 0 || r.Unsettled > 0 || r.Unexpected > 0
}

// Run runs one load and returns what it did. Its error is for a run that could not start
// (a setting, a login); what went wrong during the run is in the Result's counts.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	api := &client{http: cfg.HTTPClient, orderURL: strings.TrimRight(cfg.OrderURL, "/"),
		inventoryURL: strings.TrimRight(cfg.InventoryURL, "/"), token: cfg.Token}
	customers, err := api.logIn(ctx, cfg.Customers)
	if err != nil {
		return Result{}, err
	}
	var res Result
	if cfg.RestockUser != "" {
		if res.Restocked, err = restock(ctx, api, cfg); err != nil {
			return Result{}, err
		}
	}

	start := time.Now()
	rec := newRecorder(start)
	// Orders are started until issuing ends; each may then take SettleTimeout (and a
	// Retry-After or two) to finish, after which everything still going is abandoned.
	issuing := ctx
	var stopIssuing context.CancelFunc = func() {}
	if cfg.Duration > 0 {
		issuing, stopIssuing = context.WithTimeout(ctx, cfg.Duration)
	}
	defer stopIssuing()
	orderCtx, stopOrders := context.WithCancel(context.WithoutCancel(ctx))
	defer stopOrders()
	context.AfterFunc(ctx, stopOrders)

	var progressDone chan struct{}
	if cfg.Progress > 0 && cfg.Report != nil {
		progressDone = make(chan struct{})
		go func() {
			tick := time.NewTicker(cfg.Progress)
			defer tick.Stop()
			for {
				select {
				case <-progressDone:
					return
				case now := <-tick.C:
					cfg.Report(rec.progress(now))
				}
			}
		}()
	}

	kinds := newSequence([]float64{1 - cfg.OutOfStock - cfg.Cancel, cfg.OutOfStock, cfg.Cancel})
	regions := newSequence(regionWeights(cfg.Regions))
	var (
		mu       sync.Mutex
		orders   []Order
		wg       sync.WaitGroup
		slots    = make(chan struct{}, cfg.MaxInFlight)
		queries  float64
		inStockN int
	)
	interval := time.Duration(float64(time.Second) / cfg.Rate)
	next := start
issue:
	for n := 0; cfg.Count == 0 || n < cfg.Count; n++ {
		// Paced against the start, not the previous order: a late tick is caught up, so
		// the rate holds on average however the scheduler wakes us.
		if wait := time.Until(next); wait > 0 {
			select {
			case <-issuing.Done():
				break issue
			case <-time.After(wait):
			}
		}
		next = next.Add(interval)
		select {
		case <-issuing.Done():
			break issue
		case slots <- struct{}{}:
		}
		if issuing.Err() != nil {
			<-slots
			break
		}
		o := Order{N: n, Kind: Kind(kinds.next()), Region: cfg.Regions[regions.next()].Region}
		c := customers[n%len(customers)]
		o.Customer = c.name
		if o.Kind == KindOutOfStock {
			o.SKU = cfg.OutOfStockSKU
		} else {
			o.SKU = cfg.InStockSKUs[inStockN%len(cfg.InStockSKUs)]
			inStockN++
		}
		mu.Lock()
		orders = append(orders, o)
		mu.Unlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			o := follow(orderCtx, api, c, o, cfg, rec)
			mu.Lock()
			orders[o.N] = o
			mu.Unlock()
		}()
		for queries += cfg.StockQueries; queries >= 1; queries-- {
			sku := cfg.OutOfStockSKU
			if len(cfg.InStockSKUs) > 0 {
				sku = cfg.InStockSKUs[n%len(cfg.InStockSKUs)]
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := api.stock(orderCtx, c, sku); err != nil {
					rec.add(func(c *Counts) { c.Errors++ })
					return
				}
				rec.add(func(c *Counts) { c.StockQueries++ })
			}()
		}
	}
	issued := time.Since(start)
	stopIssuing()
	// The last orders get their SettleTimeout, and the Retry-Afters of the slowest
	// customer's queue on top: bounded, so a broken system cannot hold the run forever.
	grace := time.AfterFunc(cfg.SettleTimeout+2*time.Minute, stopOrders)
	wg.Wait()
	grace.Stop()
	if progressDone != nil {
		close(progressDone)
	}

	res.Stats = rec.total(time.Now())
	if s := issued.Seconds(); s > 0 {
		res.Rate = float64(res.Placed) / s
	}
	res.Orders = orders
	return res, nil
}

func regionWeights(rs []RegionWeight) []float64 {
	w := make([]float64, len(rs))
	for i, r := range rs {
		w[i] = r.Weight
	}
	return w
}

// follow places o as c, waits for inventory's verdict, cancels it when its kind says so,
// and returns it with its id and last status.
func follow(ctx context.Context, api *client, c *customer, o Order, cfg Config, rec *recorder) Order {
	req := placeRequest{
		Customer: events.Customer{
			Name:  "Load customer " + c.name,
			Email: c.name + "@load.example.com",
			Phone: Phone(o.Region, o.N),
		},
		Region: o.Region,
		Items:  []line{{SKU: o.SKU, Quantity: 1}},
	}
	id, err := api.place(ctx, c, req, newKey(), rec)
	switch {
	case errors.Is(err, errAbandoned):
		rec.add(func(c *Counts) { c.Abandoned++ })
		return o
	case err != nil:
		rec.add(func(c *Counts) { c.Errors++ })
		return o
	}
	o.ID, o.Status = id, StatusPending

	settleCtx, cancel := context.WithTimeout(ctx, cfg.SettleTimeout)
	defer cancel()
	status, err := api.settled(settleCtx, c, id)
	switch {
	case err != nil && settleCtx.Err() != nil:
		rec.add(func(c *Counts) { c.Unsettled++ })
		return o
	case err != nil:
		rec.add(func(c *Counts) { c.Errors++ })
		return o
	}
	o.Status = status
	if o.Kind == KindCancel && status == StatusConfirmed {
		if status, err = api.cancel(ctx, c, id); err != nil {
			rec.add(func(c *Counts) { c.Errors++ })
		} else {
			o.Status = status
		}
	}
	rec.add(func(c *Counts) {
		switch o.Status {
		case StatusConfirmed:
			c.Confirmed++
		case StatusRejected:
			c.Rejected++
		case StatusCancelled:
			c.Cancelled++
		}
		if o.Status != o.Kind.Want() {
			c.Unexpected++
		}
	})
	return o
}

// restock sets each in-stock SKU that holds less than the run can order of it to that
// much, as cfg.RestockUser (staff), and returns what it set.
func restock(ctx context.Context, api *client, cfg Config) (map[string]int, error) {
	staff, err := api.logIn(ctx, []string{cfg.RestockUser})
	if err != nil {
		return nil, err
	}
	orders := float64(cfg.Count)
	if bound := cfg.Rate * cfg.Duration.Seconds(); cfg.Count == 0 || (cfg.Duration > 0 && bound < orders) {
		orders = bound
	}
	need := int(math.Ceil(orders*(1-cfg.OutOfStock)/float64(len(cfg.InStockSKUs)))) + 1
	set := map[string]int{}
	for _, sku := range cfg.InStockSKUs {
		have, err := api.stock(ctx, staff[0], sku)
		if err != nil {
			return nil, fmt.Errorf("restock: %w", err)
		}
		if have >= need {
			continue
		}
		if err := api.setStock(ctx, staff[0], sku, need); err != nil {
			return nil, fmt.Errorf("restock: %w", err)
		}
		set[sku] = need
	}
	return set, nil
}
