package service

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestDeadlineBoundsTheRequestContext(t *testing.T) {
	var left time.Duration
	h := Deadline(3*time.Second, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		deadline, ok := r.Context().Deadline()
		if !ok {
			t.Fatal("the request's context has no deadline")
		}
		left = time.Until(deadline)
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil))
	if left <= 2*time.Second || left > 3*time.Second {
		t.Errorf("deadline %s away, want about 3s", left)
	}
}
