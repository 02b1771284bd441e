package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynetwork "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/modules/postgres"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// labels marks a container as this run's (see LabelRun).
func (s *System) labels() testcontainers.CustomizeRequestOption {
	return testcontainers.WithLabels(map[string]string{LabelRun: s.runID})
}

// startBroker starts the broker: one node, or with WithRabbitMQCluster the nodes of a
// cluster (see cluster.go). AMQPURL and ManagementURL reach the first node.
func (s *System) startBroker(ctx context.Context, image string) error {
	if s.options.brokerNodes > 1 {
		return s.startCluster(ctx, image, s.options.brokerNodes)
	}
	s.BrokerNodes = []string{"rabbitmq"}
	var err error
	s.AMQPURL, s.ManagementURL, err = s.startRabbitMQ(ctx, image, []string{"rabbitmq"})
	return err
}

// startRabbitMQ starts one broker node with an administrator and returns its AMQP URL and
// management API URL, both through mapped ports. The node is named after its first network
// alias; extra customizes the container further (a cluster node's settings).
func (s *System) startRabbitMQ(ctx context.Context, image string, aliases []string, extra ...testcontainers.ContainerCustomizer) (amqpURL, apiURL string, err error) {
	name := aliases[0]
	opts := append([]testcontainers.ContainerCustomizer{
		network.WithNetwork(aliases, s.network),
		s.labels(),
		testcontainers.WithEnv(map[string]string{
			"RABBITMQ_DEFAULT_USER": brokerUser,
			"RABBITMQ_DEFAULT_PASS": brokerPassword,
		}),
		s.publish("5672/tcp", "15672/tcp"),
		s.tlsRabbitMQ(),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute,
			wait.ForLog("Server startup complete"),
			wait.ForHTTP("/api/overview").WithPort("15672/tcp").WithBasicAuth(brokerUser, brokerPassword)),
	}, extra...)
	c, err := testcontainers.Run(ctx, image, opts...)
	if c != nil {
		s.add(name, 0, c)
	}
	if err != nil {
		return "", "", fmt.Errorf("start %s: %w", name, err)
	}
	amqpPort, scheme := s.options.tls.amqp()
	amqpHostPort, err := hostPort(ctx, c, amqpPort)
	if err != nil {
		return "", "", err
	}
	apiHostPort, err := hostPort(ctx, c, "15672/tcp")
	if err != nil {
		return "", "", err
	}
	return fmt.Sprintf("%s://%s:%s@%s/", scheme, brokerUser, brokerPassword, amqpHostPort),
		fmt.Sprintf("http://%s:%s@%s", brokerUser, brokerPassword, apiHostPort), nil
}

// loadDefinitions imports deploy/rabbitmq/definitions.json, as a deployed broker loads it
// at boot, before any service declares its part of the topology.
func loadDefinitions(ctx context.Context, apiURL string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	defs, err := os.ReadFile(filepath.Join(root, "deploy", "rabbitmq", "definitions.json"))
	if err != nil {
		return fmt.Errorf("load definitions: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/api/definitions", bytes.NewReader(defs))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("load definitions: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return fmt.Errorf("load definitions: %s: %s", resp.Status, body)
	}
	return nil
}

// startPostgres starts the database server with a database per service.
func (s *System) startPostgres(ctx context.Context, image string) error {
	c, err := postgres.Run(ctx, image,
		network.WithNetwork([]string{"postgres"}, s.network),
		s.labels(),
		postgres.WithUsername(dbSuperuser), postgres.WithPassword(dbSuperuser), postgres.WithDatabase("postgres"),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader:            strings.NewReader(databasesSQL(append(slices.Clone(Services), "hydra"))),
			ContainerFilePath: "/docker-entrypoint-initdb.d/10-warren.sql",
			FileMode:          0o644,
		}),
		postgres.BasicWaitStrategies(),
		s.tlsPostgres(),
	)
	if c != nil {
		s.add("postgres", 0, c)
	}
	if err != nil {
		return fmt.Errorf("start postgres: %w", err)
	}
	return nil
}

