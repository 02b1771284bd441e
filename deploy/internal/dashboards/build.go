// Package dashboards defines Warren's Grafana dashboards as code. Each dashboard is a
// plain description (a spec: sections of panels, each panel a few PromQL queries) that
// build turns into Grafana's dashboard model with the Grafana Foundation SDK. The JSON
// files Grafana provisions, deploy/grafana/dashboards/*.json, are generated from it:
// `make dashboards` rewrites them, and a test fails when they differ from the code.
//
// Every query is a plain PromQL expression with no template variable, so that any
// Prometheus answers it as written (the e2e suite evaluates each one against the running
// stack); Grafana's own $__rate_interval is the one placeholder used.
package dashboards

import (
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// PrometheusUID is the uid of the Prometheus data source that
// deploy/grafana/provisioning/datasources/datasources.yml provisions: every panel names
// it, so a dashboard does not depend on which data source is the default.
const PrometheusUID = "prometheus"

// File is one generated dashboard: its file name under deploy/grafana/dashboards and
// its JSON.
type File struct {
	Name string
	JSON []byte
}

// Files builds every dashboard and returns their files, in a fixed order.
func Files() ([]File, error) {
	var files []File
	for _, s := range []spec{orderFlow(), queues(), outboxAndDatabase()} {
		d, err := s.build()
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", s.uid, err)
		}
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			return nil, fmt.Errorf("dashboard %s: %w", s.uid, err)
		}
		files = append(files, File{Name: s.uid + ".json", JSON: append(b, '\n')})
	}
	return files, nil
}

// spec describes one dashboard.
type spec struct {
	uid, title, description string
	sections                []section
}

// section is a row of the dashboard and the panels under it.
type section struct {
	title  string
	panels []panel
}

type panelKind int

const (
	graph panelKind = iota // a time series
	value                  // a stat: the latest value, large
)

// panel is one panel: what it shows (kind, unit) and its queries.
type panel struct {
	kind               panelKind
	title, description string
	unit               string
	// width in grid columns (of 24); 0 is 12, half the dashboard.
	width   uint32
	queries []query
}

// query is one PromQL target of a panel.
type query struct {
	expr, legend string
	// exemplars asks Prometheus for exemplars too (histograms observed with a trace_id):
	// each one links to its trace in Jaeger (the data source's exemplar link).
	exemplars bool
}

func q(expr, legend string) query { return query{expr: expr, legend: legend} }

// withExemplars is q for a histogram whose observations carry a trace_id.
func withExemplars(expr, legend string) query {
	return query{expr: expr, legend: legend, exemplars: true}
}

func prometheusRef() common.DataSourceRef {
	typ, uid := "prometheus", PrometheusUID
	return common.DataSourceRef{Type: &typ, Uid: &uid}
}

func (s spec) build() (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder(s.title).
		Uid(s.uid).
		Description(s.description).
		Tags([]string{"warren"}).
		Refresh("30s").
		Time("now-1h", "now").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		// Provisioned from files: a change made in the UI could not be saved anyway.
		Readonly()
	var id uint32
	for _, sec := range s.sections {
		id++
		b.WithRow(dashboard.NewRowBuilder(sec.title).Id(id))
		for _, p := range sec.panels {
			id++
			pb, err := p.builder(id)
			if err != nil {
				return dashboard.Dashboard{}, fmt.Errorf("panel %q: %w", p.title, err)
			}
			b.WithPanel(pb)
		}
	}
	return b.Build()
}

func (p panel) builder(id uint32) (cog.Builder[dashboard.Panel], error) {
	if len(p.queries) == 0 {
		return nil, fmt.Errorf("no query")
	}
	width := p.width
	if width == 0 {
		width = 12
	}
	var targets []cog.Builder[variants.Dataquery]
	for i, qu := range p.queries {
		t := prometheus.NewDataqueryBuilder().
			Datasource(prometheusRef()).
			RefId(string(rune('A' + i))).
			Expr(qu.expr).
			LegendFormat(qu.legend)
		if qu.exemplars {
			t.Exemplar(true)
		}
		targets = append(targets, t)
	}
	switch p.kind {
	case value:
		sb := stat.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).
			Datasource(prometheusRef()).Unit(p.unit).Height(8).Span(width).
			GraphMode(common.BigValueGraphModeArea).
			ColorMode(common.BigValueColorModeValue)
		for _, t := range targets {
			sb.WithTarget(t)
		}
		return sb, nil
	default:
		tb := timeseries.NewPanelBuilder().Id(id).Title(p.title).Description(p.description).
			Datasource(prometheusRef()).Unit(p.unit).Height(8).Span(width).
			FillOpacity(10).
			Legend(common.NewVizLegendOptionsBuilder().
				ShowLegend(true).
				DisplayMode(common.LegendDisplayModeList).
				Placement(common.LegendPlacementBottom))
		for _, t := range targets {
			tb.WithTarget(t)
		}
		return tb, nil
	}
}
