// Command warren-login is Warren's login and consent app for Ory Hydra. Hydra is the
// OpenID Connect provider but knows no users: it sends the browser here to log in
// (/login) and to consent (/consent), and this app (deploy/internal/loginapp) tells
// Hydra's admin API who the user is and which claims go into their tokens. Users and
// their passwords come from the users file `warrenctl secrets init` writes
// (deploy/internal/demousers).
//
//	warren-login              serve (settings in Config)
//	warren-login healthcheck  probe a running one's /healthz (the image has no curl)
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/warrenhq/warren/deploy/internal/demousers"
	"github.com/warrenhq/warren/deploy/internal/hydraadmin"
	"github.com/warrenhq/warren/deploy/internal/loginapp"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/telemetry"
)

// Config is the login app's configuration, from the environment.
type Config struct {
	// Addr is where the login and consent pages (and /healthz) are served.
	Addr string `env:"LOGIN_ADDR" envDefault:":3000"`
	// HydraAdminURL is Hydra's admin API, which accepts logins and consents. Never expose
	// it: it has no authentication.
	HydraAdminURL string `env:"HYDRA_ADMIN_URL" envDefault:"http://localhost:4445"`
	// UsersFile is the users file; it is read on each login, so a new `secrets init` is
	// seen without a restart.
	UsersFile string `env:"USERS_FILE" envDefault:"/run/secrets/warren/users.json"`
	// TrustedClients are the first-party OAuth 2 clients whose consent is given at once;
	// any other client's consent is refused.
	TrustedClients []string `env:"TRUSTED_CLIENTS" envDefault:"warren-cli" envSeparator:","`
	// RequestTimeout bounds one request, Hydra's answers included.
	RequestTimeout time.Duration `env:"REQUEST_TIMEOUT" envDefault:"15s"`
	// ShutdownTimeout is how long requests in flight may finish after SIGTERM.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s"`
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "healthcheck" {
		os.Exit(service.Probe("LOGIN_ADDR", ":3000", "/healthz"))
	}
	level, _ := os.LookupEnv("LOG_LEVEL") // read before Config: it configures the logger that reports config errors
	logger := telemetry.NewLogger(os.Stdout, "login", level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, logger); err != nil {
		logger.Error("login failed", "error", err)
		os.Exit(1)
	}
	logger.Info("login stopped")
}

func run(ctx context.Context, logger *slog.Logger) error {
	cfg, err := service.LoadConfig[Config](logger)
	if err != nil {
		return err
	}
	// Fail at start rather than at the first login when the volume is not there.
	if _, err := demousers.Load(cfg.UsersFile); err != nil {
		return err
	}
	h, err := loginapp.Handler(loginapp.Config{Hydra: hydraadmin.New(cfg.HydraAdminURL), UsersFile: cfg.UsersFile,
		TrustedClients: cfg.TrustedClients, Logger: logger})
	if err != nil {
		return err
	}
	srv := service.NewServer(cfg.Addr, cfg.RequestTimeout, h)
	return service.Serve(ctx, srv, cfg.ShutdownTimeout, logger)
}
