package chaos

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/warrenhq/warren/e2e"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// Timeouts of the reconciliation, once the load is over.
const (
	settleTimeout  = 3 * time.Minute // for every accepted order to reach a final state
	effectsTimeout = 2 * time.Minute // for the mails and totals to add up
	drainTimeout   = 90 * time.Second
	maxExamples    = 5
)

// reconciliation checks what the system did with a load against what it should have done.
// Every check fails t with examples and adds to the report's figures.
type reconciliation struct {
	t      *testing.T
	ctx    context.Context
	sys    *e2e.System
	broker Broker
	report *Report

	accepted []*Placed
	// states holds every accepted order as last read, by id: final, or pending if lost.
	states map[string]e2e.Order
}

// Reconcile waits for the system to settle, then checks every accepted order and its
// effects: final state, mails, texts, stock, analytics totals, dead letters (only the
// poison injected) and work queues (nothing ready or unacknowledged). It fills report.
func Reconcile(t *testing.T, sys *e2e.System, broker Broker, orders []*Placed, poison []Poison, report *Report) {
	t.Helper()
	r := &reconciliation{t: t, ctx: t.Context(), sys: sys, broker: broker, report: report, states: map[string]e2e.Order{}}
	for _, p := range orders {
		switch {
		case p.ID != "":
			r.accepted = append(r.accepted, p)
		case p.Err != nil:
			t.Errorf("order %d never accepted after %d attempts: %v", p.N, p.Attempts, p.Err)
		}
	}
	r.checkOneOrderPerKey()
	r.settle()
	r.checkCancellations()
	mails, events, texts := r.expectations()
	r.waitForEffects(mails, events)
	r.waitForDrainedQueues()
	r.checkMails()
	r.checkTexts(texts)
	r.checkStock()
	r.checkAnalytics()
	r.checkDeadLetters(poison)
}

// checkOneOrderPerKey checks that each Idempotency-Key (one per Placed) got an order of
// its own. The other half, that a key retried after an ambiguous failure placed no second
// order, shows as mails and analytics events about orders no Placed knows (checkMails,
// checkAnalytics).
func (r *reconciliation) checkOneOrderPerKey() {
	keyOf := map[string]string{}
	var shared []string
	for _, p := range r.accepted {
		if other, seen := keyOf[p.ID]; seen {
			shared = append(shared, fmt.Sprintf("%s for keys %s and %s", p.ID, other, p.Key))
		}
		keyOf[p.ID] = p.Key
	}
	r.report.Duplicated += len(shared)
	report(r.t, "one order for two idempotency keys", shared)
}

// settle waits until every accepted order has left pending; those that never do are lost.
func (r *reconciliation) settle() {
	for _, p := range r.accepted {
		r.states[p.ID] = e2e.Order{ID: p.ID, Status: e2e.StatusPending, Region: p.Request.Region, Customer: p.Request.Customer}
	}
	deadline := time.Now().Add(settleTimeout)
	for {
		var mu sync.Mutex
		var pending []string
		r.each(r.accepted, func(p *Placed) {
			mu.Lock()
			final := r.states[p.ID].Status != e2e.StatusPending
			mu.Unlock()
			if final {
				return
			}
			o, err := getOrder(r.ctx, r.sys.Order.URL(), r.sys.Order.Token(), p.ID)
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				r.states[p.ID] = o
			}
			if err != nil || o.Status == e2e.StatusPending {
				pending = append(pending, fmt.Sprintf("%s (%v)", p.ID, errOr(err, o.Status)))
			}
		})
		if len(pending) == 0 || time.Now().After(deadline) || r.ctx.Err() != nil {
			r.report.Lost = len(pending)
			report(r.t, fmt.Sprintf("lost: accepted orders not final within %s", settleTimeout), pending)
			break
		}
		sleep(r.ctx, time.Second)
	}
	for _, o := range r.states {
		switch o.Status {
		case e2e.StatusConfirmed:
			r.report.Confirmed++
		case e2e.StatusRejected:
			r.report.Rejected++
		case e2e.StatusCancelled:
			r.report.Cancelled++
		}
	}
	r.report.Final = r.report.Confirmed + r.report.Rejected + r.report.Cancelled
}

func (r *reconciliation) checkCancellations() {
	for _, p := range r.accepted {
		o := r.states[p.ID]
		ok := o.Status != e2e.StatusPending
		switch {
		case p.Cancel && !p.Cancelled:
			r.t.Errorf("order %s was to be cancelled once confirmed: %v", p.ID, p.Err)
		case p.Cancelled && ok && o.Status != e2e.StatusCancelled:
			r.t.Errorf("order %s was cancelled (200) but is %s", p.ID, o.Status)
		case !p.Cancelled && ok && o.Status == e2e.StatusCancelled:
			r.t.Errorf("order %s is cancelled, but nobody cancelled it", p.ID)
		}
	}
}

