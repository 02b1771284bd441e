// Package livepage is the engine of Warren's live page (deploy/cmd/warren-live): a web page
// where a person places orders and watches each one flow through the system, step by step,
// next to the queues, their dead letters and the alerts that fire.
//
// The page's server is a client of Warren like any other: it logs in as a demo customer
// (shared/auth/login) and places orders through the order API, each with a trace id of its
// own in a W3C traceparent header, which the order service continues. It then reads what
// happened from the outside: the order's status from GET /orders/{id}, its steps from the
// trace in Jaeger's query API, queue depths and alerts from Prometheus. The browser gets
// all of it as server-sent events. Nothing here reaches into a service.
package livepage

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/warrenhq/warren/shared/auth/login"
	"github.com/warrenhq/warren/shared/events"
)

//go:embed web
var webFiles embed.FS

// Config is what the page reads from and writes to.
type Config struct {
	// OrderURL is the order API, e.g. http://order:8080.
	OrderURL string
	// JaegerURL is Jaeger's query API, e.g. http://jaeger:16686.
	JaegerURL string
	// JaegerUIURL is Jaeger's UI as the browser reaches it, for the links to each trace
	// (e.g. http://localhost:16686). Empty: JaegerURL.
	JaegerUIURL string
	// PrometheusURL is Prometheus's HTTP API, e.g. http://prometheus:9090. When it does not
	// answer, the queue and alert panels say so and the orders flow on.
	PrometheusURL string
	// PoisonAMQPURL lets the "poison message" button publish a malformed message straight
	// into PoisonQueue. Empty: the button is disabled. It needs a broker user allowed to
	// write to that queue through the default exchange, which no Warren service has: give
	// it only to a demo or a test, never to a page anyone else can reach.
	PoisonAMQPURL string
	// PoisonQueue is the queue the poison message goes to; empty: order.events.analytics.
	PoisonQueue string
	// Login is how the page logs its customer in; User and Password are that customer's.
	Login          login.Config
	User, Password string
	// HTTPClient calls the order API, Jaeger and Prometheus; nil: one with a 10 s timeout.
	HTTPClient *http.Client
	// SMSRegions are the regions whose confirmations sms texts (its SMS_REGIONS): an order
	// of another region, or one not confirmed, shows its sms step skipped. Nil:
	// events.DefaultSMSRegions.
	SMSRegions []events.Region
	// PollInterval is how often an order in flight, the queues and the alerts are read
	// again; zero: 1 s.
	PollInterval time.Duration
	// Logger reports what fails; nil: slog.Default().
	Logger *slog.Logger
}

