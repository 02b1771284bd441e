package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"golang.org/x/sync/errgroup"

	"github.com/warrenhq/warren/shared/testkit"
)

// Credentials of the system's infrastructure. The suite gives every service the broker's
// administrator; docker-compose.yml instead gives each service its own least-privilege
// RabbitMQ user (created by its broker-setup job), as a deployment should.
const (
	brokerUser     = "warren-admin"
	brokerPassword = "warren-admin"
	dbSuperuser    = "warren"
)

// Services are Warren's services, each with a database of its own on the shared server.
var Services = []string{"inventory", "order", "email", "sms", "analytics"}

// EmailReplicas is how many email containers share the email queue.
const EmailReplicas = 2

// LabelRun marks every container and network the suite starts (value: the run's id), so that
// the leftovers of a run that was killed can be found and removed (see ReapLeftovers).
const LabelRun = "org.warren.e2e.run"

// Images names the images the system runs. ImagesFromEnv reads the overrides that the
// Makefile and deploy/images/build.sh use.
type Images struct {
	RabbitMQ, Postgres, Jaeger, Mailpit, Hydra string
	// ServiceTag is the tag of the warren/<service> images that make service-images builds,
	// and of warren/warren-login and warren/warrenctl.
	ServiceTag string
}

// ImagesFromEnv returns the official image names, each overridden by its environment
// variable when set: RABBITMQ_IMAGE, POSTGRES_IMAGE, JAEGER_IMAGE, MAILPIT_IMAGE,
// HYDRA_IMAGE, WARREN_TAG.
func ImagesFromEnv() Images {
	return Images{
		RabbitMQ:   envOr("RABBITMQ_IMAGE", testkit.DefaultRabbitMQImage),
		Postgres:   envOr("POSTGRES_IMAGE", testkit.DefaultPostgresImage),
		Jaeger:     envOr("JAEGER_IMAGE", "jaegertracing/jaeger:2.13.0"),
		Mailpit:    envOr("MAILPIT_IMAGE", "axllent/mailpit:v1.33.1"),
		Hydra:      envOr("HYDRA_IMAGE", testkit.DefaultHydraImage),
		ServiceTag: envOr("WARREN_TAG", "dev"),
	}
}

// Service is the image of one of Warren's services.
func (i Images) Service(name string) string { return "warren/" + name + ":" + i.ServiceTag }

func (i Images) all() []string {
	out := []string{i.RabbitMQ, i.Postgres, i.Jaeger, i.Mailpit, i.Hydra, i.Service("warren-login"), i.Service("warrenctl")}
	for _, s := range Services {
		out = append(out, i.Service(s))
	}
	return out
}

// System is a running Warren: every service and its infrastructure in containers on one
// Docker network, reached from the test process through mapped ports.
type System struct {
	// Order is the order service, the first replica's API when there are several.
	Order *OrderAPI
	// OrderReplicas are the order service's containers by network alias: "order", or
	// "order-1" to "order-n" with WithOrderReplicas.
	OrderReplicas map[string]*OrderAPI
	Inventory     *InventoryAPI
	SMS           *SMSAPI
	Analytics     *AnalyticsAPI
	// Email has one entry per replica.
	Email   []*EmailAPI
	Mailpit *Mailpit
	Jaeger  *Jaeger
	// Identity is the OpenID Connect provider. Order's clients above call as the customer
	// Alice, the others as the staff member Sam; Identity.Token logs in anyone else.
	Identity *Identity
	// AMQPURL reaches the broker as its administrator, for tests that publish or inspect
	// queues directly.
	AMQPURL string
	// ManagementURL is the broker's management API (http://user:password@host:port), as
	// its administrator. With a cluster, AMQPURL and ManagementURL are the first node's.
	ManagementURL string
	// BrokerNodes are the names of the broker's containers: "rabbitmq", or "rabbitmq-1"
	// to "rabbitmq-n" for a cluster (see WithRabbitMQCluster).
	BrokerNodes []string

	runID   string
	network *testcontainers.DockerNetwork
	options options

	mu         sync.Mutex
	containers []*node

	// monitoringMu guards prometheus, started by StartMonitoring (prometheus.go).
	monitoringMu sync.Mutex
	prometheus   *Prometheus
}

// node is one started container: services (tier 1) are stopped before the infrastructure
// (tier 0) they use, so that they shut down cleanly and flush their spans.
type node struct {
	name      string
	tier      int
	container testcontainers.Container
	// aliases are the container's network aliases while Disconnect has it cut off.
	aliases []string
}

