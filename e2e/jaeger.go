package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
)

// Jaeger is Jaeger's query API (port 16686), where every service exports its spans.
type Jaeger struct{ client }

// Trace is one trace as GET /api/traces/{id} returns it.
type Trace struct {
	TraceID   string             `json:"traceID"`
	Spans     []Span             `json:"spans"`
	Processes map[string]Process `json:"processes"`
}

// Span is one span of a Trace.
type Span struct {
	TraceID       string      `json:"traceID"`
	SpanID        string      `json:"spanID"`
	OperationName string      `json:"operationName"`
	References    []Reference `json:"references"`
	ProcessID     string      `json:"processID"`
	Tags          []Tag       `json:"tags"`
}

// Reference links a span to another, its parent for CHILD_OF.
type Reference struct {
	RefType string `json:"refType"`
	TraceID string `json:"traceID"`
	SpanID  string `json:"spanID"`
}

// Tag is a span attribute.
type Tag struct {
	Key   string `json:"key"`
	Value any    `json:"value"`
}

// Process is the service a span came from.
type Process struct {
	ServiceName string `json:"serviceName"`
}

// errNoTrace is what Trace returns while Jaeger has no span of the trace yet.
var errNoTrace = errors.New("trace not found (yet)")

// Trace returns the trace with id (32 hex digits).
func (j *Jaeger) Trace(ctx context.Context, id string) (*Trace, error) {
	var out struct {
		Data []Trace `json:"data"`
	}
	err := j.call(ctx, http.MethodGet, "/api/traces/"+url.PathEscape(id), nil, nil, http.StatusOK, &out)
	if se := (*StatusError)(nil); errors.As(err, &se) && se.Status == http.StatusNotFound {
		return nil, errNoTrace
	}
	if err != nil {
		return nil, err
	}
	if len(out.Data) == 0 {
		return nil, errNoTrace
	}
	return &out.Data[0], nil
}

// Service is the name of the service that made s.
func (t *Trace) Service(s Span) string { return t.Processes[s.ProcessID].ServiceName }

// Services lists the services that took part in the trace.
func (t *Trace) Services() map[string]bool {
	out := map[string]bool{}
	for _, s := range t.Spans {
		out[t.Service(s)] = true
	}
	return out
}

// Parent is the span id s is a child of ("" for a root).
func (s Span) Parent() string {
	for _, r := range s.References {
		if r.RefType == "CHILD_OF" {
			return r.SpanID
		}
	}
	return ""
}

// Tag returns the value of the attribute key as text ("" when absent).
func (s Span) Tag(key string) string {
	for _, t := range s.Tags {
		if t.Key == key {
			return fmt.Sprint(t.Value)
		}
	}
	return ""
}

// Find returns the spans of service named op whose attributes include every key/value
// pair in attrs (alternating key, value).
func (t *Trace) Find(service, op string, attrs ...string) []Span {
	var out []Span
spans:
	for _, s := range t.Spans {
		if t.Service(s) != service || s.OperationName != op {
			continue
		}
		for i := 0; i+1 < len(attrs); i += 2 {
			if s.Tag(attrs[i]) != attrs[i+1] {
				continue spans
			}
		}
		out = append(out, s)
	}
	return out
}
