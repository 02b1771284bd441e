package main

import (
	"fmt"
	"time"

	"github.com/warrenhq/warren/shared/postgres"

	"github.com/warrenhq/warren/shared/service"
)

// Config is the email service's configuration, read from the environment once at start.
type Config struct {
	service.BaseConfig
	postgres.LedgerConfig
	// DatabaseURL is the email service's own database.
	DatabaseURL string `env:"DATABASE_URL" envDefault:"postgres://email:email@localhost:5432/email?sslmode=disable"`
	// SMTPAddr is the mail server (host:port); the default suits a local Mailpit.
	SMTPAddr string `env:"SMTP_ADDR" envDefault:"localhost:1025"`
	// SMTPFrom is the sender of every mail.
	SMTPFrom string `env:"SMTP_FROM" envDefault:"Warren Shop <orders@warren.example>"`
	// SMTPUsername, when set, makes the service authenticate with SMTPPassword.
	SMTPUsername string `env:"SMTP_USERNAME"`
	SMTPPassword string `env:"SMTP_PASSWORD" secret:"true"`
	// SMTPTLS is the STARTTLS policy: "opportunistic" upgrades the session when the server
	// offers STARTTLS and sends in clear otherwise (a local Mailpit offers none);
	// "required" sends nothing unless the session is upgraded and the server's
	// certificate verifies for SMTP_ADDR's host (against SMTP_CA_FILE when set).
	SMTPTLS string `env:"SMTP_TLS" envDefault:"opportunistic"`
	// SMTPCAFile is the PEM file of the CA that signed the mail server's certificate, when
	// the system's trust store lacks it (`warrenctl secrets init --tls` writes one).
	SMTPCAFile string `env:"SMTP_CA_FILE"`
	// SMTPTimeout bounds connecting to the server and each SMTP command.
	SMTPTimeout time.Duration `env:"SMTP_TIMEOUT" envDefault:"15s"`
	// SMTPSessions is the most SMTP sessions open at once, each kept open between mails (a
	// mail then skips the connection, EHLO, STARTTLS and AUTH); a mail waits for a free one.
	// The default is the default CONSUMER_CONCURRENCY, so that no handler waits.
	SMTPSessions int `env:"SMTP_SESSIONS" envDefault:"8"`
	// SMTPSessionIdle is how long a session may wait for its next mail before it is closed.
	SMTPSessionIdle time.Duration `env:"SMTP_SESSION_IDLE" envDefault:"30s"`
	// SentEmailRetention is how long the record of a mail is kept (at least
	// LEDGER_RETENTION; see mailing.SentExpiry).
	SentEmailRetention time.Duration `env:"SENT_EMAIL_RETENTION" envDefault:"720h"`
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.SentEmailRetention < c.LedgerRetention {
		return fmt.Errorf("config: SENT_EMAIL_RETENTION (%s) must be at least LEDGER_RETENTION (%s): "+
			"a redelivery the ledger still accepts must find its mail's record", c.SentEmailRetention, c.LedgerRetention)
	}
	return nil
}
