package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/warrenhq/warren/shared/messaging"
)

const (
	adminUser     = "warren-test"
	adminPassword = "warren-test"
)

// RabbitMQ is a broker for tests.
type RabbitMQ struct {
	// URL is the AMQP URL of the default vhost, with administrator credentials.
	URL string
	// API is the management API's base URL, with the same credentials.
	API string

	container *testcontainers.DockerContainer
}

var (
	sharedRabbit     *RabbitMQ
	sharedRabbitErr  error
	sharedRabbitOnce sync.Once
)

// SharedRabbitMQ returns the broker all tests of this binary share (see VHost for
// isolation). It skips the test under -short.
func SharedRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	Integration(t)
	sharedRabbitOnce.Do(func() {
		if u := envOr("WARREN_TEST_AMQP_URL", ""); u != "" {
			sharedRabbit = &RabbitMQ{URL: u, API: envOr("WARREN_TEST_RABBITMQ_API", "")}
			return
		}
		sharedRabbit, sharedRabbitErr = startRabbitMQ(context.Background(), false)
		if sharedRabbitErr == nil {
			c := sharedRabbit.container
			onExit(func(ctx context.Context) error { return c.Terminate(ctx) })
		}
	})
	if sharedRabbitErr != nil {
		t.Fatalf("start rabbitmq: %v", sharedRabbitErr)
	}
	return sharedRabbit
}

// OwnRabbitMQ starts a broker for t alone, on fixed host ports so that its URL stays valid
// across Stop and Start (tests that restart the broker need that). It is removed when t ends.
func OwnRabbitMQ(t testing.TB) *RabbitMQ {
	t.Helper()
	Integration(t)
	r, err := startRabbitMQ(context.Background(), true)
	if err != nil {
		t.Fatalf("start rabbitmq: %v", err)
	}
	t.Cleanup(func() { _ = r.container.Terminate(context.Background()) })
	return r
}

func startRabbitMQ(ctx context.Context, fixedPorts bool) (*RabbitMQ, error) {
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithEnv(map[string]string{
			"RABBITMQ_DEFAULT_USER": adminUser,
			"RABBITMQ_DEFAULT_PASS": adminPassword,
		}),
		testcontainers.WithExposedPorts("5672/tcp", "15672/tcp"),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute,
			wait.ForLog("Server startup complete"),
			wait.ForListeningPort("5672/tcp"),
			wait.ForListeningPort("15672/tcp")),
	}
	if fixedPorts {
		amqpPort, err1 := freePort()
		apiPort, err2 := freePort()
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("free ports: %v %v", err1, err2)
		}
		opts = append(opts, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.PortBindings = network.PortMap{
				network.MustParsePort("5672/tcp"):  {{HostPort: amqpPort}},
				network.MustParsePort("15672/tcp"): {{HostPort: apiPort}},
			}
		}))
	}
	c, err := testcontainers.Run(ctx, envOr("RABBITMQ_IMAGE", DefaultRabbitMQImage), opts...)
	if err != nil {
		if c != nil {
			_ = c.Terminate(ctx)
		}
		return nil, err
	}
	host, err := c.Host(ctx)
	if err != nil {
		return nil, err
	}
	amqpPort, err := c.MappedPort(ctx, "5672/tcp")
	if err != nil {
		return nil, err
	}
	apiPort, err := c.MappedPort(ctx, "15672/tcp")
	if err != nil {
		return nil, err
	}
	return &RabbitMQ{
		URL:       fmt.Sprintf("amqp://%s:%s@%s/", adminUser, adminPassword, net.JoinHostPort(host, amqpPort.Port())),
		API:       fmt.Sprintf("http://%s:%s@%s", adminUser, adminPassword, net.JoinHostPort(host, apiPort.Port())),
		container: c,
	}, nil
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	return port, err
}

// Stop stops the broker's container (only for OwnRabbitMQ brokers).
func (r *RabbitMQ) Stop(t testing.TB) {
	t.Helper()
	timeout := 30 * time.Second
	if err := r.container.Stop(context.Background(), &timeout); err != nil {
		t.Fatalf("stop rabbitmq: %v", err)
	}
}

