package livepage

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func newTestPage(t *testing.T, prometheusURL string) *httptest.Server {
	t.Helper()
	p, err := New(Config{OrderURL: "http://127.0.0.1:1", JaegerURL: "http://127.0.0.1:1", PrometheusURL: prometheusURL,
		User: "alice", Password: "x", PollInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = p.Run(ctx); close(done) }()
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(func() { cancel(); <-done; srv.Close() })
	return srv
}

// The page answers only to loopback names, and its buttons only to its own script.
func TestPageGuards(t *testing.T) {
	srv := newTestPage(t, "")
	for _, c := range []struct {
		name, method, host, header string
		want                       int
	}{
		{"page on 127.0.0.1", http.MethodGet, "", "", http.StatusOK},
		{"page on localhost", http.MethodGet, "localhost:8090", "", http.StatusOK},
		{"DNS rebinding", http.MethodGet, "evil.example:8090", "", http.StatusMisdirectedRequest},
		{"cross-site form post", http.MethodPost, "", "", http.StatusForbidden},
		{"poison when disabled", http.MethodPost, "", "1", http.StatusConflict},
	} {
		path := "/"
		if c.method == http.MethodPost {
			path = "/poison"
		}
		req, _ := http.NewRequest(c.method, srv.URL+path, nil)
		if c.host != "" {
			req.Host = c.host
		}
		if c.header != "" {
			req.Header.Set(headerPost, c.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Errorf("%s: %s %s = %d, want %d", c.name, c.method, path, resp.StatusCode, c.want)
		}
	}
}

// Without Prometheus, the event stream still carries the config and says so in each panel.
func TestPanelsSayPrometheusIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there now: a real connection refused
	srv := newTestPage(t, closed)
	resp, err := http.Get(srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("Content-Type %q", ct)
	}
	seen := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	event := ""
	deadline := time.Now().Add(5 * time.Second)
	for sc.Scan() && time.Now().Before(deadline) && len(seen) < 3 {
		line := sc.Text()
		if e, ok := strings.CutPrefix(line, "event: "); ok {
			event = e
		}
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			seen[event] = d
		}
	}
	if !strings.Contains(seen["config"], `"poison":false`) {
		t.Errorf("config = %s, want the poison button disabled", seen["config"])
	}
	for _, panel := range []string{"queues", "alerts"} {
		if !strings.Contains(seen[panel], "Prometheus unreachable") {
			t.Errorf("%s panel = %s, want Prometheus unreachable", panel, seen[panel])
		}
	}
}

func TestStepsOfATrace(t *testing.T) {
	got := stepsOf([]span{
		{Service: "order", Operation: "POST /orders"},
		{Service: "order", Operation: "publish order.events"},
		{Service: "email", Operation: "process order.events.email", Failed: true},
		{Service: "email", Operation: "process order.events.email"}, // the retry succeeded
		{Service: "analytics", Operation: "process order.events.analytics", Failed: true},
	})
	want := map[string]string{StepPlaced: stepDone, StepPublished: stepDone, StepEmail: stepDone, StepAnalytics: stepFailed}
	if len(got) != len(want) {
		t.Errorf("steps = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("step %s = %q, want %q", k, got[k], v)
		}
	}
}
