package service_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// The API server's span of an authenticated request is named after its route and says
// whose request it was.
func TestAuthenticatedRequestsSpanNamesTheRouteAndTheSubject(t *testing.T) {
	h := testkit.SharedHydra(t)
	spans := tracetest.NewSpanRecorder()
	previous := otel.GetTracerProvider()
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	t.Cleanup(func() { otel.SetTracerProvider(previous) })

	v, err := auth.New(t.Context(), auth.Config{Issuer: h.Issuer, JWKSURL: h.JWKSURL, Audience: testkit.Audience}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	srv := httptest.NewServer(service.NewServer("", 5*time.Second, service.Authenticated(v, mux)).Handler)
	defer srv.Close()

	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/orders/42", nil)
	req.Header.Set("Authorization", "Bearer "+h.Token(t, "alice", auth.RoleCustomer))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /orders/42 = %s", resp.Status)
	}

	ended := spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans, want the server's one", len(ended))
	}
	span := ended[0]
	subject := ""
	for _, kv := range span.Attributes() {
		if kv.Key == "enduser.id" {
			subject = kv.Value.AsString()
		}
	}
	if span.Name() != "GET /orders/{id}" || subject != "alice" {
		t.Errorf("span %q with enduser.id %q, want GET /orders/{id} and alice", span.Name(), subject)
	}
}
