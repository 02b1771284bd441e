package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/testkit"
)

// orderService is the real service, run in-process by run() against a real broker and a
// fresh database, and reached only through its HTTP API and the broker.
type orderService struct {
	// baseURL is the API's, opsURL the operational endpoints' (/readyz, /metrics).
	baseURL, opsURL string
	client          *http.Client
	// dbURL is the service's database, for tests that count rows or hold locks in it.
	dbURL string
	// logs holds what the service logged, as JSON lines.
	logs *syncBuffer
	// hydra issues the tokens the service trusts; token is the one every request carries
	// ("" for none): the customer alice's, unless as chose another.
	hydra *testkit.Hydra
	token string
}

// as returns s sending token (from tokenFor) instead, or no token for "".
func (s *orderService) as(token string) *orderService {
	c := *s
	c.token = token
	return &c
}

var (
	tokensMu sync.Mutex
	tokens   = map[string]string{}
)

// tokenFor returns an access token from h for subject with roles, obtained once per test
// binary: Hydra's tokens live an hour, and each costs a login and a consent.
func tokenFor(t *testing.T, h *testkit.Hydra, subject string, roles ...string) string {
	t.Helper()
	key := subject + " " + strings.Join(roles, ",")
	tokensMu.Lock()
	defer tokensMu.Unlock()
	if tok, ok := tokens[key]; ok {
		return tok
	}
	tokens[key] = h.Token(t, subject, roles...)
	return tokens[key]
}

// alice and bob are customers, sam is staff: the demo identities' tokens.
func (s *orderService) alice(t *testing.T) string {
	return tokenFor(t, s.hydra, "alice", auth.RoleCustomer)
}

func (s *orderService) bob(t *testing.T) string {
	return tokenFor(t, s.hydra, "bob", auth.RoleCustomer)
}

func (s *orderService) sam(t *testing.T) string {
	return tokenFor(t, s.hydra, "sam", auth.RoleStaff)
}

// startService declares Warren's whole topology on amqpURL (so that the fanout's queues
// exist, as they would in production), starts the service with env on top of the test
// defaults, and waits until it is ready. The service is stopped when t ends.
func startService(t *testing.T, amqpURL string, env map[string]string) *orderService {
	t.Helper()
	testkit.DeclareTopology(t, amqpURL, events.Topology(events.DefaultSMSRegions))
	dbURL := testkit.SharedPostgres(t).Database(t)
	hydra := testkit.SharedHydra(t)
	vars := map[string]string{
		"AMQP_URL":     amqpURL,
		"DATABASE_URL": dbURL,
		"RPC_TIMEOUT":  "2s",
	}
	maps.Copy(vars, hydra.Env())
	for k, v := range testkit.InOrder(env) {
		vars[k] = v
	}
	logs := &syncBuffer{}
	// The service logs to the test's output as usual, and to logs for the test to read.
	logged := func(ctx context.Context, logger *slog.Logger) error {
		return run(ctx, slog.New(slog.NewMultiHandler(logger.Handler(), slog.NewJSONHandler(logs, nil))))
	}
	endpoints := testkit.StartService(t, "order", logged, vars)
	s := &orderService{baseURL: endpoints.URL, opsURL: endpoints.OpsURL, client: &http.Client{Timeout: 10 * time.Second}, dbURL: dbURL, logs: logs, hydra: hydra}
	s.token = s.alice(t)
	return s
}

// syncBuffer is a bytes.Buffer that the service's goroutines may write while a test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// lines returns the log records whose message is msg, decoded.
func (b *syncBuffer) lines(msg string) []map[string]any {
	b.mu.Lock()
	defer b.mu.Unlock()
	var found []map[string]any
	for _, line := range bytes.Split(b.buf.Bytes(), []byte("\n")) {
		var rec map[string]any
		if json.Unmarshal(line, &rec) == nil && rec["msg"] == msg {
			found = append(found, rec)
		}
	}
	return found
}

