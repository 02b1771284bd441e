package service

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRateLimitRefusesBeyondTheBurstWith429(t *testing.T) {
	served := 0
	h := RateLimit(0.001, 3, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		served++
		w.WriteHeader(http.StatusAccepted)
	}))
	codes := []int{}
	var last *httptest.ResponseRecorder
	for range 5 {
		last = httptest.NewRecorder()
		h.ServeHTTP(last, httptest.NewRequest(http.MethodPost, "/orders", nil))
		codes = append(codes, last.Code)
	}
	want := []int{202, 202, 202, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("status codes %v, want %v", codes, want)
		}
	}
	if served != 3 {
		t.Errorf("handler ran %d times, want 3", served)
	}
	var body ErrorBody
	if err := json.Unmarshal(last.Body.Bytes(), &body); err != nil || body.Error == "" {
		t.Errorf("429 body %q: %v", last.Body, err)
	}
	if last.Header().Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