// databasesSQL creates one user and one database per service, each user owning its
// database and nothing else ("order" is a keyword, hence the quotes).
func databasesSQL(services []string) string {
	var b strings.Builder
	for _, name := range services {
		fmt.Fprintf(&b, "CREATE USER \"%s\" PASSWORD '%s';\n", name, name)
		fmt.Fprintf(&b, "CREATE DATABASE \"%s\" OWNER \"%s\";\n", name, name)
	}
	return b.String()
}

// startMailpit starts the mail catcher: SMTP on mailpit:1025, its API on a mapped port.
func (s *System) startMailpit(ctx context.Context, image string) (*Mailpit, error) {
	c, err := testcontainers.Run(ctx, image,
		network.WithNetwork([]string{"mailpit"}, s.network),
		s.labels(),
		testcontainers.WithEnv(map[string]string{
			// Mailpit keeps the newest 500 mails by default and deletes older ones: a
			// test that counts mails must not lose any to the catcher itself.
			"MP_MAX_MESSAGES": "0",
			// A mailbox, like Gmail's, keeps one mail per Message-ID (see Mailpit.Resent).
			"MP_IGNORE_DUPLICATE_IDS": "true",
			// In the container's own file system rather than a temporary file deleted at
			// exit, so that a chaos test can stop Mailpit and start it again with its mails.
			"MP_DATABASE": "/tmp/warren-mailpit.db",
		}),
		s.publish("8025/tcp"),
		s.tlsMailpit(),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute, wait.ForHTTP("/readyz").WithPort("8025/tcp")),
	)
	if c != nil {
		s.add("mailpit", 0, c)
	}
	if err != nil {
		return nil, fmt.Errorf("start mailpit: %w", err)
	}
	base, err := endpoint(ctx, c, "8025/tcp")
	return &Mailpit{client{base: base}}, err
}

// startJaeger starts Jaeger: OTLP/HTTP on jaeger:4318, its query API on a mapped port.
func (s *System) startJaeger(ctx context.Context, image string) (*Jaeger, error) {
	anyStatus := func(int) bool { return true }
	c, err := testcontainers.Run(ctx, image,
		network.WithNetwork([]string{"jaeger"}, s.network),
		s.labels(),
		// Jaeger v2 binds localhost unless told otherwise (the official image says so too).
		testcontainers.WithEnv(map[string]string{"JAEGER_LISTEN_HOST": "0.0.0.0"}),
		testcontainers.WithExposedPorts("16686/tcp", "4318/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForHTTP("/api/services").WithPort("16686/tcp"),
			// The OTLP receiver answers (any status) once it listens.
			wait.ForHTTP("/v1/traces").WithPort("4318/tcp").WithStatusCodeMatcher(anyStatus)),
	)
	if c != nil {
		s.add("jaeger", 0, c)
	}
	if err != nil {
		return nil, fmt.Errorf("start jaeger: %w", err)
	}
	base, err := endpoint(ctx, c, "16686/tcp")
	return &Jaeger{client{base: base}}, err
}

