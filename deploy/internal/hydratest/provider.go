package hydratest

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/warrenhq/warren/deploy/internal/hydraadmin"
	"github.com/warrenhq/warren/deploy/internal/loginapp"
	"github.com/warrenhq/warren/shared/auth/login"
)

// Provider is Warren's OpenID Connect provider as compose runs it: Hydra and the login
// app, in the test's process.
type Provider struct {
	*Hydra
	// Admin is Hydra's admin API.
	Admin *hydraadmin.Client
	// LoginURL is the login app's root.
	LoginURL string
}

// StartProvider starts a Provider whose login app checks passwords against usersFile,
// until t ends.
func StartProvider(t *testing.T, usersFile string) *Provider {
	t.Helper()
	// The app's URL goes into Hydra's config and Hydra's admin URL into the app: listen
	// first, serve once Hydra runs.
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	root := "http://" + srv.Listener.Addr().String()
	h := Start(t, root+"/login", root+"/consent")
	admin := hydraadmin.New(h.AdminURL)
	handler, err := loginapp.Handler(loginapp.Config{Hydra: admin, UsersFile: usersFile,
		TrustedClients: []string{hydraadmin.CLIClientID}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = handler
	srv.Start()
	return &Provider{Hydra: h, Admin: admin, LoginURL: root}
}

// RegisterCLI registers warren-cli, as `warrenctl oidc setup` does in compose.
func (p *Provider) RegisterCLI(t *testing.T) {
	t.Helper()
	if _, err := p.Admin.PutClient(t.Context(), hydraadmin.WarrenCLI()); err != nil {
		t.Fatal(err)
	}
}

// LoginConfig is the headless client's configuration for warren-cli at this provider.
func (p *Provider) LoginConfig() login.Config {
	return login.Config{Issuer: p.Issuer, ClientID: hydraadmin.CLIClientID, RedirectURL: hydraadmin.CLIRedirectURL,
		Audience: []string{hydraadmin.Audience}, Scopes: []string{"openid", "offline_access"}}
}
