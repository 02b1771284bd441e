package compose

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
)

// scrapeJobs are the Prometheus jobs of the observability contract
// (deploy/prometheus/prometheus.yml): each must have a target, and every target must be up.
var scrapeJobs = []string{"prometheus", "alertmanager", "order", "inventory", "email", "sms", "analytics",
	"rabbitmq", "rabbitmq-queues", "postgres"}

// CheckMonitoring checks the running stack's metrics and alerting: Prometheus scrapes
// every job of the contract and each target is up, the exporter is logged in to
// PostgreSQL (pg_up, which is 0 when its pg_monitor login fails although its own target
// stays up), RabbitMQ's per-queue series arrive, and Alertmanager is ready and known to
// Prometheus as where its alerts go.
func (p *project) CheckMonitoring(t *testing.T) {
	t.Helper()
	prom := p.Port(t, "prometheus", 9090)
	e2e.Eventually(t, 2*time.Minute, "every scrape target up", func() error {
		var r struct {
			Data struct {
				ActiveTargets []struct {
					Labels    map[string]string `json:"labels"`
					ScrapeURL string            `json:"scrapeUrl"`
					Health    string            `json:"health"`
					LastError string            `json:"lastError"`
				} `json:"activeTargets"`
			} `json:"data"`
		}
		if err := e2e.Call(t.Context(), http.MethodGet, prom+"/api/v1/targets?state=active", nil, nil, http.StatusOK, &r); err != nil {
			return err
		}
		up := map[string]int{}
		var problems []string
		for _, tg := range r.Data.ActiveTargets {
			job := tg.Labels["job"]
			if tg.Health != "up" {
				problems = append(problems, fmt.Sprintf("%s %s: %s %s", job, tg.ScrapeURL, tg.Health, tg.LastError))
				continue
			}
			up[job]++
		}
		for _, job := range scrapeJobs {
			if up[job] == 0 {
				problems = append(problems, job+": no target up")
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("%s", strings.Join(problems, "; "))
		}
		return nil
	})

	e2e.Eventually(t, time.Minute, "PostgreSQL and per-queue RabbitMQ series in Prometheus", func() error {
		if v, err := promQuery(t, prom, `pg_up{job="postgres"}`); err != nil || !slices.Equal(v, []string{"1"}) {
			return fmt.Errorf("pg_up %v (%v), want [1]: the exporter's pg_monitor login", v, err)
		}
		if v, err := promQuery(t, prom, `rabbitmq_detailed_queue_messages{job="rabbitmq-queues",queue="order.events.email"}`); err != nil || len(v) != 1 {
			return fmt.Errorf("messages of queue order.events.email: %v (%v), want one series", v, err)
		}
		return nil
	})

	am := p.Port(t, "alertmanager", 9093)
	if err := e2e.Call(t.Context(), http.MethodGet, am+"/-/ready", nil, nil, http.StatusOK, nil); err != nil {
		t.Errorf("alertmanager /-/ready: %v", err)
	}
	e2e.Eventually(t, time.Minute, "Prometheus sends alerts to Alertmanager", func() error {
		var r struct {
			Data struct {
				Active []struct {
					URL string `json:"url"`
				} `json:"activeAlertmanagers"`
			} `json:"data"`
		}
		if err := e2e.Call(t.Context(), http.MethodGet, prom+"/api/v1/alertmanagers", nil, nil, http.StatusOK, &r); err != nil {
			return err
		}
		for _, a := range r.Data.Active {
			if strings.HasPrefix(a.URL, "http://alertmanager:9093/") {
				return nil
			}
		}
		return fmt.Errorf("active alertmanagers %+v, want http://alertmanager:9093", r.Data.Active)
	})
}

// promQuery returns the values of an instant query's result vector.
func promQuery(t *testing.T, prom, query string) ([]string, error) {
	t.Helper()
	var r struct {
		Data struct {
			Result []struct {
				Value []any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := e2e.Call(t.Context(), http.MethodGet, prom+"/api/v1/query?query="+url.QueryEscape(query), nil, nil, http.StatusOK, &r); err != nil {
		return nil, err
	}
	var out []string
	for _, s := range r.Data.Result {
		if len(s.Value) == 2 {
			out = append(out, fmt.Sprint(s.Value[1]))
		}
	}
	return out, nil
}
