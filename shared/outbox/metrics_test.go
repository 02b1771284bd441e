package outbox_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/testkit"
)

// While events wait in the outbox (here: another replica holds the lease and publishes
// nothing), the relay standing by reports them and the age of the oldest; once it takes
// over and the broker confirmed them, the backlog is 0 and each event counts as published
// and timed, with its trace's id as the exemplar.
func TestRelayMetricsShowTheBacklogAndThePublishes(t *testing.T) {
	e := newEnv(t, testkit.SharedRabbitMQ(t).VHost(t))
	reg := prometheus.NewRegistry()
	relay := e.newRelay(t, outbox.Config{Metrics: outbox.NewMetrics(reg), BacklogInterval: 100 * time.Millisecond})
	metrics := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	defer metrics.Close()
	scrape := func() string {
		req, _ := http.NewRequest(http.MethodGet, metrics.URL, nil)
		req.Header.Set("Accept", "application/openmetrics-text; version=1.0.0")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	ctx := context.Background()
	if _, err := e.pool.Exec(ctx, `INSERT INTO outbox_relay_lease (holder, expires_at) VALUES ('another-replica', now() + interval '1 hour')`); err != nil {
		t.Fatal(err)
	}
	traceID := trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}
	traced := trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7}, TraceFlags: trace.FlagsSampled}))
	e.store(traced, t, true, "a", "b")
	e.store(traced, t, true, "c")
	run(t, relay)

	testkit.Eventually(t, 10*time.Second, func() string {
		text := scrape()
		if n, age := sample(text, "warren_outbox_unpublished_events"), sample(text, "warren_outbox_oldest_unpublished_age_seconds"); n != 3 || age <= 0 {
			return "unpublished " + strconv.FormatFloat(n, 'g', -1, 64) + ", oldest " + strconv.FormatFloat(age, 'g', -1, 64) + " s; want 3 and > 0"
		}
		return ""
	})
	if n := sample(scrape(), "warren_outbox_published_total"); n != 0 || testkit.Depth(t, e.ch, events.QueueInventory) != 0 {
		t.Fatalf("published %g while another replica holds the lease, want 0", n)
	}

	// The other replica gives the lease up, as a relay that stops does.
	if _, err := e.pool.Exec(ctx, `UPDATE outbox_relay_lease SET expires_at = '-infinity'`); err != nil {
		t.Fatal(err)
	}
	e.receive(t, 3, 20*time.Second)
	testkit.Eventually(t, 10*time.Second, func() string {
		text := scrape()
		n, age, published := sample(text, "warren_outbox_unpublished_events"), sample(text, "warren_outbox_oldest_unpublished_age_seconds"),
			sample(text, "warren_outbox_published_total")
		if n != 0 || age != 0 || published != 3 || sample(text, "warren_outbox_publish_duration_seconds_count") != 3 {
			return "unpublished " + strconv.FormatFloat(n, 'g', -1, 64) + ", oldest " + strconv.FormatFloat(age, 'g', -1, 64) +
				" s, published " + strconv.FormatFloat(published, 'g', -1, 64) + "; want 0, 0, 3 and 3 timed:\n" + text
		}
		return ""
	})
	text := scrape()
	if !strings.Contains(text, `# {trace_id="`+traceID.String()+`"}`) {
		t.Errorf("no exemplar with trace %s in:\n%s", traceID, text)
	}
}

// sample is the value of the unlabelled series name in a scrape, or -1 when absent.
func sample(text, name string) float64 {
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.Fields(rest)[0], 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
