package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynetwork "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/warrenhq/warren/shared/auth/login"
)

// The demo users every system has, as compose's secrets init writes them (passwords are
// generated per run): two customers and one member of staff, and the load-test customers
// (LoadCustomer).
const (
	Alice = "alice"
	Bob   = "bob"
	Sam   = "sam"
)

// demoUser is one entry of the login app's users file (deploy/internal/demousers).
type demoUser struct {
	Name     string   `json:"name"`
	Password string   `json:"password"`
	Roles    []string `json:"roles"`
	Email    string   `json:"email,omitempty"`
}

// LoadCustomers is how many load-test customers (LoadCustomer) the users file holds, as
// secrets init writes them for warren-load (deploy/internal/demousers).
const LoadCustomers = 40

// LoadCustomer is the name of the i-th load-test customer (from 1): load-01.
func LoadCustomer(i int) string { return fmt.Sprintf("load-%02d", i) }

func demoUsers() []demoUser {
	users := []demoUser{
		{Name: Alice, Password: randomSecret(12), Roles: []string{"customer"}, Email: "alice@example.com"},
		{Name: Bob, Password: randomSecret(12), Roles: []string{"customer"}, Email: "bob@example.com"},
		{Name: Sam, Password: randomSecret(12), Roles: []string{"staff"}, Email: "sam@example.com"},
	}
	for i := 1; i <= LoadCustomers; i++ {
		name := LoadCustomer(i)
		users = append(users, demoUser{Name: name, Password: randomSecret(12), Roles: []string{"customer"}, Email: name + "@load.example.com"})
	}
	return users
}

// Identity is the OpenID Connect provider of a running system: Ory Hydra, with Warren's
// login-and-consent app in front of its users, as compose runs them.
type Identity struct {
	// Issuer is what the tokens' iss says and where a client starts the login: Hydra's
	// public port on the host (the services fetch its keys inside the network instead).
	Issuer string
	// LoginURL is the login app on the host, where Hydra sends the browser.
	LoginURL string

	users []demoUser
	// usersDir holds the login app's users file, mounted read-only into it (its root file
	// system is read-only, as compose runs it); removed by System.Close.
	usersDir string

	mu     sync.Mutex
	tokens map[string]string
}

// Token logs user in as a person with a browser would (shared/auth/login: the
// authorization-code flow through Hydra and the login app's form) and returns their
// access token. A user logs in once per system: later calls return the same token,
// which lasts an hour, longer than any suite runs on one system.
func (id *Identity) Token(ctx context.Context, user string) (string, error) {
	id.mu.Lock()
	defer id.mu.Unlock()
	if t, ok := id.tokens[user]; ok {
		return t, nil
	}
	password := ""
	for _, u := range id.users {
		if u.Name == user {
			password = u.Password
		}
	}
	if password == "" {
		return "", fmt.Errorf("no demo user %q", user)
	}
	tok, err := login.Password(ctx, login.Config{
		Issuer: id.Issuer, ClientID: "warren-cli", RedirectURL: "http://127.0.0.1:8400/callback",
		Audience: []string{"warren-api"},
	}, user, password)
	if err != nil {
		return "", fmt.Errorf("log %s in: %w", user, err)
	}
	if id.tokens == nil {
		id.tokens = map[string]string{}
	}
	id.tokens[user] = tok.AccessToken
	return tok.AccessToken, nil
}

