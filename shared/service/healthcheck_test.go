package service

import (
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
)

// Probe exits 0 only when the listener at the variable's port answers 200 on the path.
func TestProbeAnswersTheListenersStatus(t *testing.T) {
	status := http.StatusOK
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	t.Setenv("PROBE_TEST_ADDR", ":"+port)

	if got := Probe("PROBE_TEST_ADDR", ":1", "/healthz"); got != 0 {
		t.Errorf("Probe on a 200 = %d, want 0", got)
	}
	status = http.StatusServiceUnavailable
	if got := Probe("PROBE_TEST_ADDR", ":1", "/healthz"); got != 1 {
		t.Errorf("Probe on a 503 = %d, want 1", got)
	}
	if got := Probe("PROBE_TEST_ADDR", ":1", "/elsewhere"); got != 1 {
		t.Errorf("Probe on another path's 404 = %d, want 1", got)
	}
	t.Setenv("PROBE_TEST_ADDR", "")
	if got := Probe("PROBE_TEST_ADDR", "127.0.0.1:"+port, "/healthz"); got != 1 {
		t.Errorf("Probe falls back to the default address, where a 503 answers: %d, want 1", got)
	}
}
