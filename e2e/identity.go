package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	mobynetwork "github.com/moby/moby/api/types/network"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Identity is the OpenID Connect provider of a running system: Ory Hydra, with Warren's
// login-and-consent app in front of its users, as compose runs them.
type Identity struct {
	// Issuer is what the tokens' iss says and where a client starts the login: Hydra's
	// public port on the host (the services fetch its keys inside the network instead).
	Issuer string
	// LoginURL is the login app on the host, where Hydra sends the browser.
	LoginURL string

	adminPort, loginPort string
}

// hydraConfig is Hydra's configuration in the tests: compose's (deploy/hydra), with the
// host-facing URLs of this run.
func hydraConfig(issuer, loginURL string) string {
	return fmt.Sprintf(`urls:
  self: {issuer: %q}
  login: %q
  consent: %q
secrets:
  system: [%q]
strategies:
  access_token: jwt
oauth2:
  allowed_top_level_claims: [roles]
log:
  level: warn
`, issuer, loginURL+"/login", loginURL+"/consent", randomSecret(32))
}

// startHydra migrates Hydra's database and starts it as "hydra" on the network, its
// public port published on a loopback port chosen now (the issuer URL names it, and Hydra
// needs it before it starts).
func (s *System) startHydra(ctx context.Context, image string) (*Identity, error) {
	publicPort, err1 := freePort()
	loginPort, err2 := freePort()
	adminPort, err3 := freePort()
	for _, err := range []error{err1, err2, err3} {
		if err != nil {
			return nil, err
		}
	}
	id := &Identity{
		Issuer:    "http://127.0.0.1:" + publicPort + "/",
		LoginURL:  "http://127.0.0.1:" + loginPort,
		adminPort: adminPort, loginPort: loginPort,
	}
	env := map[string]string{"DSN": "postgres://hydra:hydra@postgres:5432/hydra?sslmode=disable"}
	migrate, err := testcontainers.Run(ctx, image,
		network.WithNetwork([]string{"hydra-migrate"}, s.network),
		s.labels(),
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
	c, err := testcontainers.Run(ctx, image,
		network.WithNetwork([]string{"hydra"}, s.network),
		s.labels(),
		testcontainers.WithEnv(env),
		testcontainers.WithFiles(testcontainers.ContainerFile{
			Reader:            strings.NewReader(hydraConfig(id.Issuer, id.LoginURL)),
			ContainerFilePath: "/etc/warren/hydra.yml",
			FileMode:          0o644,
		}),
		testcontainers.WithCmd("serve", "all", "--dev", "-c", "/etc/warren/hydra.yml"),
		testcontainers.WithExposedPorts("4444/tcp", "4445/tcp"),
		fixedLoopbackPorts(map[string]string{"4444/tcp": publicPort, "4445/tcp": adminPort}),
		testcontainers.WithWaitStrategyAndDeadline(time.Minute,
			wait.ForHTTP("/health/ready").WithPort("4445/tcp")),
	)
	if c != nil {
		s.add("hydra", 0, c)
	}
	if err != nil {
		return nil, fmt.Errorf("start hydra: %w", err)
	}
	return id, nil
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
