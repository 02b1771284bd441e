// Command inventory owns stock: it reserves stock for placed orders, releases it for
// cancelled ones, and answers stock queries over request/reply.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/warrenhq/warren/services/inventory/internal/stock"
	"github.com/warrenhq/warren/services/inventory/migrations"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

func main() { service.Main("inventory", run) }

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
	if err := broker.Declare([]string{events.QueueInventory, events.QueueStockQuery}, []string{events.ExchangeTopic}); err != nil {
		return err
	}

	verifier, err := auth.New(ctx, cfg.Auth, logger)
	if err != nil {
		return err
	}
	reg := service.NewRegistry()
	store := stock.NewStore(pool)
	handlers := stock.NewHandlers(pool, ledger, store, broker.NewReplier(), otel.GetTextMapPropagator(),
		stock.Faults{FailSKUs: cfg.FailSKUs, CrashSKUs: cfg.CrashSKUs}, logger)
	router, err := broker.NewRouter(
		messaging.RouterConfig{
			Metrics: messaging.NewMetrics(reg, events.Types...), Logger: logger, CloseTimeout: cfg.ShutdownTimeout, HandlerTimeout: cfg.HandlerTimeout,
			Dependencies: []messaging.Dependency{{Name: "postgres", Unavailable: postgres.IsUnavailable}},
			Permanent:    postgres.IsPermanent,
		},
		messaging.Consumer{Queue: events.QueueInventory, Handler: handlers.OrderEvents()},
		messaging.Consumer{Queue: events.QueueStockQuery, Handler: handlers.StockQueries()},
	)
	if err != nil {
		return err
	}
	relay, err := outbox.NewRelay(ctx, pool, broker.Publisher(), outbox.Config{Metrics: outbox.NewMetrics(reg)}, logger)
	if err != nil {
		return err
	}

	ops := service.NewOpsServer(cfg.OpsAddr, reg, map[string]service.Check{"postgres": pool.Ping, "rabbitmq": broker.Check})
	mux := http.NewServeMux()
	stock.Routes(mux, store, logger)
	server := service.NewServer(cfg.HTTPAddr, cfg.RequestTimeout, service.Authenticated(verifier, mux), service.WithMetrics(reg))

	sweeper, err := postgres.NewSweeper(pool, logger, ledger.Expiry(), stock.TombstoneExpiry(cfg.TombstoneRetention))
	if err != nil {
		return err
	}

	return service.RunAll(ctx,
		router.Run,
		sweeper.Run,
		relay.Run,
		func(ctx context.Context) error { return service.Serve(ctx, server, cfg.ShutdownTimeout, logger) },
		func(ctx context.Context) error { return service.Serve(ctx, ops, cfg.ShutdownTimeout, logger) },
	)
}
