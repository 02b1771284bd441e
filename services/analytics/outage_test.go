package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/testkit"
)

// The service's database refuses every connection for longer than the two minutes the
// consumer once waited before dead-lettering, while events keep arriving. The consumer
// pauses (readiness says so) and, once the database is back, counts every event exactly
// once; nothing is dead-lettered.
func TestDatabaseOutageLongerThanTwoMinutesLosesNothing(t *testing.T) {
	const (
		eventCount = 10
		outage     = 130 * time.Second
	)
	pg := testkit.SharedPostgres(t)
	dbURL := pg.Database(t)
	h := startService(t, "analytics", events.Topology(events.DefaultSMSRegions), map[string]string{"DATABASE_URL": dbURL})
	h.PublishFanout(events.TypeOrderPlaced, "m-before", placed("o-before", events.RegionEurope, 100))
	h.waitStats(1)

	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	database := strings.TrimPrefix(u.Path, "/")
	admin, err := pgx.Connect(context.Background(), pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	adminExec := func(sql string, args ...any) {
		t.Helper()
		if _, err := admin.Exec(context.Background(), sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// The database goes away as far as the service can tell: its connections are cut and
	// new ones refused.
	adminExec(`ALTER DATABASE ` + database + ` ALLOW_CONNECTIONS false`)
	adminExec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1`, database)
	down := time.Now()
	for i := range eventCount {
		id := fmt.Sprintf("o-%d", i)
		h.PublishFanout(events.TypeOrderPlaced, "m-"+id, placed(id, events.RegionEurope, 100))
	}
	testkit.Eventually(t, 30*time.Second, func() string {
		status, body := getReadyz(t, h)
		if status != http.StatusServiceUnavailable || !strings.Contains(body, "consumer of "+events.QueueAnalytics+" paused") ||
			!strings.Contains(body, "postgres unavailable") {
			return fmt.Sprintf("/readyz %d %s; want the consumer of %s paused on postgres", status, body, events.QueueAnalytics)
		}
		return ""
	})
	time.Sleep(outage - time.Since(down))
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueAnalytics)); n != 0 {
		t.Fatalf("%d messages dead-lettered during the outage, want none", n)
	}

	adminExec(`ALTER DATABASE ` + database + ` ALLOW_CONNECTIONS true`)
	st := h.waitStats(1 + eventCount)
	if n := st.Events[events.TypeOrderPlaced]; n != 1+eventCount {
		t.Errorf("%d OrderPlaced counted, want %d (each once)", n, 1+eventCount)
	}
	if n := testkit.Depth(t, h.Ch, messaging.DeadLetterQueueName(events.QueueAnalytics)); n != 0 {
		t.Errorf("%d messages dead-lettered, want none", n)
	}
}

// getReadyz returns GET /readyz's status and body, whatever the status.
func getReadyz(t *testing.T, h *harness) (int, string) {
	t.Helper()
	resp, err := http.Get(h.OpsURL + "/readyz")
	if err != nil {
		t.Fatalf("GET /readyz: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
