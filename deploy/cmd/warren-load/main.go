// Command warren-load is Warren's load generator: it places orders on a running system at
// a steady rate (LOAD_RATE orders/s) as LOAD_CUSTOMERS load-test customers, with a mix of
// regions, out-of-stock orders (which inventory must reject), cancellations and stock
// queries, until LOAD_COUNT orders or LOAD_DURATION, whichever comes first. It waits for
// every order to settle, prints a line of figures every LOAD_PROGRESS and a summary, and
// exits 1 when anything went otherwise than the mix says: an unexpected HTTP answer, an
// order still pending after LOAD_SETTLE_TIMEOUT, or one settled in the wrong status.
//
//	docker compose --profile load up load     # against the compose stack (make load)
//	LOAD_RATE=50 LOAD_COUNT=3000 warren-load  # against localhost's published ports
//
// The customers are load-01 .. load-40, which `warrenctl secrets init` writes into the
// login app's users file with generated passwords; warren-load reads them there
// (USERS_FILE) and logs each in through the OpenID Connect provider, as warrenctl token
// does. The order service's quotas apply to them as to anyone (2 orders/s and 20 pending
// orders per customer by default): the generator honours every Retry-After, so a rate
// above what the customers may place shows as throttled requests and a lower rate, not
// as errors. The engine is shared/loadgen.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/warrenhq/warren/deploy/internal/demousers"
	"github.com/warrenhq/warren/deploy/internal/hydraadmin"
	"github.com/warrenhq/warren/shared/auth/login"
	"github.com/warrenhq/warren/shared/loadgen"
	"github.com/warrenhq/warren/shared/service"
	"github.com/warrenhq/warren/shared/telemetry"
)

// Config is a run's settings, from the environment.
type Config struct {
	// OrderURL and InventoryURL are the APIs, as the host reaches compose's published
	// ports (the load container runs on the host's network, like token).
	OrderURL     string `env:"LOAD_ORDER_URL" envDefault:"http://localhost:8081"`
	InventoryURL string `env:"LOAD_INVENTORY_URL" envDefault:"http://localhost:8082"`
	// Issuer is the OpenID Connect provider the customers log in with.
	Issuer string `env:"OIDC_ISSUER" envDefault:"http://localhost:4444/"`
	// UsersFile holds the load-test customers' passwords (secrets init writes it).
	UsersFile string `env:"USERS_FILE" envDefault:"/run/secrets/warren/users.json"`
	// Customers is how many of load-01 .. load-40 place orders, in turn. Each may place
	// 2 orders/s: 40 carry up to 80/s.
	Customers int `env:"LOAD_CUSTOMERS" envDefault:"40"`
	// RestockUser is a staff user (sam) who tops up the in-stock SKUs before the run so
	// that it cannot exhaust them; empty leaves the stock as it is.
	RestockUser string `env:"LOAD_RESTOCK_USER"`

	// Rate is orders started per second.
	Rate float64 `env:"LOAD_RATE" envDefault:"10"`
	// Count and Duration end the run, whichever comes first; 0 is no bound of that kind.
	Count    int           `env:"LOAD_COUNT" envDefault:"600"`
	Duration time.Duration `env:"LOAD_DURATION" envDefault:"5m"`
	// OutOfStock is the share of orders inventory must reject (for OutOfStockSKU), Cancel
	// the share cancelled once confirmed.
	OutOfStock float64 `env:"LOAD_OUT_OF_STOCK" envDefault:"0.2"`
	Cancel     float64 `env:"LOAD_CANCEL" envDefault:"0.1"`
	// StockQueries is the GET /stock/{sku} sent to inventory per order.
	StockQueries float64 `env:"LOAD_STOCK_QUERIES" envDefault:"0.5"`
	// Regions are where orders ship, with weights (the sms service texts by region).
	Regions string `env:"LOAD_REGIONS" envDefault:"europe=50,americas=30,asia=20"`
	// SKUs are ordered one at a time, in turn; OutOfStockSKU has no stock.
	SKUs          []string `env:"LOAD_SKUS" envDefault:"carrot-seeds,garden-trowel,watering-can,burrow-lamp" envSeparator:","`
	OutOfStockSKU string   `env:"LOAD_OUT_OF_STOCK_SKU" envDefault:"rare-orchid"`

	// SettleTimeout is how long an order may stay pending before it counts as unsettled.
	SettleTimeout time.Duration `env:"LOAD_SETTLE_TIMEOUT" envDefault:"30s"`
	// MaxInFlight bounds the orders followed at once.
	MaxInFlight int `env:"LOAD_MAX_IN_FLIGHT" envDefault:"256"`
	// Progress is the interval of the progress lines.
	Progress time.Duration `env:"LOAD_PROGRESS" envDefault:"5s"`
}

