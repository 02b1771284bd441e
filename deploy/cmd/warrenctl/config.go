package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"

	"github.com/warrenhq/warren/deploy/internal/brokeraccess"
)

// Config is warrenctl's configuration, read from the environment once; flags override the
// settings that are not secret. Secrets come from the environment or from a file named by
// the same variable with _FILE appended (Docker and Kubernetes secrets), never from flags:
// a command line is visible to every user of the machine.
type Config struct {
	// LogLevel is debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info"`
	Broker   BrokerConfig
	// DLQ holds the dlq commands' options: flags only, nothing from the environment.
	DLQ DLQOptions
	// Secrets holds secrets init's options: flags only.
	Secrets SecretsOptions
	OIDC    OIDCConfig
	// Token holds token's options: flags only.
	Token TokenOptions
}

// OIDCConfig is how warrenctl reaches the OpenID Connect provider: Hydra's admin API for
// oidc setup, its public side for token.
type OIDCConfig struct {
	// Issuer is the provider's issuer URL, as the tokens carry it.
	Issuer string `env:"OIDC_ISSUER" envDefault:"http://localhost:4444/"`
	// HydraAdminURL is Hydra's admin API (never published by compose).
	HydraAdminURL string `env:"HYDRA_ADMIN_URL" envDefault:"http://localhost:4445"`
	// Wait is how long oidc setup waits for the admin API to be ready.
	Wait time.Duration `env:"HYDRA_WAIT" envDefault:"60s"`
	// UsersFile is the demo users file token reads a password from (the login app's
	// secrets volume); empty: TOKEN_PASSWORD[_FILE] is required.
	UsersFile string `env:"USERS_FILE"`
}

// BrokerConfig is how warrenctl reaches RabbitMQ: the management API for the broker
// commands, AMQP for the dlq commands.
type BrokerConfig struct {
	// APIURL is the management API's base URL.
	APIURL string `env:"RABBITMQ_API_URL" envDefault:"http://localhost:15672"`
	// AMQPURL is the broker's AMQP URL (amqp://host:5672, amqps:// for TLS); credentials
	// and vhost in it are ignored. Empty: port 5672 on APIURL's host, which is right
	// wherever the API is (compose's broker-setup, a laptop).
	AMQPURL string `env:"RABBITMQ_AMQP_URL"`
	// AdminUser is an administrator of the broker (never guest: apply-users deletes it).
	AdminUser string `env:"RABBITMQ_ADMIN_USER" envDefault:"admin"`
	// AdminPassword, or the file AdminPasswordFile names, is AdminUser's password.
	AdminPassword     string `env:"RABBITMQ_ADMIN_PASSWORD" secret:"true"`
	AdminPasswordFile string `env:"RABBITMQ_ADMIN_PASSWORD_FILE"`
	// VHost is the vhost Warren runs in.
	VHost string `env:"RABBITMQ_VHOST" envDefault:"/"`
	// Wait is how long to wait for the management API to answer: started together with
	// the broker, warrenctl must outwait its boot.
	Wait time.Duration `env:"RABBITMQ_WAIT" envDefault:"60s"`
	// DefinitionsFile is the topology to import (generated from shared/events).
	DefinitionsFile string `env:"DEFINITIONS_FILE" envDefault:"deploy/rabbitmq/definitions.json"`
}

// bindFlags lets flags override the environment's values for the non-secret settings.
func (c *BrokerConfig) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.APIURL, "api", c.APIURL, "management API base URL (RABBITMQ_API_URL)")
	fs.StringVar(&c.AdminUser, "admin-user", c.AdminUser, "administrator user (RABBITMQ_ADMIN_USER); password from RABBITMQ_ADMIN_PASSWORD[_FILE]")
	fs.StringVar(&c.VHost, "vhost", c.VHost, "vhost (RABBITMQ_VHOST)")
	fs.DurationVar(&c.Wait, "wait", c.Wait, "how long to wait for the management API (RABBITMQ_WAIT)")
	fs.StringVar(&c.DefinitionsFile, "definitions", c.DefinitionsFile, "definitions file to import (DEFINITIONS_FILE)")
}

