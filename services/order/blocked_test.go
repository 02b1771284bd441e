package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/testkit"
)

// While a memory alarm makes the broker block the service's publishing connection, a stock
// query answers 503 with an error body and Retry-After within RPC_TIMEOUT (it would
// otherwise wait for inventory's answer, which cannot come), and /readyz says why.
func TestStockQueryWhileTheBrokerBlocksPublishes(t *testing.T) {
	rabbit := testkit.OwnRabbitMQ(t)
	const rpcTimeout = 2 * time.Second
	s := startService(t, rabbit.URL, map[string]string{"RPC_TIMEOUT": rpcTimeout.String()})

	rabbit.Exec(t, "rabbitmqctl", "set_vm_memory_high_watermark", "absolute", "1")
	// The broker blocks a connection when it publishes during the alarm: the first query
	// does that, and may end in 503 or 504.
	s.do(t, http.MethodGet, "/stock/carrot-seeds", nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		status, raw := s.ops(t, "/readyz")
		if status == http.StatusServiceUnavailable && strings.Contains(string(raw), "blocking publishes") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /readyz 30 s into the alarm = %d %s, want 503 naming the block", status, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	start := time.Now()
	status, header, raw := s.doHeader(t, http.MethodGet, "/stock/carrot-seeds", nil)
	if took := time.Since(start); status != http.StatusServiceUnavailable || !isErrorBody(raw) || header.Get("Retry-After") == "" || took > rpcTimeout+time.Second {
		t.Errorf("GET /stock/carrot-seeds while blocked = %d %s (Retry-After %q) after %s, want 503 with an error body and Retry-After within %s",
			status, raw, header.Get("Retry-After"), took, rpcTimeout+time.Second)
	}
}
