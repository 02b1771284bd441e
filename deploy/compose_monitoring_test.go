package deploy_test

import (
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// scrapeJobs is the scrape contract of the observability stack (issue 12): each job and
// the targets Prometheus finds it at. The alert rules and dashboards select by these job
// names. email is discovered by DNS (every replica of `--scale email=3` a target): "dns
// email:9090".
var scrapeJobs = map[string]string{
	"prometheus":      "localhost:9090",
	"alertmanager":    "alertmanager:9093",
	"order":           "order:9090",
	"inventory":       "inventory:9090",
	"email":           "dns email:9090",
	"sms":             "sms:9090",
	"analytics":       "analytics:9090",
	"rabbitmq":        "rabbitmq:15692/metrics",
	"rabbitmq-queues": "rabbitmq:15692/metrics/detailed",
	"postgres":        "postgres-exporter:9187",
}

type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	RuleFiles []string `yaml:"rule_files"`
	Alerting  struct {
		Alertmanagers []struct {
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"alertmanagers"`
	} `yaml:"alerting"`
	ScrapeConfigs []struct {
		JobName       string              `yaml:"job_name"`
		MetricsPath   string              `yaml:"metrics_path"`
		Params        map[string][]string `yaml:"params"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		DNSSDConfigs []struct {
			Names []string `yaml:"names"`
			Type  string   `yaml:"type"`
			Port  int      `yaml:"port"`
		} `yaml:"dns_sd_configs"`
	} `yaml:"scrape_configs"`
}

// TestPrometheusScrapesTheContract: deploy/prometheus/prometheus.yml scrapes exactly the
// contract's jobs at their targets, every 10 s, loads the rules directory compose mounts
// and sends alerts to Alertmanager. (That the targets answer is e2e/compose's.)
func TestPrometheusScrapesTheContract(t *testing.T) {
	b, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c promConfig
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Global.ScrapeInterval != "10s" || c.Global.EvaluationInterval != "10s" {
		t.Errorf("scrape_interval %q, evaluation_interval %q, want 10s both", c.Global.ScrapeInterval, c.Global.EvaluationInterval)
	}
	if !slices.Equal(c.RuleFiles, []string{"/etc/prometheus/rules/*.yml"}) {
		t.Errorf("rule_files %q, want /etc/prometheus/rules/*.yml", c.RuleFiles)
	}
	if len(c.Alerting.Alertmanagers) != 1 || len(c.Alerting.Alertmanagers[0].StaticConfigs) != 1 ||
		!slices.Equal(c.Alerting.Alertmanagers[0].StaticConfigs[0].Targets, []string{"alertmanager:9093"}) {
		t.Errorf("alerting %+v, want alertmanager:9093", c.Alerting)
	}
	got := map[string]string{}
	for _, j := range c.ScrapeConfigs {
		var targets []string
		for _, s := range j.StaticConfigs {
			targets = append(targets, s.Targets...)
		}
		for _, d := range j.DNSSDConfigs {
			for _, n := range d.Names {
				if d.Type != "A" {
					t.Errorf("%s: dns_sd_configs type %q, want A (Docker's DNS has no SRV records)", j.JobName, d.Type)
				}
				targets = append(targets, "dns "+n+":"+strconv.Itoa(d.Port))
			}
		}
		if len(targets) != 1 {
			t.Errorf("%s: targets %q, want one", j.JobName, targets)
			continue
		}
		target := targets[0]
		path := j.MetricsPath
		if path == "" {
			path = "/metrics" // Prometheus's default
		}
		if strings.HasPrefix(j.JobName, "rabbitmq") {
			target += path
		} else if path != "/metrics" {
			t.Errorf("%s: metrics_path %q, want /metrics", j.JobName, j.MetricsPath)
		}
		if _, dup := got[j.JobName]; dup {
			t.Errorf("job %s twice", j.JobName)
		}
		got[j.JobName] = target
		if j.JobName == "rabbitmq-queues" && !slices.Equal(j.Params["family"], []string{"queue_coarse_metrics", "queue_metrics", "queue_exchange_metrics", "queue_delivery_metrics"}) {
			t.Errorf("rabbitmq-queues: family %q, want the four queue families (depths, consumers, publishes, deliveries)", j.Params["family"])
		}
	}
	if !maps.Equal(got, scrapeJobs) {
		t.Errorf("scrape jobs %v,\nwant %v", got, scrapeJobs)
	}
}

// TestComposeRunsTheMonitoringStack: Prometheus, Alertmanager and the PostgreSQL exporter
// run from their official images (overridable), publish their UIs on loopback only (the
// exporter nothing), read their configuration from the repository, keep their data in
// volumes, report ready through a healthcheck, and the exporter logs in with a password
// from its own secrets volume, which secrets writes and the database's init script turns
// into a pg_monitor role.
func TestComposeRunsTheMonitoringStack(t *testing.T) {
	_, services := readCompose(t)
	const secretsDir = "/run/secrets/warren"
	for name, want := range map[string]struct{ image, port, ready string }{
		"prometheus":        {"${PROMETHEUS_IMAGE:-prom/prometheus:v2.53.3}", "127.0.0.1:${PROMETHEUS_PORT:-9090}:9090", "http://127.0.0.1:9090/-/ready"},
		"alertmanager":      {"${ALERTMANAGER_IMAGE:-prom/alertmanager:v0.28.1}", "127.0.0.1:${ALERTMANAGER_PORT:-9093}:9093", "http://127.0.0.1:9093/-/ready"},
		"postgres-exporter": {"${POSTGRES_EXPORTER_IMAGE:-prometheuscommunity/postgres-exporter:v0.17.1}", "", "http://127.0.0.1:9187/"},
	} {
		svc, ok := services[name]
		if !ok {
			t.Errorf("%s: not in docker-compose.yml", name)
			continue
		}
		if svc.Image != want.image {
			t.Errorf("%s: image %q, want %q", name, svc.Image, want.image)
		}
		var ports []string
		if want.port != "" {
			ports = []string{want.port}
		}
		if !slices.Equal(svc.Ports, ports) {
			t.Errorf("%s: ports %q, want %q", name, svc.Ports, ports)
		}
		// The images have busybox's wget, no curl.
		if hc := svc.Healthcheck.Test; len(hc) == 0 || hc[0] != "CMD" || !slices.Contains(hc, "wget") || hc[len(hc)-1] != want.ready {
			t.Errorf("%s: healthcheck %q, want wget of %s", name, hc, want.ready)
		}
	}

	prom := services["prometheus"]
	for _, v := range []string{"./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
		"./deploy/prometheus/rules:/etc/prometheus/rules:ro", "prometheus-data:/prometheus"} {
		if !slices.Contains(prom.Volumes, v) {
			t.Errorf("prometheus: volumes %q lack %q", prom.Volumes, v)
		}
	}
	for _, arg := range []string{"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--enable-feature=exemplar-storage"} {
		if !slices.Contains(prom.Command, arg) {
			t.Errorf("prometheus: command %q lacks %s", prom.Command, arg)
		}
	}
	am := services["alertmanager"]
	if !slices.Contains(am.Volumes, "./deploy/alertmanager/alertmanager.yml:/etc/alertmanager/alertmanager.yml:ro") ||
		!slices.Contains(am.Command, "--config.file=/etc/alertmanager/alertmanager.yml") {
		t.Errorf("alertmanager: volumes %q, command %q; want deploy/alertmanager/alertmanager.yml", am.Volumes, am.Command)
	}

	exp := services["postgres-exporter"]
	if exp.Environment["DATA_SOURCE_USER"] != "postgres_exporter" ||
		exp.Environment["DATA_SOURCE_PASS_FILE"] != secretsDir+"/postgres_exporter_db_password" ||
		!slices.Contains(exp.Volumes, "postgres-exporter-secrets:"+secretsDir+":ro") {
		t.Errorf("postgres-exporter: environment %v, volumes %q; want role postgres_exporter, its password from its own volume", exp.Environment, exp.Volumes)
	}
	for _, k := range []string{"DATA_SOURCE_NAME", "DATA_SOURCE_PASS"} {
		if _, ok := exp.Environment[k]; ok {
			t.Errorf("postgres-exporter sets %s: the password belongs in the file", k)
		}
	}
	if !slices.Contains(services["secrets"].Volumes, "postgres-exporter-secrets:/secrets/postgres-exporter") {
		t.Error("secrets does not write postgres-exporter-secrets")
	}
	if got := services["postgres"].Environment["POSTGRES_EXPORTER_DB_PASSWORD_FILE"]; got != secretsDir+"/postgres_exporter_db_password" {
		t.Errorf("postgres: POSTGRES_EXPORTER_DB_PASSWORD_FILE %q", got)
	}
	script, err := os.ReadFile("postgres/init-databases.sh")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "GRANT pg_monitor TO postgres_exporter;") || strings.Contains(string(script), "SUPERUSER;") {
		t.Error("init-databases.sh: want a postgres_exporter role with pg_monitor, not a superuser")
	}
}

