package main

import (
	"time"

	"github.com/warrenhq/warren/shared/postgres"
	"github.com/warrenhq/warren/shared/service"
)

// Config is the sms service's configuration, read from the environment once at start.
type Config struct {
	service.BaseConfig
	postgres.LedgerConfig
	// DatabaseURL is the sms service's own database.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://sms:sms@localhost:5432/sms?sslmode=disable"`
	// SMSRegions lists the regions whose confirmations are texted, comma-separated (see
	// events.Regions). Set but empty means the default, like every variable here.
	SMSRegions string `env:"SMS_REGIONS" envDefault:"europe,americas"`
	// SentTextRetention is how long a sent text is kept (see texting.SentExpiry).
	SentTextRetention time.Duration `env:"SENT_TEXT_RETENTION" envDefault:"720h"`
}
