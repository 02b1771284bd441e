package flowbench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tclog "github.com/testcontainers/testcontainers-go/log"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/warrenhq/warren/e2e"
)

// Credentials of the benchmark's broker and database server.
const (
	brokerUser     = "warren-admin"
	brokerPassword = "warren-admin"
	dbSuperuser    = "warren"
)

// infra is the broker and the database server the services use.
type infra struct {
	// amqpURL reaches the broker as its administrator.
	amqpURL string
	// databaseURL returns the URL of service's own database, as its owner.
	databaseURL func(service string) string
	// containers are the containers' ids: "rabbitmq" and "postgres".
	containers map[string]string
}

// startInfra starts RabbitMQ, with deploy/rabbitmq/definitions.json loaded as a deployed
// broker has it, and PostgreSQL with a database and owner per service, in parallel. They
// are removed when b ends.
//
// The services reach both at the containers' own addresses where this machine routes to
// them (Linux): through the published ports, every byte would pass Docker's userland
// proxy, which took a quarter of a core under load here and is no part of a deployment.
func startInfra(b *testing.B, root string) infra {
	b.Helper()
	ctx := b.Context()
	// testcontainers' progress lines would drown the benchmark's output; failures are
	// returned as errors all the same.
	tclog.SetDefault(tclog.NewNoopLogger())
	images := e2e.ImagesFromEnv()
	in := infra{containers: map[string]string{}}
	var brokerID string
	brokerErr := make(chan error, 1)
	go func() {
		var err error
		in.amqpURL, brokerID, err = startBroker(b, ctx, images.RabbitMQ, root)
		brokerErr <- err
	}()
	pgAddr, pgID, err := startPostgres(b, ctx, images.Postgres)
	if err != nil {
		b.Fatal(err)
	}
	if err := <-brokerErr; err != nil {
		b.Fatal(err)
	}
	in.containers["rabbitmq"], in.containers["postgres"] = brokerID, pgID
	in.databaseURL = func(service string) string {
		return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", service, service, pgAddr, service)
	}
	return in
}

func startBroker(b *testing.B, ctx context.Context, image, root string) (amqpURL, id string, err error) {
	c, err := testcontainers.Run(ctx, image,
		testcontainers.WithEnv(map[string]string{
			"RABBITMQ_DEFAULT_USER": brokerUser,
			"RABBITMQ_DEFAULT_PASS": brokerPassword,
		}),
		testcontainers.WithExposedPorts("5672/tcp", "15672/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute,
			wait.ForLog("Server startup complete"),
			wait.ForHTTP("/api/overview").WithPort("15672/tcp").WithBasicAuth(brokerUser, brokerPassword)),
	)
	if c != nil {
		b.Cleanup(func() { _ = c.Terminate(context.Background(), testcontainers.StopTimeout(3*time.Second)) })
	}
	if err != nil {
		return "", "", fmt.Errorf("start rabbitmq: %w", err)
	}
	amqpAddr, err := address(ctx, c, "5672")
	if err != nil {
		return "", "", err
	}
	apiAddr, err := address(ctx, c, "15672")
	if err != nil {
		return "", "", err
	}
	defs, err := os.ReadFile(filepath.Join(root, "deploy", "rabbitmq", "definitions.json"))
	if err != nil {
		return "", "", fmt.Errorf("load definitions: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+apiAddr+"/api/definitions", bytes.NewReader(defs))
	if err != nil {
		return "", "", err
	}
	req.SetBasicAuth(brokerUser, brokerPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", fmt.Errorf("load definitions: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return "", "", fmt.Errorf("load definitions: %s: %s", resp.Status, body)
	}
	return fmt.Sprintf("amqp://%s:%s@%s/", brokerUser, brokerPassword, amqpAddr), c.GetContainerID(), nil
}

func startPostgres(b *testing.B, ctx context.Context, image string) (addr, id string, err error) {
	var initSQL strings.Builder
	for _, name := range services {
		// "order" is a keyword, hence the quotes.
		fmt.Fprintf(&initSQL, "CREATE USER \"%s\" PASSWORD '%s';\nCREATE DATABASE \"%s\" OWNER \"%s\";\n", name, name, name, name)
	}
	c, err := postgres.Run(ctx, image,
		postgres.WithUsername(dbSuperuser), postgres.WithPassword(dbSuperuser), postgres.WithDatabase("postgres"),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader:            strings.NewReader(initSQL.String()),
			ContainerFilePath: "/docker-entrypoint-initdb.d/10-warren.sql",
			FileMode:          0o644,
		}),
		postgres.BasicWaitStrategies(),
	)
	if c != nil {
		b.Cleanup(func() { _ = c.Terminate(context.Background(), testcontainers.StopTimeout(3*time.Second)) })
	}
	if err != nil {
		return "", "", fmt.Errorf("start postgres: %w", err)
	}
	addr, err = address(ctx, c, "5432")
	return addr, c.GetContainerID(), err
}

// address is where this process reaches port of c: the container's own address when it
// answers there, else the published port (Docker Desktop does not route to containers).
func address(ctx context.Context, c testcontainers.Container, port string) (string, error) {
	if ip, err := c.ContainerIP(ctx); err == nil && ip != "" {
		addr := net.JoinHostPort(ip, port)
		if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			conn.Close()
			return addr, nil
		}
	}
	ep, err := c.PortEndpoint(ctx, port+"/tcp", "")
	if err != nil {
		return "", fmt.Errorf("address of port %s: %w", port, err)
	}
	return ep, nil
}
