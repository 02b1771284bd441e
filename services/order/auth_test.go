package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

// The API needs a token, and the order routes a customer's.
func TestTheAPINeedsAToken(t *testing.T) {
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), nil)

	for _, path := range []string{"/products", "/stock/carrot-seeds", "/orders/" + uuid.NewString()} {
		status, header, raw := s.as("").doHeader(t, http.MethodGet, path, nil)
		assertErrorBody(t, "GET "+path+" without a token", status, raw, http.StatusUnauthorized)
		if got := header.Get("WWW-Authenticate"); got != `Bearer realm="warren"` {
			t.Errorf("GET %s without a token: WWW-Authenticate %q", path, got)
		}
	}
	status, header, raw := s.as("not-a-token").doHeader(t, http.MethodGet, "/products", nil)
	assertErrorBody(t, "GET /products with a bad token", status, raw, http.StatusUnauthorized)
	if got := header.Get("WWW-Authenticate"); got != `Bearer realm="warren", error="invalid_token"` {
		t.Errorf("GET /products with a bad token: WWW-Authenticate %q", got)
	}

	// Any valid token reads the catalogue; only a customer orders.
	staff := s.as(s.sam(t))
	if status, raw := staff.do(t, http.MethodGet, "/products", nil); status != http.StatusOK {
		t.Errorf("GET /products as staff = %d %s, want 200", status, raw)
	}
	status, raw = staff.do(t, http.MethodPost, "/orders", peterOrders(carrots))
	assertErrorBody(t, "POST /orders as staff", status, raw, http.StatusForbidden)
	if n := s.count(t, `SELECT count(*) FROM orders`); n != 0 {
		t.Errorf("%d orders stored after the refusals, want 0", n)
	}

	// The operational endpoints are on their own port, with no token; not on the API's.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		if status, _ := s.do(t, http.MethodGet, path, nil); status != http.StatusNotFound {
			t.Errorf("GET %s on the API port = %d, want 404", path, status)
		}
		if status, _ := s.ops(t, path); status != http.StatusOK {
			t.Errorf("GET %s on the ops port = %d, want 200", path, status)
		}
	}
}

// A customer sees and cancels only its own orders; someone else's is answered exactly like
// one that does not exist.
func TestOrdersBelongToTheirCustomer(t *testing.T) {
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), nil)
	alice, bob := s.as(s.alice(t)), s.as(s.bob(t))
	id := alice.place(t, "europe", carrots)
	if n := s.count(t, `SELECT count(*) FROM orders WHERE id = $1 AND customer_subject = 'alice'`, id); n != 1 {
		t.Fatalf("order %s is not stored as alice's", id)
	}

	missingStatus, missing := bob.do(t, http.MethodGet, "/orders/"+uuid.NewString(), nil)
	for _, req := range []struct{ method, path string }{
		{http.MethodGet, "/orders/" + id},
		{http.MethodPost, "/orders/" + id + "/cancel"},
	} {
		status, raw := bob.do(t, req.method, req.path, nil)
		if status != http.StatusNotFound || !bytes.Equal(raw, missing) || missingStatus != http.StatusNotFound {
			t.Errorf("bob: %s %s = %d %s, want %d %s as for a missing order", req.method, req.path, status, raw, missingStatus, missing)
		}
	}
	if o := alice.order(t, id); o.Status != orders.StatusPending {
		t.Errorf("alice's order after bob's cancel is %s, want pending", o.Status)
	}
	if status, raw := alice.do(t, http.MethodPost, "/orders/"+id+"/cancel", nil); status != http.StatusOK {
		t.Errorf("alice cancels her order = %d %s, want 200", status, raw)
	}

	// An order stored before authentication has no owner: nobody reaches it.
	s.queryText(t, `UPDATE orders SET customer_subject = NULL WHERE id = $1 RETURNING id::text`, id)
	if status, raw := alice.do(t, http.MethodGet, "/orders/"+id, nil); status != http.StatusNotFound {
		t.Errorf("alice reads an order nobody owns = %d %s, want 404", status, raw)
	}
}

// Two customers who happen to send the same Idempotency-Key each get an order of their own.
func TestIdempotencyKeysArePerCustomer(t *testing.T) {
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), nil)
	alice, bob := s.as(s.alice(t)), s.as(s.bob(t))
	key := uuid.NewString()
	req := peterOrders(carrots)

	aStatus, _, aliceID := alice.placeWithKey(t, key, req)
	bStatus, _, bobID := bob.placeWithKey(t, key, req)
	if aStatus != http.StatusAccepted || bStatus != http.StatusAccepted || aliceID == bobID {
		t.Fatalf("alice %d %s, bob %d %s with the same key: want two orders", aStatus, aliceID, bStatus, bobID)
	}
	if _, _, again := bob.placeWithKey(t, key, req); again != bobID {
		t.Errorf("bob's retry returned %s, want his order %s", again, bobID)
	}
	if status, _ := bob.do(t, http.MethodGet, "/orders/"+bobID, nil); status != http.StatusOK {
		t.Errorf("bob reads his order = %d", status)
	}
}