// bindAMQPFlags lets flags override the settings the dlq commands use.
func (c *BrokerConfig) bindAMQPFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.AMQPURL, "amqp", c.AMQPURL, "AMQP URL, amqp://host:5672 (RABBITMQ_AMQP_URL; default: port 5672 on the API's host)")
	fs.StringVar(&c.APIURL, "api", c.APIURL, "management API base URL (RABBITMQ_API_URL), whose host is the AMQP default")
	fs.StringVar(&c.AdminUser, "admin-user", c.AdminUser, "administrator user (RABBITMQ_ADMIN_USER); password from RABBITMQ_ADMIN_PASSWORD[_FILE]")
	fs.StringVar(&c.VHost, "vhost", c.VHost, "vhost (RABBITMQ_VHOST)")
}

// amqpURL is AMQPURL, or port 5672 on APIURL's host when it is empty.
func (c BrokerConfig) amqpURL() (string, error) {
	if c.AMQPURL != "" {
		return c.AMQPURL, nil
	}
	u, err := url.Parse(c.APIURL)
	if err != nil || u.Hostname() == "" {
		return "", fmt.Errorf("config: RABBITMQ_AMQP_URL is unset and RABBITMQ_API_URL %q has no host to default to", c.APIURL)
	}
	return "amqp://" + net.JoinHostPort(u.Hostname(), "5672"), nil
}

// DLQOptions are the dlq commands' flags.
type DLQOptions struct {
	// Limit is how many messages inspect shows and replay sends back at most (0: all, for replay).
	Limit int
	// MessageID restricts replay to messages with this message id.
	MessageID string
	// To is replay's target: "queue" (default) or "original".
	To string
	// JSON prints JSON instead of text.
	JSON bool
	// Yes confirms a purge.
	Yes bool
	// BodyBytes is how much of each body inspect prints.
	BodyBytes int
}

// loadConfig parses environ (NAME → value) into a Config and reads the admin password.
func loadConfig(environ map[string]string) (Config, error) {
	var cfg Config
	if err := env.ParseWithOptions(&cfg, env.Options{Environment: environ}); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	pw, err := secret(environ, "RABBITMQ_ADMIN_PASSWORD")
	if err != nil {
		return cfg, err
	}
	cfg.Broker.AdminPassword = pw
	if cfg.Token.Password, err = secret(environ, "TOKEN_PASSWORD"); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// servicePasswords reads every service's broker password: <NAME>_AMQP_PASSWORD or the
// file <NAME>_AMQP_PASSWORD_FILE names, for each service of brokeraccess.Services
// (ORDER_AMQP_PASSWORD, INVENTORY_AMQP_PASSWORD, ...). All are required.
func servicePasswords(environ map[string]string) (map[string]string, error) {
	out := map[string]string{}
	var errs []error
	for _, name := range brokeraccess.Names() {
		v := PasswordVar(name)
		pw, err := secret(environ, v)
		if err == nil && pw == "" {
			err = fmt.Errorf("config: %s or %s_FILE is required", v, v)
		}
		errs = append(errs, err)
		out[name] = pw
	}
	return out, errors.Join(errs...)
}

// PasswordVar is the variable that holds service's broker password.
func PasswordVar(service string) string {
	return strings.ToUpper(service) + "_AMQP_PASSWORD"
}

// secret returns the value of name, or the contents of the file name_FILE points to
// without its trailing newline. Setting both is an error: one of them would be ignored.
func secret(environ map[string]string, name string) (string, error) {
	value, file := environ[name], environ[name+"_FILE"]
	switch {
	case file == "":
		return value, nil
	case value != "":
		return "", fmt.Errorf("config: both %s and %s_FILE are set", name, name)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("config: %s_FILE: %w", name, err)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

// environ is the process environment as a map: the only place warrenctl reads it.
func environ() map[string]string {
	out := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		out[k] = v
	}
	return out
}
