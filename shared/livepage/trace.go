package livepage

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/warrenhq/warren/shared/events"
)

// span is what the page reads of a span in Jaeger's query API (GET /api/traces/{id}).
type span struct {
	Service   string
	Operation string
	Failed    bool
}

// trace returns the spans Jaeger has of the trace so far (none while it has none).
func (p *Page) trace(ctx context.Context, traceID string) ([]span, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.cfg.JaegerURL+"/api/traces/"+url.PathEscape(traceID), nil)
	if err != nil {
		return nil, err
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaeger: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil // spans leave each service in batches: not there yet
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaeger: GET /api/traces/%s: %s", traceID, resp.Status)
	}
	var out struct {
		Data []struct {
			Spans []struct {
				OperationName string `json:"operationName"`
				ProcessID     string `json:"processID"`
				Tags          []struct {
					Key   string `json:"key"`
					Value any    `json:"value"`
				} `json:"tags"`
			} `json:"spans"`
			Processes map[string]struct {
				ServiceName string `json:"serviceName"`
			} `json:"processes"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&out); err != nil {
		return nil, fmt.Errorf("jaeger: decode trace %s: %w", traceID, err)
	}
	var spans []span
	for _, t := range out.Data {
		for _, s := range t.Spans {
			sp := span{Service: t.Processes[s.ProcessID].ServiceName, Operation: s.OperationName}
			for _, tag := range s.Tags {
				// Jaeger shows an OpenTelemetry error status as error=true.
				if tag.Key == "error" && fmt.Sprint(tag.Value) == "true" ||
					tag.Key == "otel.status_code" && tag.Value == "ERROR" {
					sp.Failed = true
				}
			}
			spans = append(spans, sp)
		}
	}
	return spans, nil
}

// stepsOf lights the steps the spans show: the request and the publish of OrderPlaced by
// the order service, and each consumer's processing of its queue. A consumer whose every
// attempt failed is "failed"; one that succeeded after a retry is "done".
func stepsOf(spans []span) map[string]string {
	steps := map[string]string{}
	mark := func(step string, failed bool) {
		switch {
		case !failed:
			steps[step] = stepDone
		case steps[step] == "":
			steps[step] = stepFailed
		}
	}
	for _, s := range spans {
		switch {
		case s.Service == "order" && s.Operation == "POST /orders":
			mark(StepPlaced, s.Failed)
		case s.Service == "order" && s.Operation == "publish "+events.ExchangeOrderEvents:
			mark(StepPublished, s.Failed)
		default:
			for queue, step := range consumerSteps {
				if s.Operation == "process "+queue {
					mark(step, s.Failed)
				}
			}
		}
	}
	return steps
}
