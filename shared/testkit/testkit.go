// Package testkit gives integration tests a real RabbitMQ, a real PostgreSQL and a real
// OpenID Connect provider (Ory Hydra, SharedHydra): started
// once per test binary with testcontainers-go, or taken from the environment when a CI
// provides them, and isolated per test by a fresh vhost and a fresh database.
//
//	WARREN_TEST_AMQP_URL           amqp://user:pass@host:5672/ of an existing broker
//	WARREN_TEST_RABBITMQ_API       http://user:pass@host:15672 of its management API
//	WARREN_TEST_DATABASE_URL       postgres://user:pass@host:5432/postgres of an existing server
//	WARREN_TEST_HYDRA_BIN          a hydra binary to run as a process for SharedHydra
//	RABBITMQ_IMAGE, POSTGRES_IMAGE, HYDRA_IMAGE
//	                               images to start otherwise (defaults: the official ones)
//
// Packages that use it call Run from TestMain so the containers are removed at the end.
//
// testcontainers-go reaches a container's published ports through the Docker host it
// detects. Where the tests themselves run inside a container that also runs the Docker
// daemon (as on Warren's CI machines), it guesses the default gateway, which is wrong: set
// TESTCONTAINERS_HOST_OVERRIDE=localhost (the Makefile does). Warren also runs with
// TESTCONTAINERS_RYUK_DISABLED=true, since the reaper is an image of its own that cannot
// be pulled everywhere; Run removes the containers instead.
package testkit

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
)

// Default images; make images provides them locally where no registry answers.
const (
	DefaultRabbitMQImage = "rabbitmq:4.0-management"
	DefaultPostgresImage = "postgres:17"
)

var (
	mu       sync.Mutex
	cleanups []func(context.Context) error
)

func onExit(f func(context.Context) error) {
	mu.Lock()
	defer mu.Unlock()
	cleanups = append(cleanups, f)
}

// Run runs the tests and then stops every container the package started. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }
func Run(m *testing.M) int {
	code := m.Run()
	mu.Lock()
	defer mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		if err := cleanups[i](context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "testkit cleanup:", err)
		}
	}
	return code
}

// Integration skips t under -short: integration tests need Docker or provided services.
func Integration(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test: needs RabbitMQ and PostgreSQL (run without -short)")
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
