package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

func peterOrders(items ...orders.LineRequest) orders.PlaceRequest {
	return orders.PlaceRequest{
		Customer: events.Customer{Name: "Peter Rabbit", Email: "peter@example.com", Phone: "+44 20 7946 0958"},
		Region:   events.RegionEurope,
		Items:    items,
	}
}

func withKey(key string) http.Header { return http.Header{"Idempotency-Key": {key}} }

// count runs a count(*) query on the service's database.
func (s *orderService) count(t *testing.T, query string, args ...any) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), s.dbURL)
	if err != nil {
		t.Fatalf("connect to the order database: %v", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(t.Context(), query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// placeWithKey posts req with key and returns the status, the Location, and the id.
func (s *orderService) placeWithKey(t *testing.T, key string, req orders.PlaceRequest) (int, string, string) {
	t.Helper()
	status, header, raw := s.send(t, http.MethodPost, "/orders", withKey(key), req)
	var accepted struct{ ID string }
	if status == http.StatusAccepted {
		decode(t, raw, &accepted)
	}
	return status, header.Get("Location"), accepted.ID
}

func TestIdempotencyKeyPlacesOneOrder(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, nil)
	inventory := consume(t, dial(t, amqpURL), events.QueueInventory)
	req := peterOrders(carrots, can)

	status1, location1, id := s.placeWithKey(t, "8e03978e-40d5-43e8-bc93-6894a57f9324", req)
	// The draft's own form, a quoted string, names the same key.
	status2, header2, raw2 := s.send(t, http.MethodPost, "/orders", withKey(`"8e03978e-40d5-43e8-bc93-6894a57f9324"`), req)
	var again struct{ ID, Status string }
	decode(t, raw2, &again)
	if status1 != http.StatusAccepted || status2 != http.StatusAccepted || id == "" || again.ID != id ||
		header2.Get("Location") != location1 || location1 != "/orders/"+id {
		t.Fatalf("POST twice with one key = %d %s %s, then %d %s %s; want 202 twice with one id and Location",
			status1, location1, id, status2, header2.Get("Location"), raw2)
	}
	if header2.Get("Idempotent-Replayed") != "true" {
		t.Errorf("the replay has Idempotent-Replayed %q, want true", header2.Get("Idempotent-Replayed"))
	}

	// The same key with another body is a client bug: 422, and nothing placed.
	status, _, raw := s.send(t, http.MethodPost, "/orders", withKey("8e03978e-40d5-43e8-bc93-6894a57f9324"), peterOrders(carrots))
	var body service.ErrorBody
	decode(t, raw, &body)
	if status != http.StatusUnprocessableEntity || body.Field != "Idempotency-Key" || body.Error == "" {
		t.Errorf("same key, other body = %d %s, want 422 naming Idempotency-Key", status, raw)
	}

	// Another key is another order; the barrier's OrderPlaced comes after any duplicate of
	// the first (the relay publishes in order), so the count below is final.
	_, _, barrier := s.placeWithKey(t, "barrier", req)
	inventory.await(events.TypeOrderPlaced, barrier, eventWait)
	if n := inventory.count(events.TypeOrderPlaced, id); n != 1 {
		t.Errorf("%d OrderPlaced for order %s, want 1", n, id)
	}
	if n := s.count(t, `SELECT count(*) FROM orders`); n != 2 {
		t.Errorf("%d orders stored, want 2 (the keyed one and the barrier)", n)
	}
	if n := s.count(t, `SELECT count(*) FROM idempotency_keys WHERE key = $1 AND order_id = $2 AND length(request_hash) = 32`,
		"8e03978e-40d5-43e8-bc93-6894a57f9324", id); n != 1 {
		t.Errorf("%d idempotency_keys rows for the key and its order, want 1", n)
	}

	// Without a key, POST /orders is not idempotent, as before.
	first, second := s.place(t, events.RegionEurope, carrots), s.place(t, events.RegionEurope, carrots)
	if first == second {
		t.Errorf("two POST /orders without a key gave one order %s, want two", first)
	}
}

func TestConcurrentDuplicatesPlaceOneOrder(t *testing.T) {
	amqpURL := testkit.SharedRabbitMQ(t).VHost(t)
	s := startService(t, amqpURL, nil)
	inventory := consume(t, dial(t, amqpURL), events.QueueInventory)
	req := peterOrders(carrots)

	const clients = 10
	statuses, ids := make([]int, clients), make([]string, clients)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range clients {
		wg.Go(func() {
			<-start
			statuses[i], _, ids[i] = s.placeWithKey(t, "race", req)
		})
	}
	close(start)
	wg.Wait()
	for i := range clients {
		if statuses[i] != http.StatusAccepted || ids[i] != ids[0] || ids[0] == "" {
			t.Fatalf("10 concurrent POSTs with one key: %v, ids %v; want 202 with one id for all", statuses, ids)
		}
	}
	_, _, barrier := s.placeWithKey(t, "barrier", req)
	inventory.await(events.TypeOrderPlaced, barrier, eventWait)
	if n := inventory.count(events.TypeOrderPlaced, ids[0]); n != 1 {
		t.Errorf("%d OrderPlaced for order %s, want 1", n, ids[0])
	}
	if n := s.count(t, `SELECT count(*) FROM orders`); n != 2 {
		t.Errorf("%d orders stored, want 2 (one for the ten duplicates, the barrier)", n)
	}
}

func TestIdempotencyKeyIsValidated(t *testing.T) {
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), nil)
	for name, key := range map[string]string{
		"too long":          strings.Repeat("k", 256),
		"empty string":      `""`,
		"unterminated":      `"abc`,
		"bad escape":        `"a\b"`,
		"not ASCII":         "clé",
		"control character": "a\tb",
	} {
		status, _, raw := s.send(t, http.MethodPost, "/orders", withKey(key), peterOrders(carrots))
		var body service.ErrorBody
		decode(t, raw, &body)
		if status != http.StatusBadRequest || body.Field != "Idempotency-Key" {
			t.Errorf("%s: POST /orders with Idempotency-Key %q = %d %s, want 400 naming Idempotency-Key", name, key, status, raw)
		}
	}
	if n := s.count(t, `SELECT count(*) FROM orders`); n != 0 {
		t.Errorf("%d orders stored after bad keys only, want 0", n)
	}
	if status, _, id := s.placeWithKey(t, strings.Repeat("k", 255), peterOrders(carrots)); status != http.StatusAccepted || id == "" {
		t.Errorf("a key of 255 characters = %d, want 202", status)
	}
}

func TestExpiredKeysAreDeleted(t *testing.T) {
	// A TTL of 1 s is cleaned up every 1 s/24: the key goes soon after its order is placed.
	s := startService(t, testkit.SharedRabbitMQ(t).VHost(t), map[string]string{"IDEMPOTENCY_KEY_TTL": "1s"})
	_, _, first := s.placeWithKey(t, "short-lived", peterOrders(carrots))
	deadline := time.Now().Add(10 * time.Second)
	for s.count(t, `SELECT count(*) FROM idempotency_keys`) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the expired key is still stored 10 s later")
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Once its key expired, a retry is a new order.
	if _, _, second := s.placeWithKey(t, "short-lived", peterOrders(carrots)); second == first || second == "" {
		t.Errorf("the expired key placed %q again, want a new order", second)
	}
}
