package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/warrenhq/warren/e2e"
	"github.com/warrenhq/warren/shared/events"
)

// The checks of the effects an order has: each fails the test with examples and adds to
// the report's figures.

var orderIDPattern = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

// checkMails checks that every final order had exactly its mails, each to its customer.
func (r *reconciliation) checkMails() {
	all, err := listMails(r.ctx, r.sys.Mailpit.URL())
	if err != nil {
		r.t.Errorf("list mails: %v", err)
		return
	}
	want, _, _ := r.expectations()
	got := map[string]map[string]int{}
	var strays, duplicates, missing, misaddressed []string
	for _, m := range all {
		id := orderIDPattern.FindString(m.Subject)
		o, known := r.states[id]
		if !known {
			strays = append(strays, m.Subject)
			continue
		}
		if len(m.To) != 1 || m.To[0].Address != o.Customer.Email {
			misaddressed = append(misaddressed, m.Subject)
		}
		if got[id] == nil {
			got[id] = map[string]int{}
		}
		got[id][e2e.MailKind(m.Subject)]++
	}
	for id, kinds := range want {
		for kind, n := range kinds {
			if have := got[id][kind]; have < n {
				missing = append(missing, id+" "+kind)
				r.report.Missing += n - have
			}
		}
		for kind, have := range got[id] {
			if have > kinds[kind] {
				duplicates = append(duplicates, fmt.Sprintf("%s %s ×%d", id, kind, have))
				r.report.Duplicated += have - kinds[kind]
			}
		}
	}
	r.report.Duplicated += len(strays)
	if r.report.Resent, err = r.sys.Mailpit.Resent(r.ctx); err != nil {
		r.t.Errorf("count resent mails: %v", err)
	}
	report(r.t, "mails missing", missing)
	report(r.t, "mails sent more than once", duplicates)
	report(r.t, "mails about no accepted order (an order placed twice?)", strays)
	report(r.t, "mails to the wrong address", misaddressed)
}

// listMails returns every mail Mailpit holds.
func listMails(ctx context.Context, base string) ([]e2e.Mail, error) {
	const page = 500
	var all []e2e.Mail
	for start := 0; ; start += page {
		var out struct {
			Total    int        `json:"total"`
			Messages []e2e.Mail `json:"messages"`
		}
		if err := call(ctx, "", http.MethodGet, fmt.Sprintf("%s/api/v1/messages?start=%d&limit=%d", base, start, page), nil, http.StatusOK, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Messages...)
		if len(out.Messages) < page || len(all) >= out.Total {
			return all, nil
		}
	}
}

// checkTexts checks that every order confirmed in a region sms serves had exactly one
// text, and every other order none.
func (r *reconciliation) checkTexts(want map[string]bool) {
	var mu sync.Mutex
	var wrong []string
	r.each(r.accepted, func(p *Placed) {
		var out struct {
			Messages []e2e.Text `json:"messages"`
		}
		err := call(r.ctx, r.sys.SMS.Token(), http.MethodGet, r.sys.SMS.URL()+"/messages?order_id="+url.QueryEscape(p.ID), nil, http.StatusOK, &out)
		mu.Lock()
		defer mu.Unlock()
		n := 0
		if want[p.ID] {
			n = 1
		}
		switch {
		case err != nil:
			wrong = append(wrong, fmt.Sprintf("%s: %v", p.ID, err))
		case len(out.Messages) > n:
			r.report.Duplicated += len(out.Messages) - n
			wrong = append(wrong, fmt.Sprintf("%s: %d texts, want %d", p.ID, len(out.Messages), n))
		case len(out.Messages) < n:
			r.report.Missing += n - len(out.Messages)
			wrong = append(wrong, fmt.Sprintf("%s: no text, want one", p.ID))
		}
	})
	report(r.t, "texts", wrong)
}

// checkStock checks that each SKU's stock is its initial level less what the confirmed
// orders hold (a cancelled order's stock was released).
func (r *reconciliation) checkStock() {
	want := map[string]int{}
	for sku, n := range initialStock {
		want[sku] = n
	}
	for _, o := range r.states {
		if o.Status == e2e.StatusConfirmed {
			for _, it := range o.Items {
				want[it.SKU] -= it.Quantity
			}
		}
	}
	for sku, n := range want {
		var out struct {
			Available int `json:"available"`
		}
		if err := call(r.ctx, r.sys.Inventory.Token(), http.MethodGet, r.sys.Inventory.URL()+"/stock/"+url.PathEscape(sku), nil, http.StatusOK, &out); err != nil {
			r.t.Errorf("stock of %s: %v", sku, err)
			continue
		}
		if out.Available != n {
			r.report.StockOff += abs(out.Available - n)
			r.t.Errorf("stock of %s is %d, want %d (initial %d less the confirmed orders' items)", sku, out.Available, n, initialStock[sku])
		}
	}
}