// With inventory away, orders stay pending: a customer may hold OPEN_ORDERS_PER_CUSTOMER of
// them, counted in the database, even when the requests race.
func TestOpenOrderQuota(t *testing.T) {
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), map[string]string{"OPEN_ORDERS_PER_CUSTOMER": "3"})
	alice, bob := s.as(s.alice(t)), s.as(s.bob(t))

	key := uuid.NewString()
	if status, _, _ := alice.placeWithKey(t, key, peterOrders(carrots)); status != http.StatusAccepted {
		t.Fatalf("the first order = %d", status)
	}
	// Ten at once: exactly two more get in.
	statuses := make([]int, 10)
	var wg sync.WaitGroup
	for i := range statuses {
		wg.Go(func() { statuses[i], _ = alice.do(t, http.MethodPost, "/orders", peterOrders(carrots)) })
	}
	wg.Wait()
	accepted := 0
	for _, st := range statuses {
		switch st {
		case http.StatusAccepted:
			accepted++
		case http.StatusTooManyRequests:
		default:
			t.Errorf("a concurrent POST /orders answered %d", st)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM orders WHERE customer_subject = 'alice'`); accepted != 2 || n != 3 {
		t.Fatalf("%d of 10 concurrent orders accepted, %d stored; want 2 and 3", accepted, n)
	}
	// A retry of an order placed is not a new one: it is answered as before, even at the quota.
	if status, _, _ := alice.placeWithKey(t, key, peterOrders(carrots)); status != http.StatusAccepted {
		t.Errorf("a retry at the quota = %d, want 202 (the first answer again)", status)
	}

	status, header, raw := alice.doHeader(t, http.MethodPost, "/orders", peterOrders(carrots))
	assertErrorBody(t, "the fourth order", status, raw, http.StatusTooManyRequests)
	if ra, err := strconv.Atoi(header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("429 Retry-After = %q, want whole seconds", header.Get("Retry-After"))
	}
	// Bob's quota is his own.
	bob.place(t, "europe", carrots)

	// Once one is settled (here: cancelled), there is room for one more.
	id := s.queryText(t, `SELECT id::text FROM orders WHERE customer_subject = 'alice' LIMIT 1`)
	if status, raw := alice.do(t, http.MethodPost, "/orders/"+id+"/cancel", nil); status != http.StatusOK {
		t.Fatalf("cancel = %d %s", status, raw)
	}
	alice.place(t, "europe", carrots)
}

// ORDER_RATE_PER_CUSTOMER: past a customer's burst, 429 with Retry-After; others go on.
func TestOrderRatePerCustomer(t *testing.T) {
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), map[string]string{
		"ORDER_RATE_PER_CUSTOMER": "0.01", "ORDER_BURST_PER_CUSTOMER": "2", "OPEN_ORDERS_PER_CUSTOMER": "0",
	})
	alice, bob := s.as(s.alice(t)), s.as(s.bob(t))
	alice.place(t, "europe", carrots)
	alice.place(t, "europe", carrots)
	status, header, raw := alice.doHeader(t, http.MethodPost, "/orders", peterOrders(carrots))
	assertErrorBody(t, "alice's third order", status, raw, http.StatusTooManyRequests)
	// 0.01 a second: the next token is 100 s away.
	if ra, err := strconv.Atoi(header.Get("Retry-After")); err != nil || ra < 90 || ra > 100 {
		t.Errorf("Retry-After = %q, want about 100", header.Get("Retry-After"))
	}
	bob.place(t, "europe", carrots)
	if n := s.count(t, `SELECT count(*) FROM orders`); n != 3 {
		t.Errorf("%d orders stored, want 3", n)
	}
}

func assertErrorBody(t *testing.T, what string, status int, raw []byte, want int) {
	t.Helper()
	var body service.ErrorBody
	if status != want || json.Unmarshal(raw, &body) != nil || body.Error == "" {
		t.Errorf("%s = %d %s, want %d with a JSON error", what, status, raw, want)
	}
}

// queryText runs a query that returns one text on the service's database.
func (s *orderService) queryText(t *testing.T, query string, args ...any) string {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatalf("connect to the order database: %v", err)
	}
	defer conn.Close(context.Background())
	var out string
	if err := conn.QueryRow(t.Context(), query, args...).Scan(&out); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}
