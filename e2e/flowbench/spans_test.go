package flowbench

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// The collector is the benchmark's OpenTelemetry backend: the services export their spans
// to it over OTLP/HTTP (OTEL_EXPORTER_OTLP_ENDPOINT), as they export to Jaeger when
// deployed. Every order carries a trace id the benchmark chose (a traceparent header on
// its POST), so the spans of its trace tell when each consumer handled each of its events,
// and where the time went in between.

// hop is one message handled by one consumer: a "process <queue>" span for type.
type hop struct{ queue, typ string }

// span is what the benchmark keeps of an exported span.
type span struct {
	id, parent [8]byte
	service    string
	name       string
	kind       tracepb.Span_SpanKind
	start, end time.Time
	// queue (or exchange) and message type, for messaging spans.
	dest, typ string
	// db marks database spans: those with a db.system (or, in newer semantic conventions,
	// db.system.name) attribute, whatever they stand for (shared/postgres makes one per
	// transaction and one per statement outside a transaction).
	db bool
	// poolWait is how long a database span waited for a pooled connection before it
	// began (shared/postgres's db.pool.wait_ms attribute).
	poolWait time.Duration
}

func (s span) duration() time.Duration { return s.end.Sub(s.start) }

// traceRecord is one order's trace as it arrives.
type traceRecord struct {
	want  []hop
	spans []span
	seen  map[hop]time.Time // end of the first span of each wanted hop
	// done is when the last wanted hop ended; zero until every one has.
	done time.Time
}

type collector struct {
	mu     sync.Mutex
	traces map[[16]byte]*traceRecord
	// dropped counts spans that failed to decode (they would leave traces incomplete).
	dropped int
}

// startCollector serves OTLP/HTTP on a loopback port until b ends and returns its endpoint.
func startCollector(b testing.TB) (*collector, string) {
	b.Helper()
	c := &collector{traces: map[[16]byte]*traceRecord{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatalf("collector: %v", err)
	}
	srv := &http.Server{Handler: c, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	b.Cleanup(func() { _ = srv.Close() })
	return c, "http://" + ln.Addr().String()
}

// expect registers an order's trace and the hops that make it done. Spans of traces
// nobody expects (the outbox relays' polls, stock updates) are ignored.
func (c *collector) expect(id [16]byte, want []hop) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.traces[id] = &traceRecord{want: want, seen: map[hop]time.Time{}}
}

// ServeHTTP takes one OTLP export request (protobuf, as otlptracehttp sends it).
func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		gz, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = gz
	}
	data, err := io.ReadAll(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltracepb.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		c.mu.Lock()
		c.dropped++
		c.mu.Unlock()
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.add(&req)
	out, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (c *collector) add(req *coltracepb.ExportTraceServiceRequest) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.ResourceSpans {
		service := stringAttr(rs.GetResource().GetAttributes(), "service.name")
		for _, ss := range rs.ScopeSpans {
			for _, ps := range ss.Spans {
				db := stringAttr(ps.Attributes, "db.system") != "" || stringAttr(ps.Attributes, "db.system.name") != ""
				t := c.traces[[16]byte(ps.TraceId)]
				if t == nil || len(ps.TraceId) != 16 || len(ps.SpanId) != 8 {
					continue
				}
				s := span{
					id: [8]byte(ps.SpanId), service: service, name: ps.Name, kind: ps.Kind,
					start: time.Unix(0, int64(ps.StartTimeUnixNano)), end: time.Unix(0, int64(ps.EndTimeUnixNano)),
					dest: stringAttr(ps.Attributes, "messaging.destination.name"),
					typ:  stringAttr(ps.Attributes, "messaging.message.type"),
					db:   db, poolWait: msAttr(ps.Attributes, "db.pool.wait_ms"),
				}
				if len(ps.ParentSpanId) == 8 {
					s.parent = [8]byte(ps.ParentSpanId)
				}
				t.spans = append(t.spans, s)
				t.record(s)
			}
		}
	}
}

// record notes a consumer span of a wanted hop and, with the last one, when t was done.
func (t *traceRecord) record(s span) {
	if s.kind != tracepb.Span_SPAN_KIND_CONSUMER || !t.done.IsZero() {
		return
	}
	h := hop{s.dest, s.typ}
	if _, ok := t.seen[h]; ok {
		return // a redelivery: the first one counts
	}
	for _, w := range t.want {
		if w == h {
			t.seen[h] = s.end
		}
	}
	if len(t.seen) < len(t.want) {
		return
	}
	for _, end := range t.seen {
		if end.After(t.done) {
			t.done = end
		}
	}
}

// waitDone waits until every trace of ids is done, up to timeout, and returns when each
// one was done.
func (c *collector) waitDone(ids [][16]byte, timeout time.Duration) ([]time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		var pending *traceRecord
		npending := 0
		for _, id := range ids {
			if t := c.traces[id]; t.done.IsZero() {
				pending = t
				npending++
			}
		}
		if npending == 0 {
			done := make([]time.Time, len(ids))
			for i, id := range ids {
				done[i] = c.traces[id].done
			}
			c.mu.Unlock()
			return done, nil
		}
		missing := pending.missing()
		dropped := c.dropped
		c.mu.Unlock()
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("%d of %d orders not done after %s (one lacks %v; %d export requests undecodable)",
				npending, len(ids), timeout, missing, dropped)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (t *traceRecord) missing() []hop {
	var out []hop
	for _, w := range t.want {
		if _, ok := t.seen[w]; !ok {
			out = append(out, w)
		}
	}
	return out
}

// spansOf returns a copy of the spans of trace id.
func (c *collector) spansOf(id [16]byte) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]span(nil), c.traces[id].spans...)
}

func stringAttr(attrs []*commonpb.KeyValue, key string) string {
	for _, kv := range attrs {
		if kv.Key == key {
			return kv.GetValue().GetStringValue()
		}
	}
	return ""
}

// msAttr is the float attribute key of attrs, in milliseconds, as a duration (0 if absent).
func msAttr(attrs []*commonpb.KeyValue, key string) time.Duration {
	for _, a := range attrs {
		if a.GetKey() == key {
			return time.Duration(a.GetValue().GetDoubleValue() * float64(time.Millisecond))
		}
	}
	return 0
}
