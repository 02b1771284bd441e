package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/warrenhq/warren/shared/events"
	"golang.org/x/sync/errgroup"
)

// errAbandoned: the run ended before the order could be placed.
var errAbandoned = errors.New("abandoned: the run ended first")

// maxAttempts bounds the POSTs of one order that fail without an answer (connection
// refused, a timeout): each is retried with the same Idempotency-Key. Waits for a
// Retry-After are not attempts: they end with the run.
const maxAttempts = 3

// client calls Warren's APIs.
type client struct {
	http                   *http.Client
	orderURL, inventoryURL string
	token                  func(ctx context.Context, user string) (string, error)
}

// customer is one logged-in user. Its mutex makes it send one order at a time, as a
// person (or a well-behaved client) does, and holds its later orders while it waits out
// a Retry-After: a throttled customer sends nothing until the server said it may.
type customer struct {
	name string

	send      sync.Mutex // held around wait-then-POST
	mu        sync.Mutex
	token     string
	notBefore time.Time
}

func (c *customer) bearer() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.token
}

// logIn logs every user in, four at a time (each login is a few round trips through the
// provider and the login app).
func (api *client) logIn(ctx context.Context, users []string) ([]*customer, error) {
	out := make([]*customer, len(users))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, u := range users {
		g.Go(func() error {
			t, err := api.token(gctx, u)
			if err != nil {
				return fmt.Errorf("log %s in: %w", u, err)
			}
			out[i] = &customer{name: u, token: t}
			return nil
		})
	}
	return out, g.Wait()
}

// relogIn replaces c's token after a 401, once per token: concurrent 401s of the same
// expired token log in once.
func (api *client) relogIn(ctx context.Context, c *customer, stale string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != stale {
		return nil
	}
	t, err := api.token(ctx, c.name)
	if err != nil {
		return fmt.Errorf("log %s in again: %w", c.name, err)
	}
	c.token = t
	return nil
}

type placeRequest struct {
	Customer events.Customer `json:"customer"`
	Region   events.Region   `json:"region"`
	Items    []line          `json:"items"`
}

type line struct {
	SKU      string `json:"sku"`
	Quantity int    `json:"quantity"`
}

// place POSTs the order as c until it is accepted, and returns its id. A 429 or 503 with
// Retry-After holds c for that long, then the same request is sent again with the same
// key; any other answer than 202 is an error.
func (api *client) place(ctx context.Context, c *customer, req placeRequest, key string, rec *recorder) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("place: %w", err)
	}
	c.send.Lock()
	defer c.send.Unlock()
	failures := 0
	for {
		c.mu.Lock()
		wait := time.Until(c.notBefore)
		c.mu.Unlock()
		if wait > 0 {
			select {
			case <-ctx.Done():
				return "", errAbandoned
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			return "", errAbandoned
		}
		header := http.Header{"Idempotency-Key": {key}}
		t0 := time.Now()
		var out struct {
			ID string `json:"id"`
		}
		status, retryAfter, err := api.do(ctx, c, http.MethodPost, api.orderURL+"/orders", header, body, &out)
		latency := time.Since(t0)
		switch {
		case err != nil && ctx.Err() != nil:
			return "", errAbandoned
		case err != nil:
			if failures++; failures >= maxAttempts {
				return "", err
			}
			c.hold(time.Second)
		case status == http.StatusAccepted && out.ID != "":
			rec.placed(latency)
			return out.ID, nil
		case (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && retryAfter > 0:
			rec.add(func(c *Counts) { c.Throttled++ })
			c.hold(retryAfter)
		default:
			return "", fmt.Errorf("POST /orders: HTTP %d", status)
		}
	}
}

// hold makes c send nothing for d.
func (c *customer) hold(d time.Duration) {
	c.mu.Lock()
	if until := time.Now().Add(d); until.After(c.notBefore) {
		c.notBefore = until
	}
	c.mu.Unlock()
}

// settled polls the order until it is no longer pending and returns its status: every
// 50 ms at first, backing off to 1 s (inventory settles an order in milliseconds when it
// keeps up; when it does not, polling faster would only add to the load).
func (api *client) settled(ctx context.Context, c *customer, id string) (string, error) {
	delay := 50 * time.Millisecond
	for {
		var o struct {
			Status string `json:"status"`
		}
		status, _, err := api.do(ctx, c, http.MethodGet, api.orderURL+"/orders/"+url.PathEscape(id), nil, nil, &o)
		switch {
		case err != nil:
			return "", err
		case status != http.StatusOK:
			return "", fmt.Errorf("GET /orders/%s: HTTP %d", id, status)
		case o.Status != StatusPending:
			return o.Status, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, time.Second)
	}
}

// cancel cancels the order and returns its new status.
func (api *client) cancel(ctx context.Context, c *customer, id string) (string, error) {
	var o struct {
		Status string `json:"status"`
	}
	status, _, err := api.do(ctx, c, http.MethodPost, api.orderURL+"/orders/"+url.PathEscape(id)+"/cancel", nil, nil, &o)
	if err != nil {
		return "", err
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("POST /orders/%s/cancel: HTTP %d", id, status)
	}
	return o.Status, nil
}

// stock asks inventory for a SKU's available stock.
func (api *client) stock(ctx context.Context, c *customer, sku string) (int, error) {
	var out struct {
		Available int `json:"available"`
	}
	status, _, err := api.do(ctx, c, http.MethodGet, api.inventoryURL+"/stock/"+url.PathEscape(sku), nil, nil, &out)
	if err != nil {
		return 0, err
	}
	if status != http.StatusOK {
		return 0, fmt.Errorf("GET /stock/%s: HTTP %d", sku, status)
	}
	return out.Available, nil
}

// setStock sets a SKU's available stock (role staff).
func (api *client) setStock(ctx context.Context, c *customer, sku string, n int) error {
	body, _ := json.Marshal(map[string]int{"available": n})
	status, _, err := api.do(ctx, c, http.MethodPut, api.inventoryURL+"/stock/"+url.PathEscape(sku), nil, body, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("PUT /stock/%s: HTTP %d", sku, status)
	}
	return nil
}

// do sends one request as c and decodes a 2xx answer's JSON into out. It returns the
// status and the Retry-After (0 when absent); after a 401 it logs c in again and sends
// the request once more.
func (api *client) do(ctx context.Context, c *customer, method, u string, header http.Header, body []byte, out any) (int, time.Duration, error) {
	for attempt := 0; ; attempt++ {
		token := c.bearer()
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return 0, 0, fmt.Errorf("%s %s: %w", method, u, err)
		}
		for k, v := range header {
			req.Header[k] = v
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := api.http.Do(req)
		if err != nil {
			return 0, 0, fmt.Errorf("%s %s: %w", method, u, err)
		}
		data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return 0, 0, fmt.Errorf("%s %s: read the answer: %w", method, u, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			if err := api.relogIn(ctx, c, token); err != nil {
				return 0, 0, err
			}
			continue
		}
		if resp.StatusCode/100 == 2 && out != nil {
			if err := json.Unmarshal(data, out); err != nil {
				return resp.StatusCode, 0, fmt.Errorf("%s %s: decode the answer: %w", method, u, err)
			}
		}
		return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After")), nil
	}
}

// retryAfter reads a Retry-After in seconds (the form Warren sends); an HTTP date or
// nothing is 0.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// newKey returns a fresh Idempotency-Key: 128 random bits.
func newKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}
