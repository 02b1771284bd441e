package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/warrenhq/warren/deploy/internal/hydraadmin"
)

func oidcFlags(c *Config, fs *flag.FlagSet) {
	fs.StringVar(&c.OIDC.HydraAdminURL, "admin", c.OIDC.HydraAdminURL, "Hydra's admin API (HYDRA_ADMIN_URL)")
	fs.DurationVar(&c.OIDC.Wait, "wait", c.OIDC.Wait, "how long to wait for the admin API (HYDRA_WAIT)")
}

// oidcSetup registers Warren's OAuth 2 client warren-cli with Hydra, creating or replacing
// it: compose runs it on every `up`, so it must succeed when the client exists already
// (and an edited definition takes effect on the next `up`).
func oidcSetup(ctx context.Context, inv *invocation) error {
	cfg := inv.config.OIDC
	admin := hydraadmin.New(cfg.HydraAdminURL)
	if err := waitFor(ctx, cfg.Wait, admin.Ready); err != nil {
		return fmt.Errorf("hydra admin API at %s: %w", cfg.HydraAdminURL, err)
	}
	client := hydraadmin.WarrenCLI()
	created, err := admin.PutClient(ctx, client)
	if err != nil {
		return err
	}
	verb := "updated"
	if created {
		verb = "created"
	}
	inv.logger.Info("oauth2 client "+verb, "client_id", client.ClientID, "audience", client.Audience, "redirect_uris", client.RedirectURIs)
	fmt.Fprintf(inv.stdout, "oauth2 client %s %s\n", client.ClientID, verb)
	return nil
}

// waitFor calls check every second until it succeeds or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, check func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		err := check(ctx)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %s: %w", timeout, err)
		case <-time.After(time.Second):
		}
	}
}
