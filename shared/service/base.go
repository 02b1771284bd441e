package service

import (
	"fmt"
	"time"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/messaging"
)

// BaseConfig holds the settings every service has. Services embed it in their Config.
//
// LOG_LEVEL (debug, info, warn, error; default info) is read by Main before the config,
// and the OTEL_* variables by the OpenTelemetry SDK.
type BaseConfig struct {
	// HTTPAddr is where the service's HTTP API listens; every API route needs a bearer
	// token (see auth.Config).
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	// OpsAddr is where /healthz, /readyz and /metrics listen, with no authentication: keep
	// it reachable by the orchestrator and Prometheus only (compose publishes no port of it).
	OpsAddr string `env:"OPS_ADDR" envDefault:":9090"`
	// Auth says whose bearer tokens the API accepts: OIDC_ISSUER, OIDC_JWKS_URL,
	// OIDC_AUDIENCE.
	Auth auth.Config
	// AMQPURL is the broker, with this service's own user. The default suits a broker on
	// a developer's laptop only; every deployment sets it. amqps:// connects with TLS.
	AMQPURL string `env:"AMQP_URL" envDefault:"amqp://guest:guest@localhost:5672/"`
	// AMQPAddresses, comma-separated host:port, are every node of a RabbitMQ cluster whose
	// nodes share no DNS name: each connection and reconnect tries them in turn instead of
	// AMQP_URL's host, so losing a node (stopped, or paused on the minority side of a
	// partition) only moves the service to another. AMQP_URL keeps the credentials.
	AMQPAddresses []string `env:"AMQP_ADDRESSES" envSeparator:","`
	// AMQPCAFile, AMQPCertFile and AMQPKeyFile configure TLS for amqps://: the CA that
	// signed the broker's certificate (when the system trust store lacks it), and this
	// service's client certificate and key (when the broker requires one).
	AMQPCAFile   string `env:"AMQP_CA_FILE"`
	AMQPCertFile string `env:"AMQP_CERT_FILE"`
	AMQPKeyFile  string `env:"AMQP_KEY_FILE"`
	// AMQPHeartbeat is the AMQP heartbeat interval: a broker node that vanishes without
	// closing the connection is noticed after three silent intervals, and the service
	// reconnects to another node.
	AMQPHeartbeat time.Duration `env:"AMQP_HEARTBEAT" envDefault:"5s"`
	// AMQPPrefetch is how many deliveries each consumer may hold unacked (at least
	// ConsumerConcurrency).
	AMQPPrefetch int `env:"AMQP_PREFETCH" envDefault:"64"`
	// ConsumerConcurrency is how many messages of each queue are handled at once. Messages
	// of one order are always handled one after another; 1 handles a queue strictly in
	// order. Each handler may hold a database connection: keep the database pool at least
	// this large (postgres.Connect's default is).
	ConsumerConcurrency int `env:"CONSUMER_CONCURRENCY" envDefault:"8"`
	// HandlerTimeout bounds each attempt at handling one message: past it, the attempt's
	// context is cancelled, so a handler stuck on a dead connection lets go of the queue.
	// A dependency that answers slower than this counts as down (the consumer pauses).
	HandlerTimeout time.Duration `env:"HANDLER_TIMEOUT" envDefault:"30s"`
	// RequestTimeout bounds how long one HTTP request may take: past it, its context is
	// cancelled and it is answered 503 (see Deadline). Below the server's 30 s write timeout.
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"10s"`
	// ShutdownTimeout bounds how long in-flight requests and messages may take to finish
	// after SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
}

// Broker returns the messaging configuration these settings describe.
func (c BaseConfig) Broker() (messaging.Config, error) {
	tlsConfig, err := TLSFiles{CAFile: c.AMQPCAFile, CertFile: c.AMQPCertFile, KeyFile: c.AMQPKeyFile}.ClientConfig()
	if err != nil {
		return messaging.Config{}, fmt.Errorf("broker config: %w", err)
	}
	return messaging.Config{URL: c.AMQPURL, Addresses: c.AMQPAddresses, TLS: tlsConfig, Heartbeat: c.AMQPHeartbeat, Prefetch: c.AMQPPrefetch, Concurrency: c.ConsumerConcurrency}, nil
}
