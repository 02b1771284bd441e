package testkit

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// Component is a service under test: its real run function in-process, on a fresh vhost and
// a fresh database, reached the way its neighbours reach it — AMQP publishes in, HTTP out.
type Component struct {
	T testing.TB
	// URL is the base URL of the service's API, OpsURL of its operational endpoints
	// (/healthz, /readyz, /metrics).
	URL, OpsURL string
	// Ch is a channel on the test's vhost, in confirm mode.
	Ch *amqp.Channel
	// Hydra issues the tokens the service trusts. Token, when set, is sent as the bearer
	// token of every API request GetText, GetJSON and Do make.
	Hydra *Hydra
	Token string

	logs *testOutput
}

// Logs returns every line the service has logged so far.
func (c *Component) Logs() string { return c.logs.String() }

// StartComponent declares topology in a fresh vhost (as the definitions file does for a
// deployed broker) and starts the service with env on top of its broker, its database and
// the shared OpenID provider (AMQP_URL, DATABASE_URL, OIDC_*). The service stops when t
// ends.
func StartComponent(t testing.TB, name string, run func(context.Context, *slog.Logger) error,
	topology messaging.Topology, env map[string]string) *Component {
	t.Helper()
	amqpURL := SharedRabbitMQ(t).VHost(t)
	ch := DeclareTopology(t, amqpURL, topology)
	if err := ch.Confirm(false); err != nil {
		t.Fatalf("confirm mode: %v", err)
	}
	hydra := SharedHydra(t)
	all := map[string]string{"AMQP_URL": amqpURL, "DATABASE_URL": SharedPostgres(t).Database(t)}
	maps.Copy(all, hydra.Env())
	maps.Copy(all, env)
	endpoints, logs := startService(t, name, run, all)
	return &Component{T: t, URL: endpoints.URL, OpsURL: endpoints.OpsURL, Ch: ch, Hydra: hydra, logs: logs}
}

// PublishRaw publishes body as a persistent message of type typ with message id id, as the
// producers' relays do, and waits for the broker's confirm. Publishing the same id again
// is what a redelivery looks like to a consumer.
func (c *Component) PublishRaw(exchange, key, typ, id string, body []byte) {
	c.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	confirm, err := c.Ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false, amqp.Publishing{
		ContentType:  "application/json",
		DeliveryMode: amqp.Persistent,
		MessageId:    id,
		Type:         typ,
		Body:         body,
	})
	if err != nil {
		c.T.Fatalf("publish %s: %v", typ, err)
	}
	if ok, err := confirm.WaitContext(ctx); err != nil || !ok {
		c.T.Fatalf("publish %s: not confirmed (%v)", typ, err)
	}
}

// Publish publishes event as JSON.
func (c *Component) Publish(exchange, key, typ, id string, event any) {
	c.T.Helper()
	body, err := json.Marshal(event)
	if err != nil {
		c.T.Fatal(err)
	}
	c.PublishRaw(exchange, key, typ, id, body)
}

// PublishFanout publishes event on the order.events fanout.
func (c *Component) PublishFanout(typ, id string, event any) {
	c.T.Helper()
	c.Publish(events.ExchangeOrderEvents, "", typ, id, event)
}

// GetJSON decodes the JSON answer of GET path, which must be 200, into out.
func (c *Component) GetJSON(path string, out any) {
	c.T.Helper()
	if err := json.Unmarshal([]byte(c.GetText(path)), out); err != nil {
		c.T.Fatalf("GET %s: decode: %v", path, err)
	}
}

// GetText returns the body of GET path of the API, which must answer 200.
func (c *Component) GetText(path string) string {
	c.T.Helper()
	return c.get(c.URL+path, c.Token)
}

// Metrics returns the service's GET /metrics (on its operational listener, no token).
func (c *Component) Metrics() string {
	c.T.Helper()
	return c.get(c.OpsURL+"/metrics", "")
}

// Do sends req with Token as its bearer token (when set) and returns the response; a
// transport error fails the test.
func (c *Component) Do(req *http.Request) *http.Response {
	c.T.Helper()
	if c.Token != "" && req.Header.Get("Authorization") == "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return resp
}

// StatusAs sends method path to the API with token as its bearer token (none for "") and
// returns the answer's status: for tests of who may do what.
func (c *Component) StatusAs(method, path, token string) int {
	c.T.Helper()
	req, err := http.NewRequest(method, c.URL+path, strings.NewReader("{}"))
	if err != nil {
		c.T.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatalf("%s %s: %v", method, path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c *Component) get(url, token string) string {
	c.T.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		c.T.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.T.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.T.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return string(b)
}

// Eventually polls cond until it returns "" or timeout passes, then fails with its last
// answer: cond says what is still missing.
func Eventually(t testing.TB, timeout time.Duration, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// InOrder returns env with CONSUMER_CONCURRENCY=1 unless env sets it: the service then
// handles each queue strictly in delivery order, so a test knows that a message was handled
// once a message it published later was (a barrier), without sleeping. Services run with
// concurrent handlers by default; tests of that set CONSUMER_CONCURRENCY themselves, and
// the e2e and chaos suites run the default.
func InOrder(env map[string]string) map[string]string {
	out := map[string]string{"CONSUMER_CONCURRENCY": "1"}
	maps.Copy(out, env)
	return out
}
