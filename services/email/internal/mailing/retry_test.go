package mailing

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The confirm after a send is retried in place while the database is away: a component test
// cannot take the shared PostgreSQL down, so the loop is tested here with a stand-in.
func TestRetryInPlaceUntilSuccess(t *testing.T) {
	errDown := errors.New("database down")
	var calls []time.Time
	err := retryInPlace(context.Background(), time.Millisecond, 4*time.Millisecond, func(context.Context) error {
		calls = append(calls, time.Now())
		if len(calls) < 6 {
			return errDown
		}
		return nil
	})
	if err != nil || len(calls) != 6 {
		t.Fatalf("err = %v after %d calls; want nil after 6", err, len(calls))
	}
	// Waits of 1, 2, 4, 4, 4 ms: doubling, capped.
	for i, want := range []time.Duration{1, 2, 4, 4, 4} {
		if got := calls[i+1].Sub(calls[i]); got < want*time.Millisecond {
			t.Errorf("wait %d = %v, want at least %v", i+1, got, want*time.Millisecond)
		}
	}
}

func TestRetryInPlaceStopsWhenTheContextEnds(t *testing.T) {
	errDown := errors.New("database down")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	calls := 0
	start := time.Now()
	err := retryInPlace(ctx, time.Millisecond, 5*time.Millisecond, func(context.Context) error {
		calls++
		return errDown
	})
	if !errors.Is(err, errDown) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v; want the last error and the context's", err)
	}
	if calls < 3 || time.Since(start) > 2*time.Second {
		t.Errorf("%d calls in %v; want several, ending with the context", calls, time.Since(start))
	}
}
