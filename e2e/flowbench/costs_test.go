package flowbench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// What one order costs besides CPU, counted from outside the services so that a change
// that adds a round trip, a transaction, a delivery or a span shows as a number: the
// counters are read before and after the max-rate phase and divided by its orders.
//
//	round trips   each service's warren_db_round_trips_total (its ops /metrics): one per
//	              statement, BEGIN and COMMIT included, per pgx batch, per COPY
//	transactions  xact_commit + xact_rollback of each service's database (pg_stat_database)
//	statements    calls in each service's database (pg_stat_statements), when the server
//	              preloads it
//	deliveries    deliver_get of every queue of the vhost (the management API)
//	spans         every span of the phase's traces (the benchmark's collector), and those
//	              of them that are database spans (db.system)

// statsSettle is how long the benchmark waits before reading the statistics that the
// servers publish late: a PostgreSQL backend that goes idle flushes its counters to
// pg_stat_database within 10 s (PGSTAT_IDLE_INTERVAL), and RabbitMQ's management API
// refreshes a queue's figures every 5 s (collect_statistics_interval).
const statsSettle = 12 * time.Second

// roundTripsMetric is the counter each service's ops listener serves; until a service has
// it, its round trips are reported as n/a.
const roundTripsMetric = "warren_db_round_trips_total"

// costMeter reads the counters. Its own queries run in the server's "postgres" database,
// which no service uses, so they count in no service's figures.
type costMeter struct {
	sys  *system
	conn *pgx.Conn
}

// costSample is the counters at one moment.
type costSample struct {
	// roundTrips by service; a service that does not serve the counter is absent.
	roundTrips map[string]float64
	// xacts by service: its database's transactions.
	xacts map[string]int64
	// statements by service and statement; nil when the server does not track them.
	statements map[statementKey]statementStats
	// deliveries by queue.
	deliveries map[string]int64
}

type statementKey struct {
	service string
	queryID int64
}

type statementStats struct {
	query string
	calls int64
	ms    float64 // total execution time
}

func newCostMeter(ctx context.Context, sys *system) (*costMeter, error) {
	conn, err := pgx.Connect(ctx, sys.infra.adminURL)
	if err != nil {
		return nil, fmt.Errorf("cost meter: %w", err)
	}
	return &costMeter{sys: sys, conn: conn}, nil
}

func (m *costMeter) close() { _ = m.conn.Close(context.Background()) }

// settings are the server's durability settings as it reports them (SHOW), in the order
// the benchmark prints them.
var settings = []string{"fsync", "synchronous_commit", "full_page_writes", "wal_sync_method", "shared_preload_libraries"}

func (m *costMeter) settings(ctx context.Context) (map[string]string, error) {
	out := map[string]string{}
	for _, name := range settings {
		var v string
		if err := m.conn.QueryRow(ctx, "SHOW "+name).Scan(&v); err != nil {
			return nil, fmt.Errorf("show %s: %w", name, err)
		}
		out[name] = v
	}
	return out, nil
}

// now reads the counters that are exact at once: the services' round trips and the
// statement statistics (pg_stat_statements updates its table as each statement ends).
func (m *costMeter) now(ctx context.Context, s *costSample) error {
	s.roundTrips = map[string]float64{}
	for _, name := range services {
		v, ok, err := scrapeCounter(ctx, m.sys.ops[name]+"/metrics", roundTripsMetric)
		if err != nil {
			return fmt.Errorf("round trips of %s: %w", name, err)
		}
		if ok {
			s.roundTrips[name] = v
		}
	}
	if !m.sys.infra.statements {
		return nil
	}
	rows, err := m.conn.Query(ctx, `
		SELECT d.datname, coalesce(s.queryid, 0), s.query, s.calls, s.total_exec_time
		FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
		WHERE d.datname = any($1)`, services)
	if err != nil {
		return fmt.Errorf("pg_stat_statements: %w", err)
	}
	s.statements = map[statementKey]statementStats{}
	for rows.Next() {
		var k statementKey
		var st statementStats
		if err := rows.Scan(&k.service, &k.queryID, &st.query, &st.calls, &st.ms); err != nil {
			return fmt.Errorf("pg_stat_statements: %w", err)
		}
		// The same statement may show as several rows (one per user, or top-level and
		// not): add them up.
		prev := s.statements[k]
		st.calls += prev.calls
		st.ms += prev.ms
		s.statements[k] = st
	}
	return rows.Err()
}

// settled reads the counters that the servers publish late: call it statsSettle after
// the last activity to be counted.
func (m *costMeter) settled(ctx context.Context, s *costSample) error {
	rows, err := m.conn.Query(ctx, `
		SELECT datname, xact_commit + xact_rollback FROM pg_stat_database WHERE datname = any($1)`, services)
	if err != nil {
		return fmt.Errorf("pg_stat_database: %w", err)
	}
	s.xacts = map[string]int64{}
	for rows.Next() {
		var name string
		var n int64
		if err := rows.Scan(&name, &n); err != nil {
			return fmt.Errorf("pg_stat_database: %w", err)
		}
		s.xacts[name] = n
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("pg_stat_database: %w", err)
	}
	s.deliveries, err = queueDeliveries(ctx, m.sys.infra.apiURL)
	return err
}

