package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// grafanaVariables are the Grafana variables the dashboards' queries may use, with the value
// the test gives them: $__rate_interval is at least four scrape intervals (10 s) in Grafana.
var grafanaVariables = strings.NewReplacer("$__rate_interval", "1m", "${__rate_interval}", "1m", "$__interval", "30s", "$__range", "5m")

// Every panel of every dashboard in deploy/grafana/dashboards/ shows data on a running
// system that has taken some orders: each target's PromQL, evaluated by the suite's
// Prometheus (compose's scrape configuration), returns at least one series. A panel that
// names a metric or a label nobody exports, or a job that is not scraped, fails here.
func TestDashboards(t *testing.T) {
	s := system(t)
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "deploy", "grafana", "dashboards")
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		t.Skipf("no dashboards (%s does not exist)", dir)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s (%v)", dir, err)
	}
	var targets []panelTarget
	for _, f := range files {
		targets = append(targets, dashboardTargets(t, f)...)
	}
	prom, err := s.StartMonitoring(t.Context())
	if err != nil {
		t.Fatal(err)
	}

	// Traffic for the rates and latencies: a confirmed, a rejected and a cancelled order.
	c := customer(t, 1)
	confirmed := s.Order.Place(t, OrderRequest{Customer: c, Region: events.RegionEurope, Items: []Line{{SKU: "carrot-seeds", Quantity: 1}}}, nil)
	rejected := s.Order.Place(t, OrderRequest{Customer: c, Region: events.RegionEurope, Items: []Line{{SKU: "rare-orchid", Quantity: 1}}}, nil)
	s.Order.Settled(t, confirmed)
	s.Order.Settled(t, rejected)

	// Every panel has data within two minutes: rates need two scrapes of the traffic.
	var empty []string
	deadline := time.Now().Add(2 * time.Minute)
	for {
		empty = empty[:0]
		for _, pt := range targets {
			series, err := prom.Query(t.Context(), pt.expr)
			if err != nil {
				t.Fatalf("%s: %v", pt, err)
			}
			if len(series) == 0 {
				empty = append(empty, pt.String())
			}
		}
		if len(empty) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Second)
	}
	for _, e := range empty {
		t.Errorf("no series: %s", e)
	}
	t.Logf("%d panel queries of %d dashboards, %d without data", len(targets), len(files), len(empty))
}

// panelTarget is one query of one dashboard panel.
type panelTarget struct{ dashboard, panel, expr string }

func (p panelTarget) String() string {
	return fmt.Sprintf("%s, panel %q: %s", p.dashboard, p.panel, p.expr)
}

// dashboardTargets returns the Prometheus queries of every panel of a dashboard JSON file,
// rows' nested panels included, with the Grafana variables replaced.
func dashboardTargets(t *testing.T, file string) []panelTarget {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type panel struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
		Panels []json.RawMessage `json:"panels"`
	}
	var dash struct {
		Panels []json.RawMessage `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	name := filepath.Base(file)
	var out []panelTarget
	var walk func([]json.RawMessage)
	walk = func(raw []json.RawMessage) {
		for _, r := range raw {
			var p panel
			if err := json.Unmarshal(r, &p); err != nil {
				t.Fatalf("%s: a panel: %v", file, err)
			}
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					continue
				}
				expr := grafanaVariables.Replace(tg.Expr)
				if strings.Contains(expr, "$") {
					t.Errorf("%s, panel %q: a variable the test does not know: %s", name, p.Title, tg.Expr)
					continue
				}
				out = append(out, panelTarget{name, p.Title, expr})
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	if len(out) == 0 {
		t.Errorf("%s: no panel queries Prometheus", name)
	}
	return slices.Clip(out)
}
