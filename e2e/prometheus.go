package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"golang.org/x/sync/errgroup"
)

// Prometheus is the HTTP API of the Prometheus that StartMonitoring starts.
type Prometheus struct{ client }

// MonitoringImages names the Prometheus, Alertmanager and PostgreSQL exporter images, as
// docker-compose.yml does, each overridden by its environment variable when set:
// PROMETHEUS_IMAGE, ALERTMANAGER_IMAGE, POSTGRES_EXPORTER_IMAGE. They are not in Images:
// only the tests that watch the system need them.
func MonitoringImages() (prometheus, alertmanager, postgresExporter string) {
	return envOr("PROMETHEUS_IMAGE", "prom/prometheus:v2.53.3"),
		envOr("ALERTMANAGER_IMAGE", "prom/alertmanager:v0.28.1"),
		envOr("POSTGRES_EXPORTER_IMAGE", "prometheuscommunity/postgres-exporter:v0.17.1")
}

// StartMonitoring starts Prometheus, Alertmanager and the PostgreSQL exporter on the
// system's network, configured with compose's own files: deploy/prometheus/prometheus.yml
// with the rules of deploy/prometheus/rules/, and deploy/alertmanager/alertmanager.yml,
// which mails alerts to Mailpit. The scrape targets are the compose service names
// (rabbitmq, order, email, postgres-exporter, ...), which are the containers' network
// aliases here too. A second call returns the Prometheus the first one started. The
// containers are removed with the system.
func (s *System) StartMonitoring(ctx context.Context) (*Prometheus, error) {
	s.monitoringMu.Lock()
	defer s.monitoringMu.Unlock()
	if s.prometheus != nil {
		return s.prometheus, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	promImage, amImage, exporterImage := MonitoringImages()
	if err := checkImages(ctx, promImage, amImage, exporterImage); err != nil {
		return nil, err
	}
	promFiles := []testcontainers.ContainerFile{{
		HostFilePath: filepath.Join(root, "deploy", "prometheus", "prometheus.yml"), ContainerFilePath: "/etc/prometheus/prometheus.yml", FileMode: 0o644,
	}}
	rules, err := filepath.Glob(filepath.Join(root, "deploy", "prometheus", "rules", "*.yml"))
	if err != nil || len(rules) == 0 {
		return nil, fmt.Errorf("no alert rules in deploy/prometheus/rules (%v)", err)
	}
	for _, r := range rules {
		promFiles = append(promFiles, testcontainers.ContainerFile{HostFilePath: r, ContainerFilePath: "/etc/prometheus/rules/" + filepath.Base(r), FileMode: 0o644})
	}
	amConfig := filepath.Join(root, "deploy", "alertmanager", "alertmanager.yml")
	for _, f := range append(promFiles, testcontainers.ContainerFile{HostFilePath: amConfig}) {
		if _, err := os.Stat(f.HostFilePath); err != nil {
			return nil, fmt.Errorf("monitoring configuration: %w", err)
		}
	}

	var prom testcontainers.Container
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) {
		// The flags of docker-compose.yml's prometheus service, but the data in the
		// container's own file system (it goes with the container).
		prom, err = s.startMonitor(gctx, "prometheus", promImage, "9090/tcp", "/-/ready", promFiles, nil,
			"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus",
			"--enable-feature=exemplar-storage")
		return err
	})
	g.Go(func() error {
		_, err := s.startMonitor(gctx, "alertmanager", amImage, "9093/tcp", "/-/ready",
			[]testcontainers.ContainerFile{{HostFilePath: amConfig, ContainerFilePath: "/etc/alertmanager/alertmanager.yml", FileMode: 0o644}}, nil,
			"--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager",
			// One instance: no gossip cluster, as in compose.
			"--cluster.listen-address=")
		return err
	})
	g.Go(func() error {
		// Compose gives the exporter a pg_monitor role of its own; the suite's database
		// server has only its superuser and the services' users, so it uses the superuser.
		_, err := s.startMonitor(gctx, "postgres-exporter", exporterImage, "9187/tcp", "/metrics", nil,
			map[string]string{
				"DATA_SOURCE_URI":  "postgres:5432/postgres?sslmode=disable",
				"DATA_SOURCE_USER": dbSuperuser,
				"DATA_SOURCE_PASS": dbSuperuser,
			})
		return err
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	base, err := endpoint(ctx, prom, "9090/tcp")
	if err != nil {
		return nil, err
	}
	s.prometheus = &Prometheus{client{base: base}}
	return s.prometheus, nil
}

// startMonitor starts one of the monitoring containers as alias, with files, env and args
// (the image's own command when there are none), once it answers ready on port.
func (s *System) startMonitor(ctx context.Context, alias, image, port, ready string, files []testcontainers.ContainerFile, env map[string]string, args ...string) (testcontainers.Container, error) {
	opts := []testcontainers.ContainerCustomizer{
		network.WithNetwork([]string{alias}, s.network),
		s.labels(),
		testcontainers.WithFiles(files...),
		testcontainers.WithEnv(env),
		testcontainers.WithExposedPorts(port),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute, wait.ForHTTP(ready).WithPort(port)),
	}
	if len(args) > 0 {
		opts = append(opts, testcontainers.WithCmd(args...))
	}
	c, err := testcontainers.Run(ctx, image, opts...)
	if c != nil {
		s.add(alias, 0, c)
	}
	if err != nil {
		if c != nil {
			err = fmt.Errorf("%w\n%s", err, tail(context.WithoutCancel(ctx), c, 30))
		}
		return nil, fmt.Errorf("start %s: %w", alias, err)
	}
	return c, nil
}

// Alert is an alert as Prometheus's /api/v1/alerts lists it: pending while its rule's
// `for:` runs, then firing.
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	Value       string            `json:"value"`
}

// Alert states.
const (
	AlertPending = "pending"
	AlertFiring  = "firing"
)

// Alerts returns the alerts that are pending or firing now.
func (p *Prometheus) Alerts(ctx context.Context) ([]Alert, error) {
	var out struct {
		Data struct {
			Alerts []Alert `json:"alerts"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/alerts", &out); err != nil {
		return nil, err
	}
	return out.Data.Alerts, nil
}

// Alert returns the active alert named name whose labels include every label in match, or
// nil when there is none.
func (p *Prometheus) Alert(ctx context.Context, name string, match map[string]string) (*Alert, error) {
	alerts, err := p.Alerts(ctx)
	if err != nil {
		return nil, err
	}
next:
	for _, a := range alerts {
		if a.Labels["alertname"] != name {
			continue
		}
		for k, v := range match {
			if a.Labels[k] != v {
				continue next
			}
		}
		return &a, nil
	}
	return nil, nil
}

// Series is one series of an instant query's result.
type Series struct {
	Metric map[string]string `json:"metric"`
	// Value is [unix time, "value"].
	Value [2]any `json:"value"`
}

// Query evaluates a PromQL expression now and returns its series; an expression that
// yields a scalar or a string is an error.
func (p *Prometheus) Query(ctx context.Context, expr string) ([]Series, error) {
	var out struct {
		Data struct {
			ResultType string   `json:"resultType"`
			Result     []Series `json:"result"`
		} `json:"data"`
	}
	if err := p.get(ctx, "/api/v1/query?query="+url.QueryEscape(expr), &out); err != nil {
		return nil, fmt.Errorf("query %s: %w", expr, err)
	}
	if out.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %s: a %s, not a vector", expr, out.Data.ResultType)
	}
	return out.Data.Result, nil
}