// Option changes how Start builds the system.
type Option func(*options)

type options struct {
	fixedPorts    bool
	brokerNodes   int
	orderReplicas int
	serviceEnv    map[string]map[string]string
	tls           *tlsSetup // WithTLS (tls.go)
}

// WithFixedHostPorts publishes every port of the broker and the services on a loopback
// port chosen at start-up and kept for the container's life, so that a container that is
// stopped and started again (see Restart) answers where it did. Without it Docker picks
// a new port at every start.
func WithFixedHostPorts() Option { return func(o *options) { o.fixedPorts = true } }

// WithRabbitMQCluster runs the broker as a cluster of n nodes (rabbit@rabbitmq-1 to
// rabbit@rabbitmq-n) instead of one. Every node also answers to the network alias
// "rabbitmq" that the services' AMQP_URL names, and Docker's DNS returns only the nodes
// that are running: each service connects to some node and, when that node stops,
// reconnects to another. Quorum queues get a replica on every node (up to 3).
func WithRabbitMQCluster(n int) Option { return func(o *options) { o.brokerNodes = n } }

// WithOrderReplicas runs n order containers (order-1 to order-n) on the one database
// instead of one: each answers the API, and their outbox relays elect one leader between
// them (shared/outbox's lease), the others standing by. System.Order is order-1.
func WithOrderReplicas(n int) Option { return func(o *options) { o.orderReplicas = n } }

// WithServiceEnv adds env to the environment of every instance of service (e.g.
// "inventory"), over what Start gives it. Several of them for one service add up.
func WithServiceEnv(service string, env map[string]string) Option {
	return func(o *options) {
		if o.serviceEnv == nil {
			o.serviceEnv = map[string]map[string]string{}
		}
		if o.serviceEnv[service] == nil {
			o.serviceEnv[service] = map[string]string{}
		}
		maps.Copy(o.serviceEnv[service], env)
	}
}

// Start starts the whole system and returns once every service answers /readyz: the
// infrastructure in parallel, then the broker's definitions, then the services in parallel.
// On error it removes whatever it started. logf reports progress.
func Start(ctx context.Context, images Images, logf func(format string, args ...any), opts ...Option) (_ *System, err error) {
	if err := checkImages(ctx, images.all()...); err != nil {
		return nil, err
	}
	runID := fmt.Sprintf("%d", time.Now().UnixNano())
	nw, err := network.New(ctx, network.WithLabels(map[string]string{LabelRun: runID}))
	if err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	s := &System{runID: runID, network: nw}
	for _, o := range opts {
		o(&s.options)
	}
	defer func() {
		if err != nil {
			if cerr := s.Close(context.WithoutCancel(ctx)); cerr != nil {
				logf("cleanup after failed start: %v", cerr)
			}
		}
	}()

	if err := s.options.tls.prepare(max(1, s.options.brokerNodes)); err != nil {
		return nil, err
	}
	t0 := time.Now()
	if err := s.startInfrastructure(ctx, images); err != nil {
		return nil, err
	}
	logf("infrastructure ready in %s", time.Since(t0).Round(100*time.Millisecond))
	t1 := time.Now()
	if err := s.startServices(ctx, images); err != nil {
		return nil, err
	}
	logf("services ready in %s", time.Since(t1).Round(100*time.Millisecond))
	return s, nil
}

// startInfrastructure starts the broker, the database server, Mailpit and Jaeger in
// parallel, then loads the broker's definitions.
func (s *System) startInfrastructure(ctx context.Context, images Images) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.startBroker(gctx, images.RabbitMQ) })
	g.Go(func() error { return s.startPostgres(gctx, images.Postgres) })
	g.Go(func() (err error) { s.Mailpit, err = s.startMailpit(gctx, images.Mailpit); return err })
	g.Go(func() (err error) { s.Jaeger, err = s.startJaeger(gctx, images.Jaeger); return err })
	if err := g.Wait(); err != nil {
		return err
	}
	// Hydra keeps its state in the database server, so it starts once that is up.
	g, gctx = errgroup.WithContext(ctx)
	g.Go(func() (err error) { s.Identity, err = s.startIdentity(gctx, images); return err })
	g.Go(func() error { return loadDefinitions(gctx, s.ManagementURL) })
	return g.Wait()
}