// queueDeliveries is how many messages the broker has delivered from each queue of the
// default vhost, redeliveries included.
func queueDeliveries(ctx context.Context, apiURL string) (map[string]int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, apiURL+"/api/queues/%2F?columns=name,message_stats", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("queues: %s", resp.Status)
	}
	var queues []struct {
		Name  string `json:"name"`
		Stats struct {
			DeliverGet int64 `json:"deliver_get"`
		} `json:"message_stats"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&queues); err != nil {
		return nil, fmt.Errorf("queues: %w", err)
	}
	out := map[string]int64{}
	for _, q := range queues {
		out[q.Name] = q.Stats.DeliverGet
	}
	return out, nil
}

// scrapeCounter sums the samples of counter name (whatever their labels) in the
// Prometheus text that url serves, and reports false when it has none.
func scrapeCounter(ctx context.Context, url, name string) (float64, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, false, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue // a comment, another metric, or one whose name only starts the same
		}
		fields := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(fields) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return 0, false, fmt.Errorf("%s: %q: %w", url, line, err)
		}
		sum += v
		found = true
	}
	return sum, found, sc.Err()
}

// orderCosts are the per-order figures of one phase.
type orderCosts struct {
	orders int
	// by service; roundTrips lacks a service that does not serve the counter.
	roundTrips, xacts, statements, spans, dbSpans map[string]float64
	// deliveries by queue.
	deliveries map[string]float64
	// statementRows are the statements, costliest first.
	statementRows []statementRow
}

type statementRow struct {
	service, query string
	calls, ms      float64 // per order
}

func newOrderCosts(before, after costSample, c *collector, orders []*order) orderCosts {
	n := float64(len(orders))
	oc := orderCosts{orders: len(orders), roundTrips: map[string]float64{}, xacts: map[string]float64{},
		statements: map[string]float64{}, spans: map[string]float64{}, dbSpans: map[string]float64{},
		deliveries: map[string]float64{}}
	for name, v := range after.roundTrips {
		if b, ok := before.roundTrips[name]; ok {
			oc.roundTrips[name] = (v - b) / n
		}
	}
	for name, v := range after.xacts {
		oc.xacts[name] = float64(v-before.xacts[name]) / n
	}
	for q, v := range after.deliveries {
		if d := v - before.deliveries[q]; d != 0 {
			oc.deliveries[q] = float64(d) / n
		}
	}
	for k, st := range after.statements {
		calls := st.calls - before.statements[k].calls
		if calls == 0 {
			continue
		}
		oc.statements[k.service] += float64(calls) / n
		oc.statementRows = append(oc.statementRows, statementRow{service: k.service, query: st.query,
			calls: float64(calls) / n, ms: (st.ms - before.statements[k].ms) / n})
	}
	sort.Slice(oc.statementRows, func(i, j int) bool { return oc.statementRows[i].ms > oc.statementRows[j].ms })
	for _, o := range orders {
		for _, s := range c.spansOf(o.trace) {
			oc.spans[s.service]++
			if s.db {
				oc.dbSpans[s.service]++
			}
		}
	}
	for name := range oc.spans {
		oc.spans[name] /= n
		oc.dbSpans[name] /= n
	}
	return oc
}

func sum(m map[string]float64) float64 {
	var t float64
	for _, v := range m {
		t += v
	}
	return t
}

// print writes the per-order figures by service, the deliveries by queue and the
// costliest statements.
func (oc orderCosts) print(w io.Writer, statements bool) {
	fmt.Fprintf(w, "\nwhat one order costs in the max-rate phase (%d orders)\n", oc.orders)
	fmt.Fprintf(w, "  %-22s %12s %13s %11s %8s %9s\n", "service", "round trips", "transactions", "statements", "spans", "db spans")
	na := func(m map[string]float64, name string, ok bool) string {
		if !ok {
			return "n/a"
		}
		return fmt.Sprintf("%.2f", m[name])
	}
	for _, name := range services {
		_, rt := oc.roundTrips[name]
		fmt.Fprintf(w, "  %-22s %12s %13.2f %11s %8.2f %9.2f\n", name, na(oc.roundTrips, name, rt), oc.xacts[name],
			na(oc.statements, name, statements), oc.spans[name], oc.dbSpans[name])
	}
	rt := "n/a"
	if len(oc.roundTrips) > 0 {
		rt = fmt.Sprintf("%.2f", sum(oc.roundTrips))
		if len(oc.roundTrips) < len(services) {
			rt += "*"
		}
	}
	st := "n/a"
	if statements {
		st = fmt.Sprintf("%.2f", sum(oc.statements))
	}
	fmt.Fprintf(w, "  %-22s %12s %13.2f %11s %8.2f %9.2f\n", "all services", rt, sum(oc.xacts), st, sum(oc.spans), sum(oc.dbSpans))
	if rt != "n/a" && strings.HasSuffix(rt, "*") {
		fmt.Fprintf(w, "  * of the services that serve %s only\n", roundTripsMetric)
	}
	queues := make([]string, 0, len(oc.deliveries))
	for q := range oc.deliveries {
		queues = append(queues, q)
	}
	sort.Strings(queues)
	fmt.Fprintf(w, "  deliveries by the broker: %.2f per order:", sum(oc.deliveries))
	for _, q := range queues {
		fmt.Fprintf(w, "  %s %.2f", q, oc.deliveries[q])
	}
	fmt.Fprintln(w)
	if !statements {
		fmt.Fprintln(w, "  (statements: the database image has no pg_stat_statements)")
		return
	}
	fmt.Fprintf(w, "\ndatabase statements per order in the max-rate phase (pg_stat_statements), costliest first\n")
	fmt.Fprintf(w, "  %-10s %9s %8s %8s  %s\n", "service", "per order", "mean ms", "ms/order", "statement")
	for _, r := range oc.statementRows[:min(len(oc.statementRows), dbWorkRows)] {
		q := strings.Join(strings.Fields(r.query), " ")
		if len(q) > 70 {
			q = q[:67] + "..."
		}
		fmt.Fprintf(w, "  %-10s %9.2f %8.3f %8.3f  %s\n", r.service, r.calls, r.ms/r.calls, r.ms, q)
	}
}
