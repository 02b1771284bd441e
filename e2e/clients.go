package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// httpClient bounds every call: a hung service fails the test instead of the whole run,
// and a load generator gets the chance to count a request that hangs during a fault.
var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
}

// StatusError is an answer whose status was not the one wanted.
type StatusError struct {
	Method, URL string
	Status      int
	Body        string
	// RetryAfter is the answer's Retry-After in seconds, as a rate limit gives it.
	RetryAfter time.Duration
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.Method, e.URL, e.Status, e.Body)
}

// Call sends method url with header and body (JSON unless nil) and, when the answer has
// status want, decodes its JSON into out (unless nil). Another status is a *StatusError
// that quotes the body; a transport failure is returned as it is.
func Call(ctx context.Context, method, url string, header http.Header, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		e := &StatusError{Method: method, URL: url, Status: resp.StatusCode, Body: string(bytes.TrimSpace(data))}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, url, err)
	}
	return nil
}

// client calls one JSON HTTP API at base, as a user of the system would. ops is the base
// URL of a Warren service's operational endpoints (/readyz, /metrics), on a port of their
// own; "" for the other programs. token is the access token sent with every API call
// ("" for none, and never to the operational endpoints, which need none).
type client struct{ base, ops, token string }

// Token is the access token the client sends.
func (c client) Token() string { return c.token }

// Bearer is the Authorization header of a request sent with token ("" for none): for
// tests that call an API through Call rather than a client.
func Bearer(token string) http.Header {
	if token == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + token}}
}

// URL is the API's base URL.
func (c client) URL() string { return c.base }

// OpsURL is the base URL of the service's operational endpoints (/healthz, /readyz,
// /metrics).
func (c client) OpsURL() string { return c.ops }

// Ready returns nil when the service's GET /readyz answers 200.
func (c client) Ready(ctx context.Context) error {
	return Call(ctx, http.MethodGet, c.ops+"/readyz", nil, nil, http.StatusOK, nil)
}

// call is Call on the API's path, with the client's token.
func (c client) call(ctx context.Context, method, path string, header http.Header, body any, want int, out any) error {
	if c.token != "" {
		header = header.Clone()
		if header == nil {
			header = http.Header{}
		}
		header.Set("Authorization", "Bearer "+c.token)
	}
	return Call(ctx, method, c.base+path, header, body, want, out)
}

// get is call for a GET that must answer 200.
func (c client) get(ctx context.Context, path string, out any) error {
	return c.call(ctx, http.MethodGet, path, nil, nil, http.StatusOK, out)
}

// mustGet is get for a test: an error fails it.
func (c client) mustGet(t testing.TB, path string, out any) {
	t.Helper()
	if err := c.get(t.Context(), path, out); err != nil {
		t.Fatal(err)
	}
}

// Counter sums the Prometheus counter name over the series whose labels include every
// label in match (e.g. `queue="order.events.email"`), from the service's GET /metrics.
func (c client) Counter(t testing.TB, name string, match ...string) float64 {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, c.ops+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, m := range match {
			if !strings.Contains(line, m) {
				continue lines
			}
		}
		value, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		sum += value
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read /metrics: %v", err)
	}
	return sum
}

// OrderAPI is the order service's HTTP API.
type OrderAPI struct{ client }

// NewOrderAPI returns the API of the order service at base, e.g. http://localhost:8081,
// called with token.
func NewOrderAPI(base, token string) *OrderAPI { return &OrderAPI{client{base: base, token: token}} }

// As returns the same API called with another user's token.
func (a *OrderAPI) As(token string) *OrderAPI {
	c := a.client
	c.token = token
	return &OrderAPI{c}
}

// OrderRequest is the body of POST /orders.
type OrderRequest struct {
	Customer events.Customer `json:"customer"`
	Region   events.Region   `json:"region"`
	Items    []Line          `json:"items"`
}

// Line is one item of an OrderRequest.
type Line struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// Order is an order as GET /orders/{id} shows it.
type Order struct {
	ID         string          `json:"id"`
	Status     string          `json:"status"`
	Customer   events.Customer `json:"customer"`
	Region     events.Region   `json:"region"`
	Items      []events.Item   `json:"items"`
	TotalCents int64           `json:"total_cents"`
	Reason     string          `json:"reason"`
}

// Order statuses.
const (
	StatusPending   = "pending"
	StatusConfirmed = "confirmed"
	StatusRejected  = "rejected"
	StatusCancelled = "cancelled"
)