// ops GETs path of the operational endpoints and returns the status and body.
func (s *orderService) ops(t *testing.T, path string) (int, []byte) {
	t.Helper()
	resp, err := s.client.Get(s.opsURL + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// do sends a request with body as JSON (unless nil) and returns the status and body. A
// transport error is status 0.
func (s *orderService) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	status, _, raw := s.doHeader(t, method, path, body)
	return status, raw
}

func (s *orderService) doHeader(t *testing.T, method, path string, body any) (int, http.Header, []byte) {
	t.Helper()
	return s.send(t, method, path, nil, body)
}

// send is do with request headers, returning the response's headers too.
func (s *orderService) send(t *testing.T, method, path string, header http.Header, body any) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.baseURL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, nil, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, raw
}

// place places an order and returns its id.
func (s *orderService) place(t *testing.T, region events.Region, items ...orders.LineRequest) string {
	t.Helper()
	status, raw := s.do(t, http.MethodPost, "/orders", orders.PlaceRequest{
		Customer: events.Customer{Name: "Peter Rabbit", Email: "peter@example.com", Phone: "+44 20 7946 0958"},
		Region:   region,
		Items:    items,
	})
	if status != http.StatusAccepted {
		t.Fatalf("POST /orders = %d %s, want 202", status, raw)
	}
	var accepted struct{ ID string }
	decode(t, raw, &accepted)
	return accepted.ID
}

func (s *orderService) order(t *testing.T, id string) orders.Order {
	t.Helper()
	status, raw := s.do(t, http.MethodGet, "/orders/"+id, nil)
	if status != http.StatusOK {
		t.Fatalf("GET /orders/%s = %d %s, want 200", id, status, raw)
	}
	var o orders.Order
	decode(t, raw, &o)
	return o
}

// awaitStatus polls the order until it has status.
func (s *orderService) awaitStatus(t *testing.T, id string, status orders.Status) orders.Order {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		o := s.order(t, id)
		if o.Status == status {
			return o
		}
		if time.Now().After(deadline) {
			t.Fatalf("order %s is %s after 30 s, want %s", id, o.Status, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// dial opens a raw AMQP channel, closed when t ends.
func dial(t *testing.T, url string) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial rabbitmq: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("open channel: %v", err)
	}
	return ch
}

// publish publishes payload as inventory would, with a message id of the test's choosing
// so that the test can redeliver the very same message.
func publish(t *testing.T, ch *amqp.Channel, exchange, key, typ, messageID string, payload any) {
	t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		t.Fatal(err)
	}
	err = ch.PublishWithContext(context.Background(), exchange, key, false, false, amqp.Publishing{
		ContentType: "application/json", DeliveryMode: amqp.Persistent,
		MessageId: messageID, Type: typ, Body: body,
	})
	if err != nil {
		t.Fatalf("publish %s: %v", typ, err)
	}
}

// queueReader consumes a queue and remembers everything it read.
type queueReader struct {
	t          *testing.T
	queue      string
	deliveries <-chan amqp.Delivery
	seen       []amqp.Delivery
}

func consume(t *testing.T, ch *amqp.Channel, queue string) *queueReader {
	t.Helper()
	deliveries, err := ch.Consume(queue, "", true, false, false, false, nil)
	if err != nil {
		t.Fatalf("consume %s: %v", queue, err)
	}
	return &queueReader{t: t, queue: queue, deliveries: deliveries}
}

// await reads until a message of type typ about orderID arrives and returns it.
func (q *queueReader) await(typ, orderID string, timeout time.Duration) amqp.Delivery {
	q.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case d, ok := <-q.deliveries:
			if !ok {
				q.t.Fatalf("%s: consumer closed while waiting for %s", q.queue, typ)
			}
			q.seen = append(q.seen, d)
			if d.Type == typ && orderIDOf(d) == orderID {
				return d
			}
		case <-deadline:
			q.t.Fatalf("%s: no %s for order %s within %s (%d other messages read)", q.queue, typ, orderID, timeout, len(q.seen))
		}
	}
}

// count is how many messages of type typ about orderID were read so far.
func (q *queueReader) count(typ, orderID string) int {
	n := 0
	for _, d := range q.seen {
		if d.Type == typ && orderIDOf(d) == orderID {
			n++
		}
	}
	return n
}

func orderIDOf(d amqp.Delivery) string {
	var body struct {
		OrderID string `json:"order_id"`
	}
	_ = json.Unmarshal(d.Body, &body)
	return body.OrderID
}

func decode(t *testing.T, raw []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(raw, v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, raw)
	}
}
