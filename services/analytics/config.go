package main

import (
	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

// Config is the analytics service's configuration, read from the environment once at start.
type Config struct {
	service.BaseConfig
	postgres.LedgerConfig
	// DatabaseURL is the analytics service's own database.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://analytics:analytics@localhost:5432/analytics?sslmode=disable"`
}
