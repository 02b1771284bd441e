package main

import (
	"fmt"
	"time"

	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

// Config is the inventory service's configuration, read from the environment once at start.
type Config struct {
	service.BaseConfig
	postgres.LedgerConfig
	// DatabaseURL is the inventory's own database.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://inventory:inventory@localhost:5432/inventory?sslmode=disable"`
	// FailSKUs is fault injection for demos and chaos tests: an order holding one of these
	// SKUs fails as if the warehouse system were down, so it is retried and then
	// dead-lettered. Empty in production.
	FailSKUs []string `env:"INVENTORY_FAIL_SKUS" envSeparator:","`
	// CrashSKUs is fault injection for chaos tests: the process exits at once while it
	// handles an order holding one of these SKUs. Empty in production.
	CrashSKUs []string `env:"INVENTORY_CRASH_SKUS" envSeparator:","`
	// TombstoneRetention is how long a cancelled order's tombstone is kept (at least
	// LEDGER_RETENTION; see stock.TombstoneExpiry).
	TombstoneRetention time.Duration `env:"TOMBSTONE_RETENTION" envDefault:"720h"`
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.TombstoneRetention < c.LedgerRetention {
		return fmt.Errorf("config: TOMBSTONE_RETENTION (%s) must be at least LEDGER_RETENTION (%s): "+
			"an OrderPlaced the ledger still accepts must find its cancellation", c.TombstoneRetention, c.LedgerRetention)
	}
	return nil
}
