package rabbitmgmt

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func newClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(Config{URL: srv.URL, User: "admin", Password: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The default vhost is named "/": it must travel as %2F, or the API reads another path.
func TestVHostSlashIsEscaped(t *testing.T) {
	var got string
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		got = r.URL.EscapedPath()
		if u, p, _ := r.BasicAuth(); u != "admin" || p != "pw" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	})
	if err := c.PutPermissions(t.Context(), "/", "order", Permissions{}); err != nil {
		t.Fatal(err)
	}
	if got != "/api/permissions/%2F/order" {
		t.Fatalf("path = %s", got)
	}
}

func TestNotFoundIsErrNotFoundAndDeletingNothingIsFine(t *testing.T) {
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"error":"Object Not Found"}`, http.StatusNotFound)
	})
	if _, err := c.User(t.Context(), "guest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("User: %v, want ErrNotFound", err)
	}
	if err := c.DeleteUser(t.Context(), "guest"); err != nil {
		t.Errorf("DeleteUser of a missing user: %v", err)
	}
}

func TestWaitReadyRetriesUnavailableButNotUnauthorized(t *testing.T) {
	var calls atomic.Int32
	c := newClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	if err := c.WaitReady(t.Context(), 10*time.Second); err != nil || calls.Load() != 3 {
		t.Errorf("WaitReady = %v after %d calls, want success after 3", err, calls.Load())
	}

	c = newClient(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusUnauthorized) })
	start := time.Now()
	var status *StatusError
	if err := c.WaitReady(t.Context(), 10*time.Second); !errors.As(err, &status) || status.Status != http.StatusUnauthorized {
		t.Errorf("WaitReady with wrong credentials = %v, want a 401", err)
	}
	if time.Since(start) > time.Second {
		t.Error("WaitReady retried wrong credentials")
	}
}

func TestConfigIsValidated(t *testing.T) {
	for _, cfg := range []Config{
		{URL: "localhost:15672", User: "a", Password: "b"},
		{URL: "http://localhost:15672", User: "a"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
