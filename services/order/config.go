package main

import (
	"errors"
	"time"

	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

// Config is the order service's configuration, read from the environment once at start.
type Config struct {
	service.BaseConfig
	postgres.LedgerConfig
	// DatabaseURL is the order service's own database.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://order:order@localhost:5432/order?sslmode=disable"`
	// RPCTimeout is how long a request to inventory (GET /stock/{sku}) waits for its answer.
	RPCTimeout time.Duration `env:"RPC_TIMEOUT" envDefault:"2s"`
	// OrderRateLimit is the sustained POST /orders rate one replica accepts (per second);
	// OrderRateBurst how many may arrive at once above it. Beyond: 429.
	OrderRateLimit float64 `env:"ORDER_RATE_LIMIT" envDefault:"200"`
	OrderRateBurst int     `env:"ORDER_RATE_BURST" envDefault:"400"`
	// OrderRatePerCustomer is the sustained POST /orders rate one customer (token subject)
	// may send to one replica (per second; 0 turns it off); OrderBurstPerCustomer how many
	// at once above it. A person clicking never reaches 2 a second after a burst of 20; a
	// script draining stock does. Beyond: 429.
	OrderRatePerCustomer  float64 `env:"ORDER_RATE_PER_CUSTOMER" envDefault:"2"`
	OrderBurstPerCustomer int     `env:"ORDER_BURST_PER_CUSTOMER" envDefault:"20"`
	// OpenOrdersPerCustomer is how many pending orders one customer may hold, counted in
	// the database so that it holds across replicas (0 turns it off). Orders leave pending
	// within milliseconds while inventory runs, so only a customer who keeps ordering while
	// inventory is away reaches it. Beyond: 429.
	OpenOrdersPerCustomer int `env:"OPEN_ORDERS_PER_CUSTOMER" envDefault:"20"`
	// IdempotencyKeyTTL is how long an Idempotency-Key of POST /orders is honoured at
	// least: a retry within it returns the first order. Expired keys are deleted every
	// IdempotencyKeyTTL/24 (at least every hour).
	IdempotencyKeyTTL time.Duration `env:"IDEMPOTENCY_KEY_TTL" envDefault:"24h"`
	// PendingAlertAfter is how long an order may stay pending before it is counted in
	// warren_orders_pending_too_long and logged.
	PendingAlertAfter time.Duration `env:"ORDER_PENDING_ALERT_AFTER" envDefault:"5m"`
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.RPCTimeout <= 0 {
		return errors.New("config: RPC_TIMEOUT must be positive")
	}
	if c.OrderRateLimit <= 0 || c.OrderRateBurst < 1 {
		return errors.New("config: ORDER_RATE_LIMIT and ORDER_RATE_BURST must be positive")
	}
	if c.OrderRatePerCustomer < 0 || c.OrderBurstPerCustomer < 1 || c.OpenOrdersPerCustomer < 0 {
		return errors.New("config: ORDER_RATE_PER_CUSTOMER and OPEN_ORDERS_PER_CUSTOMER must be 0 (off) or more, ORDER_BURST_PER_CUSTOMER at least 1")
	}
	if c.IdempotencyKeyTTL <= 0 || c.PendingAlertAfter <= 0 || c.RequestTimeout <= 0 {
		return errors.New("config: IDEMPOTENCY_KEY_TTL, ORDER_PENDING_ALERT_AFTER and REQUEST_TIMEOUT must be positive")
	}
	return nil
}