// startServices starts Warren's services in parallel: one of each, two of email.
func (s *System) startServices(ctx context.Context, images Images) error {
	type instance struct {
		service, alias string
		env            map[string]string
	}
	instances := []instance{{service: "inventory", alias: "inventory"}}
	orders := []string{"order"}
	if n := s.options.orderReplicas; n > 1 {
		orders = orders[:0]
		for i := range n {
			orders = append(orders, fmt.Sprintf("order-%d", i+1))
		}
	}
	for _, alias := range orders {
		in := instance{service: "order", alias: alias}
		if len(orders) > 1 {
			in.env = map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=" + alias}
		}
		instances = append(instances, in)
	}
	for i := range EmailReplicas {
		alias := fmt.Sprintf("email-%d", i+1)
		instances = append(instances, instance{service: "email", alias: alias, env: map[string]string{
			"SMTP_ADDR": "mailpit:1025",
			// One service, several instances: their spans say which one did the work.
			"OTEL_RESOURCE_ATTRIBUTES": "service.instance.id=" + alias,
		}})
	}
	// sms keeps its default SMS_REGIONS (europe, americas).
	instances = append(instances, instance{service: "sms", alias: "sms"}, instance{service: "analytics", alias: "analytics"})

	var mu sync.Mutex
	apis := map[string]client{}
	g, gctx := errgroup.WithContext(ctx)
	for _, in := range instances {
		env := map[string]string{}
		maps.Copy(env, in.env)
		maps.Copy(env, s.options.serviceEnv[in.service])
		g.Go(func() error {
			api, err := s.startService(gctx, images, in.service, in.alias, env)
			mu.Lock()
			apis[in.alias] = api
			mu.Unlock()
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	alice, err := s.Identity.Token(ctx, Alice)
	if err != nil {
		return err
	}
	sam, err := s.Identity.Token(ctx, Sam)
	if err != nil {
		return err
	}
	for alias, api := range apis {
		api.token = sam
		if strings.HasPrefix(alias, "order") {
			api.token = alice
		}
		apis[alias] = api
	}
	s.Inventory = &InventoryAPI{apis["inventory"]}
	s.OrderReplicas = map[string]*OrderAPI{}
	for _, alias := range orders {
		s.OrderReplicas[alias] = &OrderAPI{apis[alias]}
	}
	s.Order = s.OrderReplicas[orders[0]]
	for i := range EmailReplicas {
		alias := fmt.Sprintf("email-%d", i+1)
		s.Email = append(s.Email, &EmailAPI{apis[alias], alias})
	}
	s.SMS = &SMSAPI{apis["sms"]}
	s.Analytics = &AnalyticsAPI{apis["analytics"]}
	return nil
}

func (s *System) add(name string, tier int, c testcontainers.Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.containers = append(s.containers, &node{name: name, tier: tier, container: c})
}

// Close stops and removes every container (services first, then the infrastructure) and
// the network. It is safe to call on a partly started system.
func (s *System) Close(ctx context.Context) error {
	var errs []error
	var mu sync.Mutex
	for tier := 1; tier >= 0; tier-- {
		var wg sync.WaitGroup
		for _, n := range s.containers {
			if n.tier != tier {
				continue
			}
			wg.Go(func() {
				// Services get time to finish in-flight work and flush their spans; nothing
				// of the infrastructure's state is kept, so it need not stop gracefully.
				timeout := 10 * time.Second
				if tier == 0 {
					timeout = 3 * time.Second
				}
				if err := n.container.Terminate(ctx, testcontainers.StopTimeout(timeout)); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("terminate %s: %w", n.name, err))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	s.options.tls.cleanup()
	if s.Identity != nil {
		_ = os.RemoveAll(s.Identity.usersDir)
	}
	if s.network != nil {
		if err := s.network.Remove(ctx); err != nil {
			errs = append(errs, fmt.Errorf("remove network: %w", err))
		}
	}
	return errors.Join(errs...)
}

// DumpLogs writes the last lines of every container's log to w: what a failed run needs.
func (s *System) DumpLogs(ctx context.Context, w io.Writer, lines int) {
	for _, n := range s.containers {
		fmt.Fprintf(w, "\n===== %s (last %d lines) =====\n%s\n", n.name, lines, tail(ctx, n.container, lines))
	}
}

// RepoRoot finds the repository's root (the folder with go.work) from the working
// directory, which go test sets to the package's folder.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root (go.work) not found above the working directory")
		}
		dir = parent
	}
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
