package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/testkit"
)

// sys is the system every test of this package checks, started once by TestMain.
var sys *System

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run()) // every test skips itself
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...) }
	ctx := context.Background()

	unlock, err := LockHost()
	if err != nil {
		logf("%v", err)
		return 1
	}
	defer unlock()
	if n, err := ReapLeftovers(ctx); err != nil || n > 0 {
		logf("removed %d leftovers of killed runs (errors: %v)", n, err)
	}

	// Ctrl-C or SIGTERM removes the system too: during start-up by cancelling Start (which
	// cleans up after itself), later from the goroutine below. A killed run leaves its
	// containers to the next run's ReapLeftovers.
	interrupted, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	t0 := time.Now()
	startCtx, cancel := context.WithTimeout(interrupted, 5*time.Minute)
	s, err := Start(startCtx, ImagesFromEnv(), logf)
	cancel()
	if err != nil {
		logf("start: %v", err)
		return 1
	}
	logf("system up in %s", time.Since(t0).Round(100*time.Millisecond))
	defer func() {
		if err := s.Close(ctx); err != nil {
			logf("close: %v", err)
		}
	}()
	finished := make(chan struct{})
	defer close(finished)
	go func() {
		select {
		case <-finished:
		case <-interrupted.Done():
			logf("interrupted: removing the system")
			_ = s.Close(ctx)
			os.Exit(1)
		}
	}()

	sys = s
	code := m.Run()
	if code != 0 {
		s.DumpLogs(ctx, os.Stderr, 40)
	}
	return code
}

// system returns the running system; under -short it skips t.
func system(t *testing.T) *System {
	t.Helper()
	testkit.Integration(t)
	if sys == nil {
		t.Fatal("the system did not start (see TestMain's output)")
	}
	return sys
}