// TestAlertmanagerTLSConfigMatchesThePlainOne: alertmanager.tls.yml (compose.tls.yml) is
// alertmanager.yml with STARTTLS required and Mailpit's certificate checked against the
// CA, nothing else: a route changed in one file only would differ between the profiles.
func TestAlertmanagerTLSConfigMatchesThePlainOne(t *testing.T) {
	read := func(path string) map[string]any {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		return m
	}
	plain, tls := read("alertmanager/alertmanager.yml"), read("alertmanager/alertmanager.tls.yml")
	mail := func(m map[string]any) map[string]any {
		return m["receivers"].([]any)[0].(map[string]any)["email_configs"].([]any)[0].(map[string]any)
	}
	if plain["global"].(map[string]any)["smtp_require_tls"] != false || tls["global"].(map[string]any)["smtp_require_tls"] != true {
		t.Error("smtp_require_tls: want false in alertmanager.yml (Mailpit plain), true in alertmanager.tls.yml")
	}
	want := map[string]any{"ca_file": "/run/secrets/warren/ca.crt", "server_name": "mailpit"}
	if got, _ := mail(tls)["tls_config"].(map[string]any); !maps.Equal(got, want) {
		t.Errorf("alertmanager.tls.yml tls_config %v, want %v", got, want)
	}
	delete(plain["global"].(map[string]any), "smtp_require_tls")
	delete(tls["global"].(map[string]any), "smtp_require_tls")
	delete(mail(tls), "tls_config")
	if !reflect.DeepEqual(plain, tls) {
		t.Errorf("alertmanager.tls.yml differs from alertmanager.yml beyond TLS:\n%v\n%v", plain, tls)
	}
	route := plain["route"].(map[string]any)
	if route["group_wait"] != "10s" || route["group_interval"] != "30s" || route["repeat_interval"] != "4h" ||
		plain["global"].(map[string]any)["smtp_smarthost"] != "mailpit:1025" ||
		plain["global"].(map[string]any)["smtp_from"] != "alerts@warren.example" ||
		mail(plain)["to"] != "oncall@warren.example" || mail(plain)["send_resolved"] != true {
		t.Errorf("alertmanager.yml %v: want the contract's timings, from alerts@ to oncall@warren.example via mailpit:1025, resolved mails", plain)
	}
}
