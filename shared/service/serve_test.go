package service

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// startServe runs Serve on a free loopback port with handler h and returns the address,
// a cancel that starts the shutdown, and the channel Serve's result arrives on.
func startServe(t *testing.T, h http.Handler, timeout time.Duration) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, &http.Server{Addr: addr, Handler: h}, timeout, slog.New(slog.DiscardHandler))
	}()
	for i := 0; ; i++ {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if i > 100 {
			t.Fatalf("server never listened: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return addr, cancel, done
}

// A connection that never sends a request (an HTTP client's spare dial) holds no work:
// shutdown closes it and succeeds. net/http's Shutdown alone waits 5 s for such a
// connection, past a shorter timeout, and a clean-clone CI run failed on that.
func TestShutdownIsCleanWithAConnectionThatNeverSentARequest(t *testing.T) {
	addr, cancel, done := startServe(t, http.NotFoundHandler(), 500*time.Millisecond)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	time.Sleep(50 * time.Millisecond) // the server has accepted it
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil: no request was in flight", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}

// A request still running when the timeout ends is work cut off: Serve says so.
func TestShutdownFailsWhenARequestIsCutOff(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	addr, cancel, done := startServe(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
	}), 300*time.Millisecond)
	go func() {
		resp, err := http.Get("http://" + addr + "/slow")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}()
	<-started
	cancel()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "1 requests still in flight") {
			t.Fatalf("Serve = %v, want an error naming the request in flight", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
}
