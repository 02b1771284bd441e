// Package service is the runtime every Warren service shares: start-up from the
// environment, the operational HTTP endpoints, and a graceful shutdown. Reading one
// service's main.go teaches all five because they all go through here.
package service

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/warrenhq/warren/shared/telemetry"
)

// Main runs a service: it builds the JSON logger, sets up tracing, calls run with a context
// that is cancelled on SIGINT or SIGTERM, and exits non-zero if run fails. run must return
// once everything it started has stopped.
//
// "<binary> healthcheck" instead probes the running service's /readyz and exits 0 when it
// is ready: container images built FROM scratch have no curl for a HEALTHCHECK.
func Main(name string, run func(ctx context.Context, logger *slog.Logger) error) {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck())
	}
	level, _ := os.LookupEnv("LOG_LEVEL") // the one variable read before the config struct: it configures the logger that reports config errors
	logger := telemetry.NewLogger(os.Stdout, name, level)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	if err := start(ctx, name, logger, run); err != nil {
		logger.Error("service failed", "error", err)
		os.Exit(1)
	}
	logger.Info("service stopped")
}

func start(ctx context.Context, name string, logger *slog.Logger, run func(context.Context, *slog.Logger) error) error {
	shutdownTracing, err := telemetry.SetupTracing(ctx, name)
	if err != nil {
		return err
	}
	defer func() {
		// Flush spans even though ctx is cancelled by now.
		if err := shutdownTracing(context.WithoutCancel(ctx)); err != nil {
			logger.Warn("tracing shutdown", "error", err)
		}
	}()
	if err := run(ctx, logger); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
