package main

import "github.com/warrenhq/warren/shared/service"

// Config is the inventory service's configuration, read from the environment once at start.
type Config struct {
	service.BaseConfig
	// DatabaseURL is the inventory's own database.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://inventory:inventory@localhost:5432/inventory?sslmode=disable"`
}
