// Command email tells customers about their orders by mail: received, confirmed, rejected
// or cancelled. It sends over SMTP, one mail per event, on a few sessions kept open, and
// keeps a record of what it sent.
package main

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/warrenhq/warren/services/email/internal/mailing"
	"github.com/warrenhq/warren/services/email/migrations"
	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

func main() { service.Main("email", run) }

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := service.LoadConfig[Config](logger)
	if err != nil {
		return err
	}
	ledger, err := postgres.NewLedger(cfg.LedgerConfig)
	if err != nil {
		return err
	}
	smtpTLS, err := service.TLSFiles{CAFile: cfg.SMTPCAFile}.ClientConfig()
	if err != nil {
		return err
	}
	sender, err := mailing.NewSender(mailing.SMTPConfig{
		Addr: cfg.SMTPAddr, From: cfg.SMTPFrom, Username: cfg.SMTPUsername, Password: cfg.SMTPPassword, Timeout: cfg.SMTPTimeout,
		TLS: cfg.SMTPTLS, TLSConfig: smtpTLS, Sessions: cfg.SMTPSessions, SessionIdle: cfg.SMTPSessionIdle,
	}, logger)
	if err != nil {
		return err
	}
	defer sender.Close()

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
	if err := broker.Declare([]string{events.QueueEmail}, nil); err != nil {
		return err
	}

	verifier, err := auth.New(ctx, cfg.Auth, logger)
	if err != nil {
		return err
	}
	reg := service.NewRegistry()
	store := mailing.NewStore(pool)
	handlers := mailing.NewHandlers(pool, ledger, store, sender, logger)
	router, err := broker.NewRouter(
		messaging.RouterConfig{
			Metrics: messaging.NewMetrics(reg, events.Types...), Logger: logger, CloseTimeout: cfg.ShutdownTimeout, HandlerTimeout: cfg.HandlerTimeout,
			// A mail server that cannot be reached is messaging.Unavailable("smtp", ...) by the sender.
			Dependencies: []messaging.Dependency{{Name: "postgres", Unavailable: postgres.IsUnavailable}},
			Permanent:    postgres.IsPermanent,
		},
		messaging.Consumer{Queue: events.QueueEmail, Handler: handlers.OrderEvents()},
	)
	if err != nil {
		return err
	}

	ops := service.NewOpsServer(cfg.OpsAddr, reg, map[string]service.Check{"postgres": pool.Ping, "rabbitmq": broker.Check})
	mux := http.NewServeMux()
	mailing.Routes(mux, store, logger)
	server := service.NewServer(cfg.HTTPAddr, cfg.RequestTimeout, service.Authenticated(verifier, mux), service.WithMetrics(reg))

	sweeper, err := postgres.NewSweeper(pool, logger, ledger.Expiry(), mailing.SentExpiry(cfg.SentEmailRetention))
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
