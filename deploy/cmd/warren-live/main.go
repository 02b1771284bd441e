// Command warren-live serves Warren's live page (shared/livepage): buttons that place
// orders, and each order's row lighting up its steps as the system handles it, beside the
// queues, their dead letters and the alerts that fire. Open http://localhost:8090.
//
//	warren-live              serve (settings in Config)
//	warren-live healthcheck  probe a running one's /healthz (the image has no curl)
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/warrenhq/warren/deploy/internal/demousers"
	"github.com/warrenhq/warren/deploy/internal/hydraadmin"
	"github.com/warrenhq/warren/shared/auth/login"
	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/livepage"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/telemetry"
)

// Config is the live page's configuration, from the environment.
type Config struct {
	// Addr is where the page is served. Publish it on loopback only (compose:
	// 127.0.0.1:8090): the page places orders as its customer for whoever opens it.
	Addr string `env:"LIVE_ADDR" envDefault:":8090"`
	// OrderURL is the order API.
	OrderURL string `env:"LIVE_ORDER_URL" envDefault:"http://order:8080"`
	// JaegerURL is Jaeger's query API; JaegerUIURL is Jaeger's UI as the browser reaches it.
	JaegerURL   string `env:"LIVE_JAEGER_URL" envDefault:"http://jaeger:16686"`
	JaegerUIURL string `env:"LIVE_JAEGER_UI_URL" envDefault:"http://localhost:16686"`
	// PrometheusURL is Prometheus's HTTP API; when it does not answer, the panels say so.
	PrometheusURL string `env:"LIVE_PROMETHEUS_URL" envDefault:"http://prometheus:9090"`
	// PoisonAMQPURL enables the poison button: a broker user allowed to publish straight
	// into PoisonQueue. Unset by default, and in compose: no Warren user may do that.
	PoisonAMQPURL string `env:"LIVE_POISON_AMQP_URL"`
	PoisonQueue   string `env:"LIVE_POISON_QUEUE" envDefault:"order.events.analytics"`
	// Issuer is the OpenID Connect issuer the page logs its customer in with: the
	// host-facing URL, which Hydra's redirects and the tokens' iss name.
	Issuer string `env:"LIVE_OIDC_ISSUER" envDefault:"http://localhost:4444/"`
	// Resolve maps host:port pairs of those host-facing URLs to addresses inside the
	// network, as host=address pairs separated by commas: in a container, localhost is the
	// container, so the login's requests to localhost:4444 go to hydra:4444 instead (the
	// URLs, and so the Host headers and cookies, stay the same).
	Resolve string `env:"LIVE_RESOLVE" envDefault:"localhost:4444=hydra:4444,localhost:3000=login:3000"`
	// SMSRegions are the regions sms texts (set it as sms's SMS_REGIONS): other orders show
	// their sms step skipped.
	SMSRegions string `env:"LIVE_SMS_REGIONS" envDefault:"europe,americas"`
	// User is the demo customer the page logs in as; the password is theirs in UsersFile.
	User      string `env:"LIVE_USER" envDefault:"alice"`
	UsersFile string `env:"USERS_FILE" envDefault:"/run/secrets/warren/users.json"`
	// ShutdownTimeout is how long requests in flight may finish after SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(service.Probe("LIVE_ADDR", ":8090", "/healthz"))
	}
	level, _ := os.LookupEnv("LOG_LEVEL") // read before Config: it configures the logger that reports config errors
	logger := telemetry.NewLogger(os.Stdout, "live", level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger); err != nil {
		logger.Error("live failed", "error", err)
		os.Exit(1)
	}
	logger.Info("live stopped")
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := service.LoadConfig[Config](logger)
	if err != nil {
		return err
	}
	users, err := demousers.Load(cfg.UsersFile)
	if err != nil {
		return err
	}
	user, err := users.User(cfg.User)
	if err != nil {
		return fmt.Errorf("%s: %w", cfg.UsersFile, err)
	}
	resolve, err := parseResolve(cfg.Resolve)
	if err != nil {
		return err
	}
	smsRegions, err := events.ParseRegions(cfg.SMSRegions)
	if err != nil {
		return fmt.Errorf("config: LIVE_SMS_REGIONS: %w", err)
	}
	page, err := livepage.New(livepage.Config{
		OrderURL: cfg.OrderURL, JaegerURL: cfg.JaegerURL, JaegerUIURL: cfg.JaegerUIURL,
		PrometheusURL: cfg.PrometheusURL, PoisonAMQPURL: cfg.PoisonAMQPURL, PoisonQueue: cfg.PoisonQueue,
		Login: login.Config{
			Issuer: cfg.Issuer, ClientID: hydraadmin.CLIClientID, RedirectURL: hydraadmin.CLIRedirectURL,
			Audience: []string{hydraadmin.Audience}, HTTPClient: resolvingClient(resolve),
		},
		SMSRegions: smsRegions, User: user.Name, Password: user.Password, Logger: logger,
	})
	if err != nil {
		return err
	}
	// Not service.NewServer: its per-request deadline and write timeout would cut the
	// event stream; the page sets a deadline on each write of it instead.
	srv := &http.Server{Addr: cfg.Addr, Handler: page.Handler(), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 15 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
	return service.RunAll(ctx,
		func(ctx context.Context) error { return page.Run(ctx) },
		func(ctx context.Context) error { return service.Serve(ctx, srv, cfg.ShutdownTimeout, logger) })
}

// parseResolve reads LIVE_RESOLVE's host=address pairs.
func parseResolve(s string) (map[string]string, error) {
	out := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		from, to, ok := strings.Cut(pair, "=")
		if _, _, err := net.SplitHostPort(from); !ok || err != nil {
			return nil, fmt.Errorf("LIVE_RESOLVE: %q is not host:port=host:port", pair)
		}
		if _, _, err := net.SplitHostPort(to); err != nil {
			return nil, fmt.Errorf("LIVE_RESOLVE: %q is not host:port=host:port", pair)
		}
		out[from] = to
	}
	return out, nil
}

// resolvingClient dials resolve[address] instead of address when there is one.
func resolvingClient(resolve map[string]string) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if to, ok := resolve[addr]; ok {
			addr = to
		}
		return dialer.DialContext(ctx, network, addr)
	}
	return &http.Client{Timeout: 15 * time.Second, Transport: tr}
}
