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
	// apiURL is the broker's management API, with the administrator's credentials.
	apiURL string
	// databaseURL returns the URL of service's own database, as its owner.
	databaseURL func(service string) string
	// adminURL is the database server's "postgres" database, as the superuser: the
	// benchmark reads the server's settings and statistics there.
	adminURL string
	// statements tells whether the server tracks statements (pg_stat_statements).
	statements bool
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
		in.amqpURL, in.apiURL, brokerID, err = startBroker(b, ctx, images.RabbitMQ, root)
		brokerErr <- err
	}()
	in.statements = true
	pgAddr, pgID, err := startPostgres(b, ctx, images.Postgres, true)
	if err != nil {
		// An image without the pg_stat_statements library cannot preload it: measure
		// without the statement statistics rather than not at all.
		b.Logf("postgres with pg_stat_statements: %v; starting it without", err)
		in.statements = false
		if pgAddr, pgID, err = startPostgres(b, ctx, images.Postgres, false); err != nil {
			b.Fatal(err)
		}
	}
	if err := <-brokerErr; err != nil {
		b.Fatal(err)
	}
	in.containers["rabbitmq"], in.containers["postgres"] = brokerID, pgID
	in.databaseURL = func(service string) string {
		return fmt.Sprintf("postgres://%s:%s@%s/%s?sslmode=disable", service, service, pgAddr, service)
	}
	in.adminURL = fmt.Sprintf("postgres://%s:%s@%s/postgres?sslmode=disable", dbSuperuser, dbSuperuser, pgAddr)
	return in
}

func startBroker(b *testing.B, ctx context.Context, image, root string) (amqpURL, apiURL, id string, err error) {
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
		return "", "", "", fmt.Errorf("start rabbitmq: %w", err)
	}
	amqpAddr, err := address(ctx, c, "5672")
	if err != nil {
		return "", "", "", err
	}
	apiAddr, err := address(ctx, c, "15672")
	if err != nil {
		return "", "", "", err
	}
	defs, err := os.ReadFile(filepath.Join(root, "deploy", "rabbitmq", "definitions.json"))
	if err != nil {
		return "", "", "", fmt.Errorf("load definitions: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+apiAddr+"/api/definitions", bytes.NewReader(defs))
	if err != nil {
		return "", "", "", err
	}
	req.SetBasicAuth(brokerUser, brokerPassword)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", "", fmt.Errorf("load definitions: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return "", "", "", fmt.Errorf("load definitions: %s: %s", resp.Status, body)
	}
	return fmt.Sprintf("amqp://%s:%s@%s/", brokerUser, brokerPassword, amqpAddr),
		fmt.Sprintf("http://%s:%s@%s", brokerUser, brokerPassword, apiAddr), c.GetContainerID(), nil
}

// startPostgres starts the database server with the durability settings compose's has:
// compose runs the image's own command, `postgres`, with PostgreSQL's defaults (fsync,
// synchronous_commit and full_page_writes on), so the benchmark does too, rather than the
// postgres module's default command, `postgres -c fsync=off`, under which no commit waits
// for the disk. With statements, it also preloads pg_stat_statements (in the image, as in
// Debian's postgresql-17, but not enabled by compose), whose bookkeeping is a small cost
// per statement, to count each service's statements.
func startPostgres(b *testing.B, ctx context.Context, image string, statements bool) (addr, id string, err error) {
	var initSQL strings.Builder
	for _, name := range services {
		// "order" is a keyword, hence the quotes.
		fmt.Fprintf(&initSQL, "CREATE USER \"%s\" PASSWORD '%s';\nCREATE DATABASE \"%s\" OWNER \"%s\";\n", name, name, name, name)
	}
	cmd := []string{"postgres"}
	if statements {
		cmd = append(cmd, "-c", "shared_preload_libraries=pg_stat_statements")
		initSQL.WriteString("CREATE EXTENSION pg_stat_statements;\n")
	}
	c, err := postgres.Run(ctx, image,
		testcontainers.WithCmd(cmd...),
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
