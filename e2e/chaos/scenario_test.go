package chaos

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/e2e"
)

// The load every scenario places: 1,200 orders at 60 a second, 12 in flight at most, so
// about 20 s of load when nothing goes wrong; the fault comes after the first 400.
var defaultLoad = Load{Orders: 1200, Concurrency: 12, Rate: 60, Deadline: 3 * time.Minute, CancelEvery: 25}

const faultAfter = 400

// scenario is one chaos test: a system of its own (a fault leaves state behind), a load,
// one fault injected while the load runs, then the reconciliation.
type scenario struct {
	t      *testing.T
	sys    *e2e.System
	broker Broker
	load   Load
	run    *Run
	poison []Poison
	report Report
	// unavoidable is what this scenario's fault makes unavoidable, and the stricter checks
	// of finish accept; each scenario that sets it says why in its comment.
	unavoidable unavoidable

	faultStart, faultEnd time.Time
}

// unavoidable names the effects a fault may make unavoidable. By default none is: a mail
// sent twice, or a 5xx sent while no fault is on, fails the scenario.
type unavoidable struct {
	// resentMails is how many mails may reach the SMTP server a second time, with the
	// Message-ID of the first (see Report.Resent).
	resentMails int
}

// newScenario starts a system for the scenario, with every port fixed so that containers
// can be restarted, and sets the initial stock. It skips t unless WARREN_CHAOS=1. The
// containers' logs are saved when t fails, or always with WARREN_CHAOS_LOGS=1.
func newScenario(t *testing.T, name string, opts ...e2e.Option) *scenario {
	t.Helper()
	if os.Getenv("WARREN_CHAOS") != "1" {
		t.Skip("chaos scenario: set WARREN_CHAOS=1 (make chaos) to run it; each starts a whole system and takes minutes")
	}
	if testing.Short() {
		t.Skip("chaos scenario: not under -short")
	}
	unlock, err := e2e.LockHost()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(unlock)
	ctx := context.WithoutCancel(t.Context())
	if n, err := e2e.ReapLeftovers(ctx); err != nil || n > 0 {
		t.Logf("removed %d leftovers of killed runs (errors: %v)", n, err)
	}
	t0 := time.Now()
	// The load is one customer placing hundreds of orders a second and leaving them pending
	// through every fault: what the per-customer quotas exist to refuse. They are off here;
	// the order service's own tests prove them.
	opts = append(opts, e2e.WithFixedHostPorts(),
		e2e.WithServiceEnv("order", map[string]string{"ORDER_RATE_PER_CUSTOMER": "0", "OPEN_ORDERS_PER_CUSTOMER": "0"}))
	sys, err := e2e.Start(t.Context(), e2e.ImagesFromEnv(), t.Logf, opts...)
	if err != nil {
		t.Fatalf("start the system: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() || os.Getenv("WARREN_CHAOS_LOGS") == "1" {
			saveLogs(t, ctx, sys, name)
		}
		if err := sys.Close(ctx); err != nil {
			t.Logf("close: %v", err)
		}
	})
	t.Logf("system up in %s", time.Since(t0).Round(100*time.Millisecond))
	sc := &scenario{t: t, sys: sys, load: defaultLoad, report: Report{Scenario: name},
		broker: Broker{API: sys.ManagementURL, AMQPURL: sys.AMQPURL}}
	for sku, n := range initialStock {
		body := map[string]int{"available": n}
		if err := call(t.Context(), sys.Inventory.Token(), http.MethodPut, sys.Inventory.URL()+"/stock/"+sku, body, http.StatusOK, nil); err != nil {
			t.Fatalf("set the stock of %s: %v", sku, err)
		}
	}
	return sc
}

// saveLogs writes every container's whole log to a folder of its own, for the
// investigation a failed scenario calls for, and says where.
func saveLogs(t *testing.T, ctx context.Context, sys *e2e.System, scenario string) {
	dir, err := os.MkdirTemp("", "warren-chaos-"+scenario+"-")
	if err != nil {
		t.Logf("save logs: %v", err)
		return
	}
	for _, name := range sys.ContainerNames() {
		text, err := sys.Logs(ctx, name)
		if err != nil {
			text = err.Error()
		}
		if err := os.WriteFile(filepath.Join(dir, name+".log"), []byte(text), 0o644); err != nil {
			t.Logf("save logs: %v", err)
		}
	}
	t.Logf("containers' logs saved in %s", dir)
}

// startLoad starts placing the load and returns once faultAfter orders were started.
func (sc *scenario) startLoad() {
	sc.run = sc.load.Start(sc.t.Context(), sc.sys.Order.URL(), sc.sys.Order.Token())
	sc.run.WaitStarted(sc.t.Context(), faultAfter)
}

// fault injects a fault: inject returns once it is over (the container is back, the
// network reconnected). Its duration goes into the report.
func (sc *scenario) fault(what string, inject func(ctx context.Context) error) {
	sc.t.Helper()
	sc.t.Logf("fault: %s (after %d orders started; in the work queues, ready+unacked: %s)", what, sc.run.Counts().Sent, sc.backlog())
	sc.faultStart = time.Now()
	if err := inject(sc.t.Context()); err != nil {
		sc.t.Fatalf("fault %s: %v", what, err)
	}
	sc.faultEnd = time.Now()
	sc.t.Logf("fault over after %s", sc.faultEnd.Sub(sc.faultStart).Round(100*time.Millisecond))
}

