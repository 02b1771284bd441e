package service_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warrenhq/warren/shared/service"
)

// Every API request is counted and timed under the route the mux matched (not its path),
// or "unmatched"; the ops listener serves the counts, and in OpenMetrics the trace id of a
// request as the exemplar of its bucket.
func TestHTTPMetricsNameTheRouteAndCarryTheTraceID(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	previous := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	t.Cleanup(func() { otel.SetTracerProvider(previous) })

	reg := service.NewRegistry()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("{}")) })
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusAccepted) })
	mux.HandleFunc("/any", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	api := httptest.NewServer(service.NewServer("", 5*time.Second, mux, service.WithMetrics(reg)).Handler)
	defer api.Close()
	ops := httptest.NewServer(service.OpsMux(reg, nil))
	defer ops.Close()

	for _, req := range []struct{ method, path string }{
		{"GET", "/orders/42"}, {"GET", "/orders/43"}, {"POST", "/orders"},
		{"GET", "/nowhere"}, {"DELETE", "/orders"}, {"BREW", "/any"},
	} {
		r, _ := http.NewRequest(req.method, api.URL+req.path, nil)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}

	text := scrape(t, ops.URL, "")
	for _, want := range []string{
		`warren_http_requests_total{code="200",method="GET",route="GET /orders/{id}"} 2`,
		`warren_http_requests_total{code="202",method="POST",route="POST /orders"} 1`,
		`warren_http_requests_total{code="404",method="GET",route="unmatched"} 1`,
		`warren_http_requests_total{code="405",method="DELETE",route="unmatched"} 1`,
		`warren_http_requests_total{code="418",method="other",route="/any"} 1`,
		`warren_http_request_duration_seconds_count{method="GET",route="GET /orders/{id}"} 2`,
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("metrics lack %s; got:\n%s", want, grepLines(text, "warren_http_"))
		}
	}
	if strings.Contains(text, "/orders/42") || strings.Contains(text, "BREW") {
		t.Errorf("a path or a method the client chose became a label value:\n%s", grepLines(text, "warren_http_"))
	}

	// The exemplar of the last GET /orders/{id} is its trace's id.
	var traceID string
	for _, s := range spans.Ended() {
		if s.Name() == "GET /orders/{id}" {
			traceID = s.SpanContext().TraceID().String()
		}
	}
	if traceID == "" {
		t.Fatal("no span named GET /orders/{id}")
	}
	open := scrape(t, ops.URL, "application/openmetrics-text; version=1.0.0")
	exemplar := `# {trace_id="` + traceID + `"}`
	found := false
	for _, line := range strings.Split(open, "\n") {
		if strings.HasPrefix(line, `warren_http_request_duration_seconds_bucket{method="GET",route="GET /orders/{id}"`) &&
			strings.Contains(line, exemplar) {
			found = true
		}
	}
	if !found || !strings.HasSuffix(open, "# EOF\n") {
		t.Errorf("OpenMetrics output has no bucket of GET /orders/{id} with exemplar %s; got:\n%s",
			exemplar, grepLines(open, "warren_http_request_duration_seconds_bucket"))
	}
}

// scrape GETs /metrics of the ops listener at base, with accept as the Accept header.
func scrape(t *testing.T, base, accept string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %s %s", resp.Status, b)
	}
	return string(b)
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
