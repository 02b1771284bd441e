// Command order owns orders: it takes them over HTTP, announces them on the order.events
// fanout, settles them on inventory's verdict, and lets customers cancel them.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/warrenhq/warren/services/order/internal/orders"
	"github.com/warrenhq/warren/services/order/migrations"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

func main() { service.Main("order", run) }

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
	if err := broker.Declare([]string{events.QueueOrder},
		[]string{events.ExchangeOrderEvents, events.ExchangeTopic, events.ExchangeRPC}); err != nil {
		return err
	}
	requester := broker.NewRequester()
	defer requester.Close()

	verifier, err := auth.New(ctx, cfg.Auth, logger)
	if err != nil {
		return err
	}
	reg := service.NewRegistry()
	store := orders.NewStore(pool)
	metrics := orders.NewMetrics(reg)
	handlers := orders.NewHandlers(pool, ledger, store, otel.GetTextMapPropagator(), metrics, logger)
	router, err := broker.NewRouter(
		messaging.RouterConfig{
			Metrics: messaging.NewMetrics(reg, events.Types...), Logger: logger, CloseTimeout: cfg.ShutdownTimeout, HandlerTimeout: cfg.HandlerTimeout,
			Dependencies: []messaging.Dependency{{Name: "postgres", Unavailable: postgres.IsUnavailable}},
			Permanent:    postgres.IsPermanent,
		},
		messaging.Consumer{Queue: events.QueueOrder, Handler: handlers.StockEvents()},
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
	commands := orders.NewCommands(pool, store, otel.GetTextMapPropagator(), cfg.OpenOrdersPerCustomer, metrics, logger)
	orders.Routes(mux, commands, store, orders.NewStockClient(requester, cfg.RPCTimeout), orders.Limits{
		OrdersPerSecond: cfg.OrderRateLimit, OrdersBurst: cfg.OrderRateBurst,
		PerCustomer: service.SubjectLimit{PerSecond: cfg.OrderRatePerCustomer, Burst: cfg.OrderBurstPerCustomer},
	}, logger)
	server := service.NewServer(cfg.HTTPAddr, cfg.RequestTimeout, service.Authenticated(verifier, mux), service.WithMetrics(reg))

	pendingWatch := orders.NewPendingWatch(store, cfg.PendingAlertAfter, reg, logger)
	sweeper, err := postgres.NewSweeper(pool, logger, ledger.Expiry(), orders.KeyExpiry(cfg.IdempotencyKeyTTL))
	if err != nil {
		return err
	}
	// A key expires on time even when its TTL is shorter than the retentions' default sweep.
	sweeper.Interval = min(sweeper.Interval, cfg.IdempotencyKeyTTL/24)

	return service.RunAll(ctx,
		router.Run,
		sweeper.Run,
		relay.Run,
		pendingWatch.Run,
		func(ctx context.Context) error { return service.Serve(ctx, server, cfg.ShutdownTimeout, logger) },
		func(ctx context.Context) error { return service.Serve(ctx, ops, cfg.ShutdownTimeout, logger) },
	)
}
