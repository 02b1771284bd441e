package livepage

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
)

// QueueRow is one work queue in the queues panel.
type QueueRow struct {
	Queue string `json:"queue"`
	// Ready, Unacked and Consumers are the broker's figures; nil when unknown.
	Ready     *float64 `json:"ready"`
	Unacked   *float64 `json:"unacked"`
	Consumers *float64 `json:"consumers"`
	// DeadLetters is the depth of the queue's dead-letter queue (<queue>.dlq).
	DeadLetters *float64 `json:"dead_letters"`
	// DeadLettered is how many messages the services have dead-lettered from the queue
	// (warren_messages_dead_lettered_total).
	DeadLettered *float64 `json:"dead_lettered"`
}

// QueuesPanel is the queues panel: from Prometheus, or from the broker's own count of
// each dead-letter queue when Prometheus does not answer and the page has a broker URL.
type QueuesPanel struct {
	Source string     `json:"source"` // "prometheus", "broker" or ""
	Error  string     `json:"error,omitempty"`
	Rows   []QueueRow `json:"rows"`
	At     time.Time  `json:"at"`
}

// Alert is one alert Prometheus has pending or firing.
type Alert struct {
	Name     string    `json:"name"`
	State    string    `json:"state"`
	Severity string    `json:"severity,omitempty"`
	Summary  string    `json:"summary,omitempty"`
	Since    time.Time `json:"since"`
}

// AlertsPanel is the alerts panel.
type AlertsPanel struct {
	Error  string    `json:"error,omitempty"`
	Alerts []Alert   `json:"alerts"`
	At     time.Time `json:"at"`
}

// workQueues are the queues the services consume, in the order the page lists them.
var workQueues = []string{events.QueueInventory, events.QueueEmail, events.QueueSMS, events.QueueAnalytics, events.QueueOrder}

// pollPanels refreshes the queues and alerts panels every PollInterval (at least 2 s)
// until ctx ends.
func (p *Page) pollPanels(ctx context.Context) {
	every := max(p.cfg.PollInterval, 2*time.Second)
	for {
		p.refreshPanels(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}

func (p *Page) refreshPanels(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	now := time.Now().UTC()
	queues, qerr := p.queuesFromPrometheus(ctx)
	panel := QueuesPanel{Source: "prometheus", Rows: queues, At: now}
	if qerr != nil {
		panel = QueuesPanel{Error: qerr.Error(), At: now}
		if p.poison != nil {
			// What the page can see without Prometheus: the dead-letter queues' depths, from
			// the broker itself, through the poison button's connection.
			if rows, err := p.poison.deadLetters(ctx, workQueues); err == nil {
				panel.Source, panel.Rows = "broker", rows
			} else {
				panel.Error += "; broker: " + err.Error()
			}
		}
	}
	p.hub.set("queues", "queues", panel)

	alerts, aerr := p.alertsFromPrometheus(ctx)
	apanel := AlertsPanel{Alerts: alerts, At: now}
	if aerr != nil {
		apanel.Error = aerr.Error()
	}
	p.hub.set("alerts", "alerts", apanel)
}

// errNoPrometheus is how the panels say that Prometheus is missing or does not answer.
var errNoPrometheus = errors.New("Prometheus unreachable")

// prometheus GETs path from Prometheus's HTTP API and decodes its data into out.
func (p *Page) prometheus(ctx context.Context, path string, query url.Values, out any) error {
	if p.cfg.PrometheusURL == "" {
		return fmt.Errorf("%w: no Prometheus URL is configured", errNoPrometheus)
	}
	u := p.cfg.PrometheusURL + path
	if query != nil {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("%w (%s): %w", errNoPrometheus, p.cfg.PrometheusURL, err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&body); err != nil {
		return fmt.Errorf("%w: %s answered %s, not its API", errNoPrometheus, u, resp.Status)
	}
	if body.Status != "success" {
		return fmt.Errorf("prometheus %s: %s", path, body.Error)
	}
	return json.Unmarshal(body.Data, out)
}

// vector runs an instant query whose series carry a queue label and returns the value
// for each queue.
func (p *Page) vector(ctx context.Context, query string) (map[string]float64, error) {
	var data struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
		} `json:"result"`
	}
	if err := p.prometheus(ctx, "/api/v1/query", url.Values{"query": {query}}, &data); err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, r := range data.Result {
		var v float64
		if s, ok := r.Value[1].(string); ok {
			if _, err := fmt.Sscan(s, &v); err != nil {
				continue
			}
		}
		out[r.Metric["queue"]] = v
	}
	return out, nil
}

// queuesFromPrometheus reads the broker's per-queue figures (job rabbitmq-queues) and the
// services' dead-letter counters.
func (p *Page) queuesFromPrometheus(ctx context.Context) ([]QueueRow, error) {
	var figures [5]map[string]float64
	for i, q := range []string{
		"sum by (queue) (rabbitmq_detailed_queue_messages_ready)",
		"sum by (queue) (rabbitmq_detailed_queue_messages_unacked)",
		"sum by (queue) (rabbitmq_detailed_queue_consumers)",
		"sum by (queue) (rabbitmq_detailed_queue_messages)",
		"sum by (queue) (warren_messages_dead_lettered_total)",
	} {
		v, err := p.vector(ctx, q)
		if err != nil {
			return nil, err
		}
		figures[i] = v
	}
	at := func(m map[string]float64, queue string) *float64 {
		if v, ok := m[queue]; ok {
			return &v
		}
		return nil
	}
	rows := make([]QueueRow, 0, len(workQueues))
	for _, q := range workQueues {
		rows = append(rows, QueueRow{
			Queue: q, Ready: at(figures[0], q), Unacked: at(figures[1], q), Consumers: at(figures[2], q),
			DeadLetters: at(figures[3], messaging.DeadLetterQueueName(q)), DeadLettered: at(figures[4], q),
		})
	}
	return rows, nil
}

// alertsFromPrometheus lists the alerts pending or firing, firing first.
func (p *Page) alertsFromPrometheus(ctx context.Context) ([]Alert, error) {
	var data struct {
		Alerts []struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
			State       string            `json:"state"`
			ActiveAt    time.Time         `json:"activeAt"`
		} `json:"alerts"`
	}
	if err := p.prometheus(ctx, "/api/v1/alerts", nil, &data); err != nil {
		return nil, err
	}
	alerts := make([]Alert, 0, len(data.Alerts))
	for _, a := range data.Alerts {
		alerts = append(alerts, Alert{Name: a.Labels["alertname"], State: a.State, Severity: a.Labels["severity"],
			Summary: a.Annotations["summary"], Since: a.ActiveAt})
	}
	sort.SliceStable(alerts, func(i, j int) bool { return alerts[i].State == "firing" && alerts[j].State != "firing" })
	return alerts, nil
}