// Page is the live page: its HTTP handler, and the pollers behind it (Run).
type Page struct {
	cfg    Config
	log    *slog.Logger
	http   *http.Client
	tokens *tokenSource
	hub    *hub
	poison *poisoner // nil when PoisonAMQPURL is empty
	rows   rows

	// ctx outlives requests: orders placed by a request are tracked after it has been
	// answered. Run cancels it when it returns.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a page for cfg. Nothing is contacted until Run and the first request.
func New(cfg Config) (*Page, error) {
	if cfg.OrderURL == "" || cfg.JaegerURL == "" {
		return nil, errors.New("livepage: the order API and Jaeger URLs are required")
	}
	if cfg.User == "" || cfg.Password == "" {
		return nil, errors.New("livepage: a demo customer's user name and password are required")
	}
	if cfg.JaegerUIURL == "" {
		cfg.JaegerUIURL = cfg.JaegerURL
	}
	if cfg.PoisonQueue == "" {
		cfg.PoisonQueue = events.QueueAnalytics
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.SMSRegions == nil {
		cfg.SMSRegions = events.DefaultSMSRegions
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	for _, u := range []*string{&cfg.OrderURL, &cfg.JaegerURL, &cfg.JaegerUIURL, &cfg.PrometheusURL} {
		*u = strings.TrimRight(*u, "/")
	}
	p := &Page{cfg: cfg, log: cfg.Logger, http: cfg.HTTPClient, hub: newHub()}
	p.tokens = &tokenSource{cfg: cfg.Login, user: cfg.User, password: cfg.Password}
	if cfg.PoisonAMQPURL != "" {
		p.poison = &poisoner{url: cfg.PoisonAMQPURL, queue: cfg.PoisonQueue}
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.hub.set("config", "config", pageConfig{
		Poison:      p.poison != nil,
		PoisonQueue: cfg.PoisonQueue,
		JaegerUI:    cfg.JaegerUIURL,
		Steps:       stepNames,
	})
	return p, nil
}

// pageConfig tells the browser what the page can do.
type pageConfig struct {
	Poison      bool     `json:"poison"`
	PoisonQueue string   `json:"poison_queue"`
	JaegerUI    string   `json:"jaeger_ui"`
	Steps       []string `json:"steps"`
}

// Run polls Prometheus (and the broker, for dead letters, when the poison button has one)
// until ctx ends, then stops tracking orders, ends the event streams and returns.
func (p *Page) Run(ctx context.Context) error {
	p.wg.Add(1)
	go func() { defer p.wg.Done(); p.pollPanels(p.ctx) }()
	<-ctx.Done()
	p.cancel()
	p.wg.Wait()
	if p.poison != nil {
		p.poison.close()
	}
	return nil
}

// headerPost is the header every POST from the page carries. A form on another site can
// post to 127.0.0.1 without it, but a script cannot add it without a CORS preflight,
// which this server never grants: no other page can place orders through this one.
const headerPost = "X-Warren-Live"

// Handler serves the page, its assets, the event stream and the buttons' endpoints.
func (p *Page) Handler() http.Handler {
	static, _ := fs.Sub(webFiles, "web")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
	mux.Handle("GET /", http.FileServerFS(static))
	mux.HandleFunc("GET /events", p.serveEvents)
	mux.HandleFunc("POST /orders", p.servePlace)
	mux.HandleFunc("POST /poison", p.servePoison)
	return loopbackOnly(mux)
}

// loopbackOnly answers only requests addressed to a loopback name: the page is served on
// 127.0.0.1, and a Host of another name is a DNS-rebinding attempt to read it from a
// foreign site.
func loopbackOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.Trim(host, "[]")
		if ip := net.ParseIP(host); !(host == "localhost" || ip != nil && ip.IsLoopback()) {
			http.Error(w, "the live page answers on localhost only", http.StatusMisdirectedRequest)
			return
		}
		if r.Method == http.MethodPost && r.Header.Get(headerPost) == "" {
			http.Error(w, "missing "+headerPost+" header", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// serveEvents streams the page's state: everything known at once, then every change.
func (p *Page) serveEvents(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	sub, snapshot := p.hub.subscribe()
	defer p.hub.unsubscribe(sub)
	write := func(msg []byte) bool {
		// One deadline per write: the stream lasts, a stuck client does not.
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(msg); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	for _, msg := range snapshot {
		if !write(msg) {
			return
		}
	}
	if !write([]byte(": connected\n\n")) {
		return
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case msg, ok := <-sub:
			if !ok || !write(msg) {
				return // dropped for falling behind: the browser reconnects and gets a snapshot
			}
		case <-keepalive.C:
			if !write([]byte(": keepalive\n\n")) {
				return
			}
		case <-r.Context().Done():
			return
		case <-p.ctx.Done():
			return
		}
	}
}

// servePlace places one order, or a burst of ten ({"count": 10}), and answers with their
// trace ids at once; the rows follow on the event stream.
func (p *Page) servePlace(w http.ResponseWriter, r *http.Request) {
	n := 1
	if r.URL.Query().Get("count") == "10" {
		n = 10
	}
	ids := make([]string, n)
	for i := range n {
		ids[i] = p.place()
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"trace_ids": ids})
}

// servePoison publishes one poison message when the page was given a broker URL for it.
func (p *Page) servePoison(w http.ResponseWriter, r *http.Request) {
	if p.poison == nil {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "poison messages are disabled: set LIVE_POISON_AMQP_URL"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	notice, err := p.poison.publish(ctx)
	if err != nil {
		p.log.Warn("poison message not published", "error", err)
		writeJSON(w, http.StatusBadGateway, map[string]string{"error": err.Error()})
		return
	}
	p.hub.publish("poison", notice)
	writeJSON(w, http.StatusAccepted, notice)
}

func (p *Page) jaegerTraceURL(traceID string) string {
	return fmt.Sprintf("%s/trace/%s", p.cfg.JaegerUIURL, traceID)
}
