package service

import "time"

// BaseConfig holds the settings every service has. Services embed it in their Config.
//
// LOG_LEVEL (debug, info, warn, error; default info) is read by Main before the config,
// and the OTEL_* variables by the OpenTelemetry SDK.
type BaseConfig struct {
	// HTTPAddr is where the service's HTTP API and operational endpoints listen.
	HTTPAddr string `env:"HTTP_ADDR" envDefault:":8080"`
	// AMQPURL is the broker, with this service's own user. The default suits a broker on
	// a developer's laptop only; every deployment sets it.
	AMQPURL string `env:"AMQP_URL" envDefault:"amqp://guest:guest@localhost:5672/"`
	// AMQPPrefetch is how many deliveries each consumer may hold unacked.
	AMQPPrefetch int `env:"AMQP_PREFETCH" envDefault:"16"`
	// ShutdownTimeout bounds how long in-flight requests and messages may take to finish
	// after SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"20s"`
}