// Place places an order and returns its id. header adds request headers (nil for none).
func (a *OrderAPI) Place(t testing.TB, req OrderRequest, header http.Header) string {
	t.Helper()
	id, err := a.place(t.Context(), req, header)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (a *OrderAPI) place(ctx context.Context, req OrderRequest, header http.Header) (string, error) {
	var out struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if err := a.call(ctx, http.MethodPost, "/orders", header, req, http.StatusAccepted, &out); err != nil {
		return "", err
	}
	if out.ID == "" || out.Status != StatusPending {
		return "", fmt.Errorf("POST /orders answered %+v, want an id and status pending", out)
	}
	return out.ID, nil
}

// Get returns an order.
func (a *OrderAPI) Get(t testing.TB, id string) Order {
	t.Helper()
	var o Order
	a.mustGet(t, "/orders/"+url.PathEscape(id), &o)
	return o
}

// Settled waits until inventory's verdict has moved the order out of pending and returns
// it. Its caller checks which status that is.
func (a *OrderAPI) Settled(t testing.TB, id string) Order {
	t.Helper()
	var o Order
	Eventually(t, 30*time.Second, "order "+id+" settled", func() error {
		if err := a.get(t.Context(), "/orders/"+url.PathEscape(id), &o); err != nil {
			return err
		}
		if o.Status == StatusPending {
			return fmt.Errorf("order %s is still pending", id)
		}
		return nil
	})
	return o
}

// Cancel cancels an order and returns it as the answer shows it.
func (a *OrderAPI) Cancel(t testing.TB, id string) Order {
	t.Helper()
	var o Order
	if err := a.call(t.Context(), http.MethodPost, "/orders/"+url.PathEscape(id)+"/cancel", nil, nil, http.StatusOK, &o); err != nil {
		t.Fatal(err)
	}
	return o
}

// Stock asks the order service for a SKU's stock level, which it asks inventory for over
// the broker (request/reply).
func (a *OrderAPI) Stock(t testing.TB, sku string) int {
	t.Helper()
	var out struct {
		Available int `json:"available"`
	}
	a.mustGet(t, "/stock/"+url.PathEscape(sku), &out)
	return out.Available
}

// InventoryAPI is the inventory service's HTTP API.
type InventoryAPI struct{ client }

// Stock returns a SKU's available stock.
func (a *InventoryAPI) Stock(t testing.TB, sku string) int {
	t.Helper()
	var out struct {
		Available int `json:"available"`
	}
	a.mustGet(t, "/stock/"+url.PathEscape(sku), &out)
	return out.Available
}

// StockOf returns the available stock of each SKU.
func (a *InventoryAPI) StockOf(t testing.TB, skus ...string) map[string]int {
	t.Helper()
	out := make(map[string]int, len(skus))
	for _, sku := range skus {
		out[sku] = a.Stock(t, sku)
	}
	return out
}

// EmailAPI is one email replica's HTTP API.
type EmailAPI struct {
	client
	// Name is the replica's network alias, e.g. "email-1".
	Name string
}

// Processed is how many messages of the email queue this replica has handled successfully
// (warren_messages_processed_total).
func (a *EmailAPI) Processed(t testing.TB) float64 {
	t.Helper()
	return a.Counter(t, "warren_messages_processed_total", `queue="`+events.QueueEmail+`"`)
}

// SMSAPI is the sms service's HTTP API.
type SMSAPI struct{ client }

// Text is one text message as GET /messages shows it.
type Text struct {
	MessageID string `json:"message_id"`
	OrderID   string `json:"order_id"`
	To        string `json:"to"`
	Body      string `json:"body"`
}

// Texts returns the texts sent for an order.
func (a *SMSAPI) Texts(t testing.TB, orderID string) []Text {
	t.Helper()
	var out struct {
		Messages []Text `json:"messages"`
	}
	a.mustGet(t, "/messages?order_id="+url.QueryEscape(orderID), &out)
	return out.Messages
}

// AnalyticsAPI is the analytics service's HTTP API.
type AnalyticsAPI struct{ client }

// Stats are the running totals GET /stats serves.
type Stats struct {
	// Orders counts orders by region and status.
	Orders map[events.Region]map[string]int64 `json:"orders"`
	// RevenueCents sums the totals of confirmed orders.
	RevenueCents int64 `json:"revenue_cents"`
	// Events counts the events handled, by type.
	Events map[string]int64 `json:"events"`
}

// Stats returns the running totals.
func (a *AnalyticsAPI) Stats(t testing.TB) Stats {
	t.Helper()
	var st Stats
	a.mustGet(t, "/stats", &st)
	return st
}

// QuietStats returns the totals once they have not moved for a second: the events of
// earlier tests may still be on their way to analytics, and a baseline must not count them.
func (a *AnalyticsAPI) QuietStats(t testing.TB) Stats {
	t.Helper()
	prev := a.Stats(t)
	var st Stats
	Eventually(t, 30*time.Second, "analytics totals at rest", func() error {
		time.Sleep(time.Second)
		st = a.Stats(t)
		if !reflect.DeepEqual(st, prev) {
			prev = st
			return errors.New("the totals are still moving")
		}
		return nil
	})
	return st
}