// startService starts one of Warren's images as alias on the network and returns its API's
// and its operational endpoints' base URLs (HTTP_ADDR :8080 and OPS_ADDR :9090, the
// defaults) once /readyz answers 200 (broker connected, database reachable). extra adds to
// or overrides the environment every service gets.
func (s *System) startService(ctx context.Context, images Images, name, alias string, extra map[string]string) (client, error) {
	env := map[string]string{
		// Compose gives each service its own least-privilege user instead.
		"AMQP_URL":     fmt.Sprintf("amqp://%s:%s@rabbitmq:5672/", brokerUser, brokerPassword),
		"DATABASE_URL": fmt.Sprintf("postgres://%s:%s@postgres:5432/%s?sslmode=disable", name, name, name),
		// Export spans to Jaeger every 500 ms (the SDK's default is 5 s) so that a trace is
		// complete soon after its last hop.
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://jaeger:4318",
		"OTEL_BSP_SCHEDULE_DELAY":     "500",
		"SHUTDOWN_TIMEOUT":            "5s",
		// Tokens carry the host-facing issuer; the keys are fetched inside the network.
		"OIDC_ISSUER":   s.Identity.Issuer,
		"OIDC_JWKS_URL": "http://hydra:4444/.well-known/jwks.json",
	}
	maps.Copy(env, s.tlsServiceEnv(name))
	for k, v := range extra {
		env[k] = v
	}
	// Every instance also answers to its service's name, as a compose service's replicas
	// do: Prometheus finds the email replicas by that name (deploy/prometheus/prometheus.yml).
	aliases := []string{alias}
	if alias != name {
		aliases = append(aliases, name)
	}
	c, err := testcontainers.Run(ctx, images.Service(name),
		network.WithNetwork(aliases, s.network),
		s.labels(),
		// The host name is the alias, so that what a replica writes about itself (the
		// outbox relay's lease holder, logs) names the container.
		testcontainers.CustomizeRequestOption(func(req *testcontainers.GenericContainerRequest) error {
			req.Hostname = alias
			return nil
		}),
		hardened(),
		s.tlsService(),
		testcontainers.WithEnv(env),
		s.publish("8080/tcp", "9090/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(90*time.Second,
			wait.ForHTTP("/readyz").WithPort("9090/tcp").WithPollInterval(200*time.Millisecond)),
	)
	if c != nil {
		s.add(alias, 1, c)
	}
	if err != nil {
		if c != nil {
			err = fmt.Errorf("%w\n%s", err, tail(context.WithoutCancel(ctx), c, 30))
		}
		return client{}, fmt.Errorf("start %s: %w", alias, err)
	}
	base, err := endpoint(ctx, c, "8080/tcp")
	if err != nil {
		return client{}, err
	}
	ops, err := endpoint(ctx, c, "9090/tcp")
	return client{base: base, ops: ops}, err
}

// hardened runs a service as docker-compose.yml does (x-hardening), so that the tests run
// what users run: a read-only root file system, a numeric non-root user, no capability, no
// new privileges. Compose's memory and process limits are left out: the chaos and load
// suites push more orders through one container than a user's stack sees, and a limit
// reached there would be a test's fault, not the service's.
func hardened() testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		req.User = "65532:65532"
		return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.ReadonlyRootfs = true
			hc.CapDrop = []string{"ALL"}
			hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges:true")
		})(req)
	}
}

// publish exposes ports and publishes them on the host: on ports Docker picks at every
// start, or with WithFixedHostPorts on free loopback ports picked now, which the container
// keeps when it is stopped and started again.
func (s *System) publish(ports ...string) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		req.ExposedPorts = append(req.ExposedPorts, ports...)
		if !s.options.fixedPorts {
			return nil
		}
		bindings := mobynetwork.PortMap{}
		for _, p := range ports {
			port, err := mobynetwork.ParsePort(p)
			if err != nil {
				return err
			}
			hostPort, err := freePort()
			if err != nil {
				return err
			}
			bindings[port] = []mobynetwork.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}
		}
		return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			if hc.PortBindings == nil {
				hc.PortBindings = mobynetwork.PortMap{}
			}
			maps.Copy(hc.PortBindings, bindings)
		})(req)
	}
}

// handedOut holds every port freePort returned in this process. The kernel may offer a
// port again as soon as its probe is closed, and a port handed out twice (to two
// containers, or to two ports of one) fails the second binding with "port is already
// allocated".
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

// freePort returns a loopback TCP port that is free now and was not returned before.
// Another process could still take it before Docker binds it; the container's start then
// fails and says so.
func freePort() (string, error) {
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return "", fmt.Errorf("free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l.Close()
		if !handedOut.ports[port] {
			handedOut.ports[port] = true
			return strconv.Itoa(port), nil
		}
	}
	return "", errors.New("free port: the kernel keeps offering ports already handed out")
}

func logs(ctx context.Context, c testcontainers.Container) (string, error) {
	r, err := c.Logs(ctx)
	if err != nil {
		return "", err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	return string(b), err
}

func tail(ctx context.Context, c testcontainers.Container, n int) string {
	all, err := logs(ctx, c)
	if err != nil {
		return "(logs: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(all, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func endpoint(ctx context.Context, c testcontainers.Container, port string) (string, error) {
	hp, err := hostPort(ctx, c, port)
	if err != nil {
		return "", err
	}
	return "http://" + hp, nil
}

func hostPort(ctx context.Context, c testcontainers.Container, port string) (string, error) {
	ep, err := c.PortEndpoint(ctx, port, "")
	if err != nil {
		return "", fmt.Errorf("mapped port %s: %w", port, err)
	}
	return ep, nil
}
