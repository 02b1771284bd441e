package livepage

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// Step states, as the browser colours them.
const (
	stepDone   = "done"
	stepFailed = "failed"
	// stepSkipped is a step the order will never take: sms texts only the confirmations
	// of the regions it serves.
	stepSkipped = "skipped"
)

// The steps of an order's row, in the order they happen.
const (
	StepPlaced    = "placed"    // the order API accepted the order (202)
	StepPublished = "published" // the order service published OrderPlaced
	StepInventory = "inventory" // inventory processed it (reserve stock)
	StepEmail     = "email"
	StepSMS       = "sms"
	StepAnalytics = "analytics"
	StepSettled   = "settled" // confirmed or rejected, from GET /orders/{id}
)

var stepNames = []string{StepPlaced, StepPublished, StepInventory, StepEmail, StepSMS, StepAnalytics, StepSettled}

// consumerSteps are the steps each consumer's processing span lights up.
var consumerSteps = map[string]string{
	events.QueueInventory: StepInventory,
	events.QueueEmail:     StepEmail,
	events.QueueSMS:       StepSMS,
	events.QueueAnalytics: StepAnalytics,
}

// Row is one order as the page shows it.
type Row struct {
	TraceID  string            `json:"trace_id"` // the row's key: known before the order's id
	TraceURL string            `json:"trace_url"`
	ID       string            `json:"id,omitempty"`
	Region   events.Region     `json:"region"`
	SKU      string            `json:"sku"`
	PlacedAt time.Time         `json:"placed_at"`
	Status   string            `json:"status"` // placing, pending, confirmed, rejected, cancelled, refused
	Reason   string            `json:"reason,omitempty"`
	Steps    map[string]string `json:"steps"`
	Error    string            `json:"error,omitempty"`
}

// maxRows is how many orders the page keeps; older rows are dropped.
const maxRows = 60

// trackFor is how long an order is followed before its row is left as it is.
const trackFor = 2 * time.Minute

// catalogue are the SKUs the page orders, in turn: the demo catalogue's with the most stock.
var catalogue = []string{"carrot-seeds", "garden-trowel", "watering-can"}

// rows are the keys of the rows the page keeps, oldest first.
type rows struct {
	mu     sync.Mutex
	keys   []string
	placed atomic.Uint64
}

// place starts placing one order and returns its trace id; its row follows on the stream.
func (p *Page) place() string {
	n := p.rows.placed.Add(1)
	traceID := randomHex(16)
	row := Row{
		TraceID: traceID, TraceURL: p.jaegerTraceURL(traceID),
		Region: events.Regions[n%uint64(len(events.Regions))], SKU: catalogue[n%uint64(len(catalogue))],
		PlacedAt: time.Now().UTC(), Status: "placing", Steps: map[string]string{},
	}
	p.setRow(row)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.follow(p.ctx, row)
	}()
	return traceID
}

func (p *Page) setRow(row Row) {
	key := "order:" + row.TraceID
	r := &p.rows
	r.mu.Lock()
	if !slices.Contains(r.keys, key) {
		r.keys = append(r.keys, key)
	}
	var drop []string
	if len(r.keys) > maxRows {
		drop = slices.Clone(r.keys[:len(r.keys)-maxRows])
		r.keys = slices.Delete(r.keys, 0, len(r.keys)-maxRows)
	}
	r.mu.Unlock()
	for _, k := range drop {
		p.hub.forget(k)
	}
	p.hub.set("order", key, row)
}

// follow places the order, then reads its status and its trace until it has settled and
// every consumer has processed it, or trackFor has passed.
func (p *Page) follow(ctx context.Context, row Row) {
	id, err := p.postOrder(ctx, row)
	if err != nil {
		row.Status, row.Error = "refused", err.Error()
		p.setRow(row)
		return
	}
	row.ID, row.Status = id, "pending"
	row.Steps[StepPlaced] = stepDone
	p.setRow(row)

	deadline := time.Now().Add(trackFor)
	tick := time.NewTicker(p.cfg.PollInterval)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		before, _ := json.Marshal(row)
		if o, err := p.getOrder(ctx, id); err != nil {
			row.Error = err.Error()
		} else {
			row.Error = ""
			row.Status, row.Reason = o.Status, o.Reason
			switch o.Status {
			case "confirmed", "rejected":
				row.Steps[StepSettled] = stepDone
			case "cancelled":
				row.Steps[StepSettled] = stepFailed
			}
		}
		if spans, err := p.trace(ctx, row.TraceID); err == nil {
			for step, state := range stepsOf(spans) {
				row.Steps[step] = state
			}
		}
		if row.Steps[StepSMS] == "" && row.Steps[StepSettled] != "" && !p.texted(row) {
			row.Steps[StepSMS] = stepSkipped
		}
		if after, _ := json.Marshal(row); !bytes.Equal(before, after) {
			p.setRow(row)
		}
		if complete(row) {
			return
		}
	}
}

// texted reports whether sms texts the settled order of row: only a confirmation, and only
// in the regions sms serves.
func (p *Page) texted(row Row) bool {
	return row.Status == "confirmed" && slices.Contains(p.cfg.SMSRegions, row.Region)
}

// complete: settled, and every step lit (done, failed or skipped).
func complete(row Row) bool {
	for _, s := range stepNames {
		if row.Steps[s] == "" {
			return false
		}
	}
	return true
}

// orderRequest is the body of POST /orders.
type orderRequest struct {
	Customer events.Customer `json:"customer"`
	Region   events.Region   `json:"region"`
	Items    []orderLine     `json:"items"`
}

type orderLine struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// order is what GET /orders/{id} shows of an order.
type order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Reason string `json:"reason"`
}

// postOrder places the row's order with a traceparent of the row's trace id: the order
// service continues the caller's trace, so every span of the order is in that trace.
func (p *Page) postOrder(ctx context.Context, row Row) (string, error) {
	body, _ := json.Marshal(orderRequest{
		// The login's user is the order's owner (the token's subject); these are only the
		// contact details the mail and the text go to.
		Customer: events.Customer{Name: "Alice (live page)", Email: "alice@example.com", Phone: "+44 20 7946 0958"},
		Region:   row.Region,
		Items:    []orderLine{{SKU: row.SKU, Quantity: 1}},
	})
	header := http.Header{
		"Content-Type": {"application/json"},
		// A new trace, sampled, whose root is this page's (unrecorded) call.
		"Traceparent": {fmt.Sprintf("00-%s-%s-01", row.TraceID, randomHex(8))},
		// The same key for a retry after a refused token: one order, not two.
		"Idempotency-Key": {row.TraceID},
	}
	var out order
	if err := p.orderAPI(ctx, http.MethodPost, "/orders", header, body, http.StatusAccepted, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

func (p *Page) getOrder(ctx context.Context, id string) (order, error) {
	var o order
	err := p.orderAPI(ctx, http.MethodGet, "/orders/"+url.PathEscape(id), nil, nil, http.StatusOK, &o)
	return o, err
}

// orderAPI calls the order API with the customer's token, logging in again once if the
// token is refused.
func (p *Page) orderAPI(ctx context.Context, method, path string, header http.Header, body []byte, want int, out any) error {
	for attempt := 0; ; attempt++ {
		token, err := p.tokens.get(ctx)
		if err != nil {
			return fmt.Errorf("log in: %w", err)
		}
		req, err := http.NewRequestWithContext(ctx, method, p.cfg.OrderURL+path, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := p.http.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			p.tokens.invalidate(token)
			continue
		}
		if resp.StatusCode != want {
			return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decode: %w", method, path, err)
		}
		return nil
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