// Validate checks what the engine cannot: the customers exist in the users file's range.
func (c Config) Validate() error {
	if c.Customers < 1 || c.Customers > demousers.LoadCustomers {
		return fmt.Errorf("LOAD_CUSTOMERS %d: want 1 to %d (the load-test customers secrets init writes)", c.Customers, demousers.LoadCustomers)
	}
	return nil
}

func main() {
	level, _ := os.LookupEnv("LOG_LEVEL")
	logger := telemetry.NewLogger(os.Stderr, "load", level)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	res, err := run(ctx, logger)
	if err != nil {
		logger.Error("load could not run", "error", err)
		os.Exit(2)
	}
	if res.Failed() {
		logger.Error("load failed: see the summary", "errors", res.Errors, "unsettled", res.Unsettled, "unexpected", res.Unexpected)
		if res.Unexpected > 0 {
			logger.Info("unexpected outcomes are often stock that ran out: LOAD_RESTOCK_USER=sam tops it up first")
		}
		os.Exit(1)
	}
}

func run(ctx context.Context, logger *slog.Logger) (loadgen.Result, error) {
	cfg, err := service.LoadConfig[Config](logger)
	if err != nil {
		return loadgen.Result{}, err
	}
	regions, err := loadgen.ParseRegions(cfg.Regions)
	if err != nil {
		return loadgen.Result{}, err
	}
	customers := make([]string, cfg.Customers)
	for i := range customers {
		customers[i] = demousers.LoadCustomerName(i + 1)
	}
	if per := cfg.Rate / float64(cfg.Customers); per > 2 {
		logger.Warn("each customer is asked for more than the order service's default 2 orders/s: expect 429s and a lower rate",
			"per_customer", per)
	}
	fmt.Printf("load: %.1f orders/s as %d customers, until %d orders or %s; %.0f%% out of stock, %.0f%% cancelled\n",
		cfg.Rate, cfg.Customers, cfg.Count, cfg.Duration, 100*cfg.OutOfStock, 100*cfg.Cancel)
	res, err := loadgen.Run(ctx, loadgen.Config{
		OrderURL: cfg.OrderURL, InventoryURL: cfg.InventoryURL,
		Customers: customers, Token: tokens(cfg), RestockUser: cfg.RestockUser,
		Rate: cfg.Rate, Count: cfg.Count, Duration: cfg.Duration,
		OutOfStock: cfg.OutOfStock, Cancel: cfg.Cancel, StockQueries: cfg.StockQueries,
		Regions: regions, InStockSKUs: cfg.SKUs, OutOfStockSKU: cfg.OutOfStockSKU,
		SettleTimeout: cfg.SettleTimeout, MaxInFlight: cfg.MaxInFlight,
		Progress: cfg.Progress,
		Report:   func(s loadgen.Stats) { fmt.Println("progress:", s) },
	})
	if err != nil {
		return res, err
	}
	for sku, n := range res.Restocked {
		fmt.Printf("restocked: %s set to %d\n", sku, n)
	}
	fmt.Println("summary:", res.Stats)
	fmt.Println("by kind:", byKind(res.Orders))
	return res, nil
}

// tokens logs users in with their passwords from the users file, read at each login so
// that a new secrets init is seen.
func tokens(cfg Config) func(context.Context, string) (string, error) {
	return func(ctx context.Context, user string) (string, error) {
		users, err := demousers.Load(cfg.UsersFile)
		if err != nil {
			return "", err
		}
		u, err := users.User(user)
		if err != nil {
			return "", fmt.Errorf("%s: %w (run secrets init again: it adds the load-test customers)", cfg.UsersFile, err)
		}
		tok, err := login.Password(ctx, login.Config{
			Issuer: cfg.Issuer, ClientID: hydraadmin.CLIClientID, RedirectURL: hydraadmin.CLIRedirectURL,
			Audience: []string{hydraadmin.Audience},
		}, user, u.Password)
		if err != nil {
			return "", err
		}
		return tok.AccessToken, nil
	}
}

// byKind tells, for each kind of order, how many ended in which status: "in-stock:
// confirmed=42 ...".
func byKind(orders []loadgen.Order) string {
	counts := map[loadgen.Kind]map[string]int{}
	for _, o := range orders {
		if counts[o.Kind] == nil {
			counts[o.Kind] = map[string]int{}
		}
		status := o.Status
		if status == "" {
			status = "not-placed"
		}
		counts[o.Kind][status]++
	}
	var parts []string
	for _, k := range []loadgen.Kind{loadgen.KindInStock, loadgen.KindOutOfStock, loadgen.KindCancel} {
		var s []string
		for _, status := range []string{loadgen.StatusConfirmed, loadgen.StatusRejected, loadgen.StatusCancelled, loadgen.StatusPending, "not-placed"} {
			if n := counts[k][status]; n > 0 {
				s = append(s, fmt.Sprintf("%s=%d", status, n))
			}
		}
		if len(s) > 0 {
			parts = append(parts, k.String()+": "+strings.Join(s, " "))
		}
	}
	return strings.Join(parts, "; ")
}