// wasConfirmed tells whether an order got a confirmation (cancelled ones were confirmed
// first: the load cancels confirmed orders only).
func wasConfirmed(o e2e.Order) bool {
	return o.Status == e2e.StatusConfirmed || o.Status == e2e.StatusCancelled
}

// expectations returns the mails every accepted order must have had, by order id and
// kind; the events analytics must have counted, by type; and the order ids that must have
// had one text. A lost order is expected to have had what its OrderPlaced causes only.
func (r *reconciliation) expectations() (mails map[string]map[string]int, counted map[string]int64, texts map[string]bool) {
	mails, counted, texts = map[string]map[string]int{}, map[string]int64{}, map[string]bool{}
	for id, o := range r.states {
		want := map[string]int{e2e.MailReceived: 1}
		counted[events.TypeOrderPlaced]++
		if wasConfirmed(o) {
			want[e2e.MailConfirmed] = 1
			counted[events.TypeStockReserved]++
			counted[events.TypeOrderConfirmed]++
			texts[id] = slices.Contains(events.DefaultSMSRegions, o.Region)
		}
		if o.Status == e2e.StatusRejected {
			want[e2e.MailRejected] = 1
			counted[events.TypeStockOutOfStock]++
			counted[events.TypeOrderRejected]++
		}
		if o.Status == e2e.StatusCancelled {
			want[e2e.MailCancelled] = 1
			counted[events.TypeOrderCancelled]++
			counted[events.TypeStockReleased]++
		}
		mails[id] = want
	}
	return mails, counted, texts
}

// waitForEffects waits until Mailpit holds as many mails and analytics has counted as
// many events as expected (or more: the checks tell). It fails nothing itself.
func (r *reconciliation) waitForEffects(mails map[string]map[string]int, counted map[string]int64) {
	var wantMails, wantEvents int64
	for _, kinds := range mails {
		for _, n := range kinds {
			wantMails += int64(n)
		}
	}
	for _, n := range counted {
		wantEvents += n
	}
	deadline := time.Now().Add(effectsTimeout)
	for time.Now().Before(deadline) && r.ctx.Err() == nil {
		var box struct {
			Total int64 `json:"total"`
		}
		var st e2e.Stats
		err1 := call(r.ctx, "", http.MethodGet, r.sys.Mailpit.URL()+"/api/v1/messages?limit=1", nil, http.StatusOK, &box)
		err2 := call(r.ctx, r.sys.Analytics.Token(), http.MethodGet, r.sys.Analytics.URL()+"/stats", nil, http.StatusOK, &st)
		var gotEvents int64
		for _, n := range st.Events {
			gotEvents += n
		}
		if err1 == nil && err2 == nil && box.Total >= wantMails && gotEvents >= wantEvents {
			return
		}
		sleep(r.ctx, time.Second)
	}
}

// waitForDrainedQueues waits until no work queue holds a message, ready or unacknowledged,
// in two readings of the management API's statistics (which lag by up to 5 s).
func (r *reconciliation) waitForDrainedQueues() {
	deadline := time.Now().Add(drainTimeout)
	zeros := 0
	var busy []string
	for {
		queues, err := r.broker.Queues(r.ctx)
		busy = busy[:0]
		if err != nil {
			busy = append(busy, err.Error())
		}
		for _, name := range workQueues {
			q, ok := queues[name]
			switch {
			case err != nil:
			case !ok:
				busy = append(busy, name+" is missing")
			case q.Ready > 0 || q.Unacked > 0:
				busy = append(busy, fmt.Sprintf("%s: %d ready, %d unacked, %d consumers", name, q.Ready, q.Unacked, q.Consumers))
			}
		}
		for _, name := range []string{messaging.UnroutableQueue, messaging.ArchiveQueue} {
			if q := queues[name]; q.Ready+q.Unacked > 0 {
				busy = append(busy, fmt.Sprintf("%s: %d messages", name, q.Ready+q.Unacked))
			}
		}
		if len(busy) == 0 {
			if zeros++; zeros == 2 {
				return
			}
		} else {
			zeros = 0
		}
		if time.Now().After(deadline) || r.ctx.Err() != nil {
			r.t.Errorf("queues not drained within %s: %v", drainTimeout, busy)
			return
		}
		sleep(r.ctx, 6*time.Second)
	}
}

// each runs fn for every order, eight at a time.
func (r *reconciliation) each(orders []*Placed, fn func(*Placed)) {
	var g errgroup.Group
	g.SetLimit(8)
	for _, p := range orders {
		g.Go(func() error { fn(p); return nil })
	}
	_ = g.Wait()
}

// report fails t with what went wrong and a few examples.
func report(t *testing.T, what string, found []string) {
	t.Helper()
	if len(found) > 0 {
		slices.Sort(found)
		t.Errorf("%s: %d, e.g. %v", what, len(found), examples(found))
	}
}

func examples(s []string) []string { return s[:min(len(s), maxExamples)] }

func abs(n int) int { return max(n, -n) }

func errOr(err error, v any) any {
	if err != nil {
		return err
	}
	return v
}
