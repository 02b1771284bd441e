package testkit

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/telemetry"
)

var tracingOnce sync.Once

// Endpoints are where a service started by StartService listens.
type Endpoints struct {
	// URL is the base URL of its API (HTTP_ADDR).
	URL string
	// OpsURL is the base URL of its operational endpoints (OPS_ADDR): /healthz, /readyz,
	// /metrics.
	OpsURL string
}

// StartService runs a service's run function in-process, the way its main does, with env
// set as its environment (HTTP_ADDR and OPS_ADDR are chosen here), waits until its /readyz
// answers 200, and stops it when t ends.
func StartService(t testing.TB, name string, run func(context.Context, *slog.Logger) error, env map[string]string) Endpoints {
	t.Helper()
	endpoints, _ := startService(t, name, run, env)
	return endpoints
}

// startService is StartService, also returning the service's log output.
func startService(t testing.TB, name string, run func(context.Context, *slog.Logger) error, env map[string]string) (Endpoints, *testOutput) {
	t.Helper()
	apiPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	opsPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	t.Setenv("HTTP_ADDR", "127.0.0.1:"+apiPort)
	t.Setenv("OPS_ADDR", "127.0.0.1:"+opsPort)
	t.Setenv("SHUTDOWN_TIMEOUT", "5s")

	// As service.Main does: spans are created (and exported nowhere), so trace context
	// travels through the outbox and the broker as in production.
	tracingOnce.Do(func() { _, _ = telemetry.SetupTracing(context.Background(), name) })
	out := &testOutput{w: t.Output()}
	logger := telemetry.NewLogger(out, name, "debug")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, logger) }()
	t.Cleanup(func() {
		defer out.close()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s stopped with: %v", name, err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("%s did not stop within 30 s", name)
		}
	})

	endpoints := Endpoints{URL: "http://127.0.0.1:" + apiPort, OpsURL: "http://127.0.0.1:" + opsPort}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-done:
			t.Fatalf("%s exited during start-up: %v", name, err)
		default:
		}
		resp, err := http.Get(endpoints.OpsURL + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return endpoints, out
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after 60 s: %v", name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testOutput passes a service's log lines to the test's output (shown for failed tests
// and under -v) until the test ends: a library goroutine that logs after that must not
// make the test panic. It keeps a copy for tests that check what a service logs.
type testOutput struct {
	mu     sync.Mutex
	w      io.Writer
	kept   strings.Builder
	closed bool
}

func (o *testOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return len(p), nil
	}
	o.kept.Write(p)
	return o.w.Write(p)
}

// String returns everything logged so far.
func (o *testOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.kept.String()
}

func (o *testOutput) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// DeclareTopology declares topology on the broker at url, as the definitions file does for
// a deployed broker, and returns a channel on it for the test to publish and inspect with.
func DeclareTopology(t testing.TB, url string, topology messaging.Topology) *amqp.Channel {
	t.Helper()
	conn, err := amqp.Dial(url)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("channel: %v", err)
	}
	if err := topology.DeclareAll(ch); err != nil {
		t.Fatalf("declare topology: %v", err)
	}
	return ch
}

// Get waits up to timeout for a message in queue, acks it and returns it.
func Get(t testing.TB, ch *amqp.Channel, queue string, timeout time.Duration) amqp.Delivery {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		d, ok, err := ch.Get(queue, true)
		if err != nil {
			t.Fatalf("get %s: %v", queue, err)
		}
		if ok {
			return d
		}
		if time.Now().After(deadline) {
			t.Fatalf("no message in %s after %s", queue, timeout)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// Depth returns how many ready messages queue holds.
func Depth(t testing.TB, ch *amqp.Channel, queue string) int {
	t.Helper()
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	if err != nil {
		t.Fatalf("inspect %s: %v", queue, err)
	}
	return q.Messages
}