// backlog sums up what the work queues hold, as the management API last saw it.
func (sc *scenario) backlog() string {
	queues, err := sc.broker.Queues(sc.t.Context())
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, name := range workQueues {
		fmt.Fprintf(&b, "%s %d+%d ", name, queues[name].Ready, queues[name].Unacked)
	}
	return strings.TrimSpace(b.String())
}

// finish times the recovery with a probe order, waits for the load, reconciles and prints
// the scenario's figures.
func (sc *scenario) finish() {
	sc.t.Helper()
	recovery, err := sc.run.Probe(sc.t.Context())
	if err != nil {
		sc.t.Errorf("recovery: %v", err)
	}
	orders := sc.run.Wait()
	sc.report.Load = sc.run.Counts()
	sc.report.Fault, sc.report.Recovery = sc.faultEnd.Sub(sc.faultStart), recovery
	if c := sc.report.Load; c.Rejected > 0 {
		sc.t.Errorf("%d order requests were refused with a 4xx other than 429", c.Rejected)
	}
	Reconcile(sc.t, sc.sys, sc.broker, orders, sc.poison, &sc.report)
	sc.checkUnavoidable()
	line := sc.report.String()
	sc.t.Log(line)
	fmt.Println(line)
}

// checkUnavoidable fails the scenario for resent mails and 5xx answers its fault does not
// explain: more resent mails than sc.unavoidable allows; a 5xx answered before the fault,
// or to a request sent after it (no scenario so far needs time after its fault: each
// fault returns only once the services are ready again).
func (sc *scenario) checkUnavoidable() {
	if n, allowed := sc.report.Resent, sc.unavoidable.resentMails; n > allowed {
		sc.t.Errorf("%d mails reached the SMTP server twice; the fault explains at most %d", n, allowed)
	}
	late := sc.run.ServerErrorsOutside(sc.faultStart, sc.faultEnd)
	sc.report.StrayServerErrors = len(late)
	var at []string
	for _, t := range late {
		at = append(at, fmt.Sprintf("%+.1fs", t.Sub(sc.faultEnd).Seconds()))
	}
	report(sc.t, fmt.Sprintf("5xx answers the fault does not explain, answered before it or sent after it (it ran %s)",
		sc.faultEnd.Sub(sc.faultStart).Round(100*time.Millisecond)), at)
}

// waitReady waits until each named service answers /readyz with 200: connected to the
// broker and the database again.
func (sc *scenario) waitReady(ctx context.Context, names ...string) error {
	for _, name := range names {
		ops, err := sc.opsURL(name)
		if err != nil {
			return err
		}
		if err := poll(ctx, 2*time.Minute, func() error {
			return call(ctx, "", http.MethodGet, ops+"/readyz", nil, http.StatusOK, nil)
		}); err != nil {
			return fmt.Errorf("%s not ready: %w", name, err)
		}
	}
	return nil
}

// opsURL is the base URL of the named service's operational endpoints.
func (sc *scenario) opsURL(name string) (string, error) {
	switch name {
	case "order":
		return sc.sys.Order.OpsURL(), nil
	case "inventory":
		return sc.sys.Inventory.OpsURL(), nil
	case "sms":
		return sc.sys.SMS.OpsURL(), nil
	case "analytics":
		return sc.sys.Analytics.OpsURL(), nil
	}
	for _, e := range sc.sys.Email {
		if e.Name == name {
			return e.OpsURL(), nil
		}
	}
	if o, ok := sc.sys.OrderReplicas[name]; ok {
		return o.OpsURL(), nil
	}
	return "", fmt.Errorf("no service named %q", name)
}

// allServices are the services' containers.
var allServices = []string{"order", "inventory", "email-1", "email-2", "sms", "analytics"}

// waitBroker waits until the management API of b answers.
func waitBroker(ctx context.Context, b Broker) error {
	return poll(ctx, 2*time.Minute, func() error {
		return call(ctx, "", http.MethodGet, b.API+"/api/overview", nil, http.StatusOK, nil)
	})
}

// nodeBroker is a Broker on one node of the system's broker, through its fixed ports.
func nodeBroker(ctx context.Context, sys *e2e.System, node string) (Broker, error) {
	with := func(base, port string) (string, error) {
		u, err := url.Parse(base)
		if err != nil {
			return "", err
		}
		if u.Host, err = sys.Endpoint(ctx, node, port); err != nil {
			return "", err
		}
		return u.String(), nil
	}
	api, err := with(sys.ManagementURL, "15672/tcp")
	if err != nil {
		return Broker{}, err
	}
	amqpURL, err := with(sys.AMQPURL, "5672/tcp")
	return Broker{API: api, AMQPURL: amqpURL}, err
}

// poll calls check until it returns nil, or returns its last error after timeout.
func poll(ctx context.Context, timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || !sleep(ctx, 200*time.Millisecond) {
			return err
		}
	}
}