// Start starts a stopped broker again and waits until it accepts connections.
func (r *RabbitMQ) Start(t testing.TB) {
	t.Helper()
	if err := r.container.Start(context.Background()); err != nil {
		t.Fatalf("start rabbitmq: %v", err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		conn, err := amqp.Dial(r.URL)
		if err == nil {
			conn.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("rabbitmq did not come back: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Exec runs cmd inside the broker's container (only for OwnRabbitMQ brokers), e.g.
// rabbitmqctl to raise a memory alarm, and returns its output. It fails t unless cmd
// exits with 0.
func (r *RabbitMQ) Exec(t testing.TB, cmd ...string) string {
	t.Helper()
	if r.container == nil {
		t.Fatal("exec in rabbitmq: not a broker this test started (use OwnRabbitMQ)")
	}
	code, out, err := r.container.Exec(context.Background(), cmd, tcexec.Multiplexed())
	if err != nil {
		t.Fatalf("exec %v in rabbitmq: %v", cmd, err)
	}
	text, err := io.ReadAll(out)
	if err != nil {
		t.Fatalf("exec %v in rabbitmq: read output: %v", cmd, err)
	}
	if code != 0 {
		t.Fatalf("exec %v in rabbitmq: exit code %d: %s", cmd, code, text)
	}
	return string(text)
}

// VHost creates a fresh vhost for t, deleted when t ends, and returns its AMQP URL. Tests
// that share a broker do not see each other's queues.
func (r *RabbitMQ) VHost(t testing.TB) string {
	t.Helper()
	name := "t-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + "-" + fmt.Sprint(time.Now().UnixNano()%1e6)
	if err := r.api(http.MethodPut, "/api/vhosts/"+url.PathEscape(name), ""); err != nil {
		t.Fatalf("create vhost: %v", err)
	}
	user := r.user()
	if err := r.api(http.MethodPut, "/api/permissions/"+url.PathEscape(name)+"/"+url.PathEscape(user),
		`{"configure":".*","write":".*","read":".*"}`); err != nil {
		t.Fatalf("set vhost permissions: %v", err)
	}
	t.Cleanup(func() { _ = r.api(http.MethodDelete, "/api/vhosts/"+url.PathEscape(name), "") })
	u, _ := url.Parse(r.URL)
	u.Path = "/" + name
	u.RawPath = "/" + url.PathEscape(name)
	return u.String()
}

func (r *RabbitMQ) user() string {
	u, err := url.Parse(r.URL)
	if err != nil || u.User == nil {
		return "guest"
	}
	return u.User.Username()
}

func (r *RabbitMQ) api(method, path, body string) error {
	if r.API == "" {
		return fmt.Errorf("no management API configured (WARREN_TEST_RABBITMQ_API)")
	}
	u, err := url.Parse(r.API)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(method, u.Scheme+"://"+u.Host+path, bytes.NewBufferString(body))
	if err != nil {
		return err
	}
	if pw, ok := u.User.Password(); ok {
		req.SetBasicAuth(u.User.Username(), pw)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	return nil
}

// LoadDefinitions imports a definitions file (as load_definitions does at boot) into the
// vhost of amqpURL, one VHost returned.
func (r *RabbitMQ) LoadDefinitions(t testing.TB, amqpURL string, definitions []byte) {
	t.Helper()
	u, err := url.Parse(amqpURL)
	if err != nil {
		t.Fatal(err)
	}
	vhost := strings.TrimPrefix(u.Path, "/")
	if err := r.api(http.MethodPost, "/api/definitions/"+url.PathEscape(vhost), string(definitions)); err != nil {
		t.Fatalf("load definitions: %v", err)
	}
}

// LoadPolicies sets policies (messaging.Topology.Policies) in the vhost of amqpURL, as the
// broker setup does with the definitions file.
func (r *RabbitMQ) LoadPolicies(t testing.TB, amqpURL string, policies []messaging.PolicyDefinition) {
	t.Helper()
	definitions, err := json.Marshal(map[string]any{"policies": policies})
	if err != nil {
		t.Fatal(err)
	}
	r.LoadDefinitions(t, amqpURL, definitions)
}
