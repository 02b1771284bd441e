// Command sms texts customers when their order is confirmed, in the regions it serves. Its
// queue is bound only to those regions' confirmations, so the broker filters the rest.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/warrenhq/warren/services/sms/internal/texting"
	"github.com/warrenhq/warren/services/sms/migrations"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

func main() { service.Main("sms", run) }

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := service.LoadConfig[Config](logger)
	if err != nil {
		return err
	}
	ledger, err := postgres.NewLedger(cfg.LedgerConfig)
	if err != nil {
		return err
	}
	regions, err := events.ParseRegions(cfg.SMSRegions)
	if err != nil {
		return fmt.Errorf("config: SMS_REGIONS: %w", err)
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
		events.Topology(regions), logger)
	if err != nil {
		return err
	}
	defer broker.Close()
	if err := broker.Declare([]string{events.QueueSMS}, nil); err != nil {
		return err
	}
	if err := broker.Unbind(events.QueueSMS, texting.StaleBindings(regions)); err != nil {
		return err
	}

	verifier, err := auth.New(ctx, cfg.Auth, logger)
	if err != nil {
		return err
	}
	reg := service.NewRegistry()
	store := texting.NewStore(pool)
	handlers := texting.NewHandlers(pool, ledger, store, logger)
	router, err := broker.NewRouter(
		messaging.RouterConfig{
			Metrics: messaging.NewMetrics(reg, events.Types...), Logger: logger, CloseTimeout: cfg.ShutdownTimeout, HandlerTimeout: cfg.HandlerTimeout,
			Dependencies: []messaging.Dependency{{Name: "postgres", Unavailable: postgres.IsUnavailable}},
			Permanent:    postgres.IsPermanent,
		},
		messaging.Consumer{Queue: events.QueueSMS, Handler: handlers.OrderEvents()},
	)
	if err != nil {
		return err
	}

	ops := service.NewOpsServer(cfg.OpsAddr, reg, map[string]service.Check{"postgres": pool.Ping, "rabbitmq": broker.Check})
	mux := http.NewServeMux()
	texting.Routes(mux, store, logger)
	server := service.NewServer(cfg.HTTPAddr, cfg.RequestTimeout, service.Authenticated(verifier, mux), service.WithMetrics(reg))

	logger.InfoContext(ctx, "texting confirmations", "regions", regions)
	sweeper, err := postgres.NewSweeper(pool, logger, ledger.Expiry(), texting.SentExpiry(cfg.SentTextRetention))
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
