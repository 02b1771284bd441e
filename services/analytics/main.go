// Command analytics keeps running totals of Warren's business: orders by region and
// status, revenue, and events by type. It hears every event: the order.events fanout and
// all of the topic exchange.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/warrenhq/warren/services/analytics/internal/stats"
	"github.com/warrenhq/warren/services/analytics/migrations"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

func main() { service.Main("analytics", run) }

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := service.LoadConfig[Config](logger)
	if err != nil {
		return err
	}
	ledger, err := postgres.NewLedger(cfg.LedgerConfig)
	if err != nil {
		return err
	}

	pool, err := postgres.Open(ctx, cfg.DatabaseURL, time.Minute, migrations.FS)
	if err != nil {
		return err
	}
	defer pool.Close()

	brokerConfig, err := cfg.Broker()
	if err != nil {
		return err
	}
	broker, err := messaging.Connect(ctx, brokerConfig,
		events.Topology(events.DefaultSMSRegions), logger)
	if err != nil {
		return err
	}
	defer broker.Close()
	if err := broker.Declare([]string{events.QueueAnalytics}, nil); err != nil {
		return err
	}

	verifier, err := auth.New(ctx, cfg.Auth, logger)
	if err != nil {
		return err
	}
	reg := service.NewRegistry()
	store := stats.NewStore(pool)
	handlers := stats.NewHandlers(pool, ledger, store, logger)
	router, err := broker.NewRouter(
		messaging.RouterConfig{
			Metrics: messaging.NewMetrics(reg, events.Types...), Logger: logger, CloseTimeout: cfg.ShutdownTimeout, HandlerTimeout: cfg.HandlerTimeout,
			Dependencies: []messaging.Dependency{{Name: "postgres", Unavailable: postgres.IsUnavailable}},
			Permanent:    postgres.IsPermanent,
		},
		messaging.Consumer{Queue: events.QueueAnalytics, Handler: handlers.Events()},
	)
	if err != nil {
		return err
	}

	ops := service.NewOpsServer(cfg.OpsAddr, reg, map[string]service.Check{"postgres": pool.Ping, "rabbitmq": broker.Check})
	mux := http.NewServeMux()
	stats.Routes(mux, store, logger)
	server := service.NewServer(cfg.HTTPAddr, cfg.RequestTimeout, service.Authenticated(verifier, mux), service.WithMetrics(reg))

	sweeper, err := postgres.NewSweeper(pool, logger, ledger.Expiry())
	if err != nil {
		return err
	}

	return service.RunAll(ctx,
		router.Run,
		sweeper.Run,
		func(ctx context.Context) error { return service.Serve(ctx, server, cfg.ShutdownTimeout, logger) },
		func(ctx context.Context) error { return service.Serve(ctx, ops, cfg.ShutdownTimeout, logger) },
	)
}
