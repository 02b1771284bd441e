package dashboards_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/warrenhq/warren/deploy/internal/dashboards"
)

var update = flag.Bool("update", false, "rewrite deploy/grafana/dashboards/*.json from the code")

const (
	dashboardsDir = "../../grafana/dashboards"
	updateCommand = "`make dashboards` (or `go test ./internal/dashboards -run TestDashboardFilesAreCurrent -update` in deploy/)"
)

// Grafana provisions deploy/grafana/dashboards/*.json; this package is where they are
// written. The test keeps the two from drifting apart, and with -update rewrites the
// files (removing any that the code no longer makes).
func TestDashboardFilesAreCurrent(t *testing.T) {
	files, err := dashboards.Files()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		old, _ := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
		for _, f := range old {
			if err := os.Remove(f); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(dashboardsDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if err := os.WriteFile(filepath.Join(dashboardsDir, f.Name), f.JSON, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []string
	for _, f := range files {
		want = append(want, f.Name)
		got, err := os.ReadFile(filepath.Join(dashboardsDir, f.Name))
		if err != nil {
			t.Errorf("%v: run %s", err, updateCommand)
			continue
		}
		if !bytes.Equal(got, f.JSON) {
			t.Errorf("%s/%s is out of date with the code in deploy/internal/dashboards: run %s", dashboardsDir, f.Name, updateCommand)
		}
	}
	committed, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range committed {
		if !slices.Contains(want, filepath.Base(f)) {
			t.Errorf("%s is not made by deploy/internal/dashboards: delete it, or run %s", f, updateCommand)
		}
	}
}

// knownMetrics are the metric names a dashboard may query: those of the observability
// contract (the services' warren_*), and the standard ones of RabbitMQ's
// rabbitmq_prometheus plugin, the PostgreSQL exporter and Prometheus. A name outside it
// is a typo or a metric nobody exports, and its panel would say "No data" forever.
// A histogram is listed by its base name; its _bucket, _sum and _count are allowed.
var knownMetrics = []string{
	// Services (CONTRACT.md): consumers and handlers.
	"warren_messages_processed_total", "warren_messages_failed_total",
	"warren_messages_dead_lettered_total", "warren_message_handler_duration_seconds",
	"warren_consumer_paused",
	// HTTP, every service.
	"warren_http_requests_total", "warren_http_request_duration_seconds",
	// Outbox, order and inventory.
	"warren_outbox_unpublished_events", "warren_outbox_oldest_unpublished_age_seconds",
	"warren_outbox_publish_duration_seconds", "warren_outbox_published_total",
	// Orders, order service.
	"warren_orders_placed_total", "warren_orders_settled_total", "warren_orders_cancelled_total",
	"warren_order_settle_duration_seconds", "warren_orders_pending", "warren_orders_pending_too_long",

	// RabbitMQ 4.0, /metrics/detailed, one series per queue. By family (the scrape's
	// family= parameters): queue_coarse_metrics, queue_metrics (consumers),
	// queue_exchange_metrics (published), queue_delivery_metrics (delivered, acked).
	"rabbitmq_detailed_queue_messages_ready", "rabbitmq_detailed_queue_messages_unacked",
	"rabbitmq_detailed_queue_messages", "rabbitmq_detailed_queue_consumers",
	"rabbitmq_detailed_queue_exchange_messages_published_total",
	"rabbitmq_detailed_queue_messages_delivered_ack_total",
	"rabbitmq_detailed_queue_messages_acked_total",
	"rabbitmq_detailed_queue_messages_redelivered_total",
	// RabbitMQ, /metrics (aggregated).
	"rabbitmq_global_messages_dead_lettered_rejected_total",
	"rabbitmq_global_messages_dead_lettered_delivery_limit_total",
	"rabbitmq_global_messages_dead_lettered_expired_total",
	"rabbitmq_global_messages_dead_lettered_maxlen_total",
	"rabbitmq_global_messages_unroutable_returned_total",
	"rabbitmq_global_messages_unroutable_dropped_total",
	"rabbitmq_global_messages_received_total", "rabbitmq_global_messages_routed_total",
	"rabbitmq_global_messages_delivered_total", "rabbitmq_global_messages_confirmed_total",
	"rabbitmq_queues", "rabbitmq_connections",

	// postgres_exporter 0.17, default collectors.
	"pg_up", "pg_stat_database_numbackends", "pg_stat_database_xact_commit",
	"pg_stat_database_xact_rollback", "pg_stat_database_deadlocks",
	"pg_settings_max_connections", "pg_locks_count",

	// Prometheus.
	"up",
}

// TestEveryPanelQueriesKnownMetrics reads the committed dashboards as Grafana does: every
// panel has a query, every query is plain PromQL with no template variable but Grafana's
// interval placeholders (nothing to choose before a panel shows data), and names only
// known metrics.
func TestEveryPanelQueriesKnownMetrics(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no dashboard in %s: run %s", dashboardsDir, updateCommand)
	}
	uids := map[string]string{}
	for _, f := range files {
		var d struct {
			UID    string      `json:"uid"`
			Panels []jsonPanel `json:"panels"`
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if d.UID == "" {
			t.Errorf("%s: no uid: Grafana would give it a new one on every start, breaking links to it", f)
		} else if other, ok := uids[d.UID]; ok {
			t.Errorf("%s and %s have the same uid %q", f, other, d.UID)
		}
		uids[d.UID] = f
		panels := 0
		for _, p := range flatten(d.Panels) {
			if p.Type == "row" {
				continue
			}
			panels++
			exprs := 0
			for _, target := range p.Targets {
				if strings.TrimSpace(target.Expr) == "" {
					continue
				}
				exprs++
				if v := variable.FindString(strings.NewReplacer("$__rate_interval", "", "$__interval", "").Replace(target.Expr)); v != "" {
					t.Errorf("%s: panel %q: %s in %q: queries must run as they are", f, p.Title, v, target.Expr)
				}
				for _, m := range metricNames(target.Expr) {
					if !known(m) {
						t.Errorf("%s: panel %q: metric %s is not a known one (knownMetrics)", f, p.Title, m)
					}
				}
			}
			if exprs == 0 {
				t.Errorf("%s: panel %q has no query with an expr", f, p.Title)
			}
		}
		if panels == 0 {
			t.Errorf("%s: no panel", f)
		}
	}
}

type jsonPanel struct {
	Type    string      `json:"type"`
	Title   string      `json:"title"`
	Panels  []jsonPanel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func flatten(panels []jsonPanel) []jsonPanel {
	var all []jsonPanel
	for _, p := range panels {
		all = append(all, p)
		all = append(all, flatten(p.Panels)...)
	}
	return all
}

func known(metric string) bool {
	for _, suffix := range []string{"", "_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(metric, suffix); ok && slices.Contains(knownMetrics, base) {
			return true
		}
	}
	return false
}

var (
	variable = regexp.MustCompile(`\$\{?\w+`)
	// What in PromQL is not a metric name: strings (label values, regexps), label
	// matchers, range and subquery durations, and the label lists of by/without/on/
	// ignoring/group_left/group_right.
	promqlString = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	matchers     = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	labelLists   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	numbers      = regexp.MustCompile(`\b[0-9][0-9a-zA-Z_.]*`) // 0.95, 1e3, offset 5m
	identifier   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*(\s*\()?`)
	keywords     = []string{"by", "without", "on", "ignoring", "group_left", "group_right",
		"and", "or", "unless", "bool", "offset", "inf", "nan"}
)

// metricNames returns the metric names in a PromQL expression: its identifiers that are
// neither functions (followed by a parenthesis) nor keywords, once strings, matchers,
// durations, numbers and label lists are taken out.
func metricNames(expr string) []string {
	s := promqlString.ReplaceAllString(expr, `""`)
	s = matchers.ReplaceAllString(s, " ")
	s = labelLists.ReplaceAllString(s, " ")
	s = numbers.ReplaceAllString(s, " ")
	var names []string
	for _, m := range identifier.FindAllStringSubmatch(s, -1) {
		if m[1] != "" || slices.Contains(keywords, strings.ToLower(m[0])) {
			continue
		}
		if !slices.Contains(names, m[0]) {
			names = append(names, m[0])
		}
	}
	sort.Strings(names)
	return names
}

// The extractor itself: a test that finds no metric in anything would pass every query.
func TestMetricNames(t *testing.T) {
	for expr, want := range map[string][]string{
		`sum by (queue, le) (rate(warren_message_handler_duration_seconds_bucket{queue!~".*[.]dlq|x"}[$__rate_interval]))`: {"warren_message_handler_duration_seconds_bucket"},
		`sum(rate(a_total{outcome="rejected"}[5m])) or vector(0)`:                                                          {"a_total"},
		`(sum(increase(b[1h])) or vector(0)) / clamp_min(sum(increase(c[1h])), 1)`:                                         {"b", "c"},
		`max by (job) (x) unless on (job) y offset 5m`:                                                                     {"x", "y"},
		`histogram_quantile(0.95, sum by (le) (rate(h_bucket[1m])))`:                                                       {"h_bucket"},
	} {
		if got := metricNames(expr); !slices.Equal(got, want) {
			t.Errorf("metricNames(%q) = %q, want %q", expr, got, want)
		}
	}
}

// TestDataSourcesAreTheDashboards: the provisioned Prometheus has the uid every panel
// names, and its exemplars' trace_id links to the provisioned Jaeger.
func TestDataSourcesAreTheDashboards(t *testing.T) {
	b, err := os.ReadFile("../../grafana/provisioning/datasources/datasources.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Datasources []struct {
			Type, UID, URL string
			JSONData       struct {
				ExemplarTraceIDDestinations []struct {
					Name          string `yaml:"name"`
					DatasourceUID string `yaml:"datasourceUid"`
				} `yaml:"exemplarTraceIdDestinations"`
			} `yaml:"jsonData"`
		} `yaml:"datasources"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	uids := map[string]string{} // type -> uid
	for _, d := range f.Datasources {
		uids[d.Type] = d.UID
	}
	if uids["prometheus"] != dashboards.PrometheusUID {
		t.Errorf("Prometheus data source uid %q, want %q (the panels' data source)", uids["prometheus"], dashboards.PrometheusUID)
	}
	for _, d := range f.Datasources {
		if d.Type != "prometheus" {
			continue
		}
		links := d.JSONData.ExemplarTraceIDDestinations
		if len(links) != 1 || links[0].Name != "trace_id" || links[0].DatasourceUID != uids["jaeger"] || uids["jaeger"] == "" {
			t.Errorf("Prometheus exemplar links %+v, want trace_id to the Jaeger data source (uid %q)", links, uids["jaeger"])
		}
	}
}