// checkAnalytics checks the running totals against the final orders.
func (r *reconciliation) checkAnalytics() {
	var st e2e.Stats
	if err := call(r.ctx, r.sys.Analytics.Token(), http.MethodGet, r.sys.Analytics.URL()+"/stats", nil, http.StatusOK, &st); err != nil {
		r.t.Errorf("analytics stats: %v", err)
		return
	}
	_, counted, _ := r.expectations()
	// Inventory may or may not have answered a lost order: its verdict is not known.
	slack := int64(r.report.Lost)
	for typ, n := range counted {
		got, extra := st.Events[typ], int64(0)
		if typ == events.TypeStockReserved || typ == events.TypeStockOutOfStock {
			extra = slack
		}
		switch {
		case got > n+extra:
			r.t.Errorf("analytics counted %d %s events, want %d", got, typ, n)
			r.report.Duplicated += int(got - n - extra)
		case got < n:
			r.t.Errorf("analytics counted %d %s events, want %d", got, typ, n)
			r.report.Missing += int(n - got)
		}
	}
	for typ, got := range st.Events {
		if _, ok := counted[typ]; !ok && !(slack > 0 && (typ == events.TypeStockReserved || typ == events.TypeStockOutOfStock)) {
			r.t.Errorf("analytics counted %d %s events, want none", got, typ)
		}
	}
	orders := map[events.Region]map[string]int64{}
	var revenue, total int64
	for _, o := range r.states {
		if orders[o.Region] == nil {
			orders[o.Region] = map[string]int64{}
		}
		orders[o.Region][o.Status]++
		if o.Status == e2e.StatusConfirmed {
			revenue += o.TotalCents
		}
	}
	for region, statuses := range st.Orders {
		for status, got := range statuses {
			total += got
			if want := orders[region][status]; got != want {
				r.t.Errorf("analytics: %d %s orders in %s, want %d", got, status, region, want)
			}
		}
	}
	if extra := total - int64(len(r.states)); extra > 0 {
		r.report.Duplicated += int(extra)
	}
	if st.RevenueCents != revenue {
		r.t.Errorf("analytics revenue %d cents, want %d", st.RevenueCents, revenue)
	}
}

// checkDeadLetters takes every message out of the dead-letter queues and checks that they
// are exactly the poison injected, each once, in its queue's DLQ with the right reason.
func (r *reconciliation) checkDeadLetters(poison []Poison) {
	dead, err := r.broker.DrainDeadLetters(r.ctx)
	if err != nil {
		r.t.Errorf("dead letters: %v", err)
	}
	r.report.DeadLetters, r.report.Poison = len(dead), len(poison)
	injected := map[string]Poison{}
	for _, p := range poison {
		injected[p.Msg.MessageId] = p
	}
	seen := map[string]int{}
	var unexpected, wrong []string
	for _, d := range dead {
		p, ok := injected[d.MessageID]
		if !ok {
			unexpected = append(unexpected, fmt.Sprintf("%s in %s.dlq: %s %q after %s attempts", d.MessageID, d.Queue, d.Type, d.Reason, d.Attempts))
			continue
		}
		if seen[d.MessageID]++; seen[d.MessageID] > 1 {
			r.report.Duplicated++
		}
		if d.Queue != p.Queue || !strings.Contains(d.Reason, p.Reason) || (p.Attempts != "" && d.Attempts != p.Attempts) {
			wrong = append(wrong, fmt.Sprintf("%s in %s.dlq after %s attempts (%q), want %s.dlq after %s attempts (%q)",
				d.MessageID, d.Queue, d.Attempts, d.Reason, p.Queue, p.Attempts, p.Reason))
		}
	}
	var never []string
	for id, p := range injected {
		if seen[id] == 0 {
			never = append(never, id+" for "+p.Queue)
			r.report.Missing++
		}
	}
	report(r.t, "dead letters the test did not inject", unexpected)
	report(r.t, "poison dead-lettered wrongly", wrong)
	report(r.t, "poison never dead-lettered", never)
}