// startIdentity migrates Hydra's database and starts it as "hydra" on the network, its
// public port published on a loopback port chosen now (the issuer URL names it, and Hydra
// needs it before it starts), registers Warren's client and starts the login app.
func (s *System) startIdentity(ctx context.Context, images Images) (*Identity, error) {
	publicPort, err1 := freePort()
	loginPort, err2 := freePort()
	for _, err := range []error{err1, err2} {
		if err != nil {
			return nil, err
		}
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	id := &Identity{
		Issuer:   "http://127.0.0.1:" + publicPort + "/",
		LoginURL: "http://127.0.0.1:" + loginPort,
		users:    demoUsers(),
	}
	dsn := "postgres://hydra:hydra@postgres:5432/hydra?sslmode=disable"
	if s.options.tls != nil {
		// Under WithTLS the database lets no session in without TLS: Hydra verifies it too.
		dsn = "postgres://hydra:hydra@postgres:5432/hydra?" +
			url.Values{"sslmode": {"verify-full"}, "sslrootcert": {secretsDir + "/ca.crt"}}.Encode()
	}
	env := map[string]string{"DSN": dsn}
	migrate, err := testcontainers.Run(ctx, images.Hydra,
		network.WithNetwork([]string{"hydra-migrate"}, s.network),
		s.labels(),
		s.tlsService(),
		testcontainers.WithEnv(env),
		testcontainers.WithCmd("migrate", "sql", "up", "-e", "--yes"),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute, wait.ForExit()))
	if migrate != nil {
		defer func() { _ = migrate.Terminate(context.WithoutCancel(ctx)) }()
	}
	if err != nil {
		return nil, fmt.Errorf("hydra migrate: %w", err)
	}
	if state, err := migrate.State(ctx); err != nil || state.ExitCode != 0 {
		return nil, fmt.Errorf("hydra migrate failed (%v):\n%s", err, tail(ctx, migrate, 20))
	}
	c, err := testcontainers.Run(ctx, images.Hydra,
		network.WithNetwork([]string{"hydra"}, s.network),
		s.labels(),
		s.tlsService(),
		// Compose's own settings (deploy/hydra/hydra.yml), with this run's host-facing URLs
		// and a system secret of its own in variables, which Hydra reads over the file, as
		// compose passes them.
		testcontainers.WithEnv(env),
		testcontainers.WithEnv(map[string]string{
			"URLS_SELF_ISSUER": id.Issuer,
			"URLS_LOGIN":       id.LoginURL + "/login",
			"URLS_CONSENT":     id.LoginURL + "/consent",
			"SECRETS_SYSTEM":   randomSecret(32),
		}),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			HostFilePath:      filepath.Join(root, "deploy", "hydra", "hydra.yml"),
			ContainerFilePath: "/etc/warren/hydra.yml",
			FileMode:          0o644,
		}),
		testcontainers.WithCmd("serve", "all", "--dev", "-c", "/etc/warren/hydra.yml"),
		testcontainers.WithExposedPorts("4444/tcp", "4445/tcp"),
		// The admin port is published only for the wait below, on a port Docker picks.
		fixedLoopbackPorts(map[string]string{"4444/tcp": publicPort}),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForHTTP("/health/ready").WithPort("4445/tcp")),
	)
	if c != nil {
		s.add("hydra", 0, c)
	}
	if err != nil {
		return nil, fmt.Errorf("start hydra: %w", err)
	}
	if err := s.registerClient(ctx, images); err != nil {
		return nil, err
	}
	if id.usersDir, err = s.startLogin(ctx, images, id.users, loginPort); err != nil {
		return id, err
	}
	return id, nil
}

// registerClient registers the warren-cli client with Hydra as compose does: its
// one-shot oidc-setup (warrenctl oidc setup).
func (s *System) registerClient(ctx context.Context, images Images) error {
	c, err := testcontainers.Run(ctx, images.Service("warrenctl"),
		network.WithNetwork([]string{"oidc-setup"}, s.network),
		s.labels(),
		hardened(),
		testcontainers.WithEnv(map[string]string{"HYDRA_ADMIN_URL": "http://hydra:4445"}),
		testcontainers.WithCmd("oidc", "setup"),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute, wait.ForExit()))
	if c != nil {
		defer func() { _ = c.Terminate(context.WithoutCancel(ctx)) }()
	}
	if err != nil {
		return fmt.Errorf("oidc setup: %w", err)
	}
	if state, err := c.State(ctx); err != nil || state.ExitCode != 0 {
		return fmt.Errorf("oidc setup failed (%v):\n%s", err, tail(ctx, c, 20))
	}
	return nil
}

// startLogin starts Warren's login app with users, published on loginPort: Hydra sends
// the browser (here, shared/auth/login) there. It returns the folder of the users file.
func (s *System) startLogin(ctx context.Context, images Images, users []demoUser, loginPort string) (string, error) {
	file, err := json.Marshal(map[string]any{"users": users})
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "warren-e2e-login-")
	if err != nil {
		return "", err
	}
	// Readable by the app's user (65532), as compose's secrets init writes it.
	if err := errors.Join(os.Chmod(dir, 0o755), os.WriteFile(filepath.Join(dir, "users.json"), file, 0o444)); err != nil {
		return dir, err
	}
	c, err := testcontainers.Run(ctx, images.Service("warren-login"),
		network.WithNetwork([]string{"login"}, s.network),
		s.labels(),
		hardened(),
		testcontainers.WithEnv(map[string]string{
			"LOGIN_ADDR": ":3000", "HYDRA_ADMIN_URL": "http://hydra:4445",
			"USERS_FILE": "/run/secrets/warren/users.json",
		}),
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Binds = append(hc.Binds, dir+":/run/secrets/warren:ro")
		}),
		testcontainers.WithExposedPorts("3000/tcp"),
		fixedLoopbackPorts(map[string]string{"3000/tcp": loginPort}),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute, wait.ForHTTP("/healthz").WithPort("3000/tcp")),
	)
	if c != nil {
		s.add("login", 0, c)
	}
	if err != nil {
		return dir, fmt.Errorf("start the login app: %w", err)
	}
	return dir, nil
}

// fixedLoopbackPorts publishes each container port on the given loopback port.
func fixedLoopbackPorts(ports map[string]string) testcontainers.CustomizeRequestOption {
	return testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		if hc.PortBindings == nil {
			hc.PortBindings = mobynetwork.PortMap{}
		}
		for p, hostPort := range ports {
			hc.PortBindings[mobynetwork.MustParsePort(p)] = []mobynetwork.PortBinding{
				{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}
		}
	})
}

func randomSecret(n int) string {
	b := make([]byte, n)
	_, _ = io.ReadFull(rand.Reader, b)
	return hex.EncodeToString(b)
}
