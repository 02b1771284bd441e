package main

import (
	"errors"
	"time"

	"github.com/warrenhq/warren/shared/service"
)

// Config is the order service's configuration, read from the environment once at start.
type Config struct {
	service.BaseConfig
	// DatabaseURL is the order service's own database.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://order:order@localhost:5432/order?sslmode=disable"`
	// RPCTimeout is how long a request to inventory (GET /stock/{sku}) waits for its answer.
	RPCTimeout time.Duration `env:"RPC_TIMEOUT" envDefault:"2s"`
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.RPCTimeout <= 0 {
		return errors.New("config: RPC_TIMEOUT must be positive")
	}
	return nil
}
