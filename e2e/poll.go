package e2e

import (
	"testing"
	"time"
)

// pollInterval is how often Eventually checks again.
const pollInterval = 200 * time.Millisecond

// Eventually calls check until it returns nil and fails t with check's last error once
// timeout has passed. what names the awaited condition in that failure.
func Eventually(t testing.TB, timeout time.Duration, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, timeout, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatalf("%s: %v", what, t.Context().Err())
		case <-time.After(pollInterval):
		}
	}
}
