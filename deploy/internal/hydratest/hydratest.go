// Package hydratest starts a real Ory Hydra for the tests of Warren's login app and
// tools, configured by deploy/hydra/hydra.yml, the file compose gives Hydra, so that the
// tests check the deployment's settings (JWT access tokens, top-level roles) and not a
// copy of them. Only the addresses differ, and the login and consent URLs point at the
// test's own login app. (shared/testkit.SharedHydra is the provider for the services'
// tests: it accepts logins itself and has no login app.)
package hydratest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"

	"github.com/warrenhq/warren/shared/testkit"
)

// Hydra is a running provider.
type Hydra struct {
	// Issuer is the public URL, as the tokens' iss carries it (with the trailing slash).
	Issuer string
	// AdminURL is the admin API's root.
	AdminURL string
}

// Start runs Hydra v2.3.0 on a fresh database of the shared test PostgreSQL, sending
// logins to loginURL and consents to consentURL, until t ends: the binary
// WARREN_TEST_HYDRA_BIN as a process when it is set, else a container of HYDRA_IMAGE
// (default testkit.DefaultHydraImage) on the host's network, so that it reaches the
// database and the test's login app at the addresses the test uses. Skipped under -short.
func Start(t *testing.T, loginURL, consentURL string) *Hydra {
	t.Helper()
	dsn := testkit.SharedPostgres(t).Database(t)
	public, admin := freePort(t), freePort(t)
	h := &Hydra{Issuer: "http://127.0.0.1:" + public + "/", AdminURL: "http://127.0.0.1:" + admin}

	dir := t.TempDir()
	// What compose's file says but for the test: addresses, and a secrets file like the
	// one `warrenctl secrets init` writes (JSON is YAML: Hydra reads either).
	overrides := map[string]any{
		"serve": map[string]any{
			"public": map[string]any{"host": "127.0.0.1", "port": mustAtoi(t, public)},
			"admin":  map[string]any{"host": "127.0.0.1", "port": mustAtoi(t, admin)},
		},
		"urls":    map[string]any{"self": map[string]any{"issuer": h.Issuer}, "login": loginURL, "consent": consentURL},
		"dsn":     dsn,
		"secrets": map[string]any{"system": []string{randomHex(t, 32)}},
		"log":     map[string]any{"level": "warn"},
	}
	b, err := json.Marshal(overrides)
	if err != nil {
		t.Fatal(err)
	}
	overridesFile := filepath.Join(dir, "test.json")
	if err := os.WriteFile(overridesFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if bin := os.Getenv("WARREN_TEST_HYDRA_BIN"); bin != "" {
		runProcess(t, bin, []string{"-c", ConfigFile(t), "-c", overridesFile}, dir)
	} else {
		runContainer(t, ConfigFile(t), overridesFile)
	}
	waitReady(t, h.AdminURL+"/health/ready")
	return h
}

// runProcess migrates and serves with the binary bin.
func runProcess(t *testing.T, bin string, config []string, dir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, bin, append(append([]string{"migrate"}, config...), "sql", "up", "-e", "--yes")...).CombinedOutput(); err != nil {
		t.Fatalf("hydra migrate: %v: %s", err, out)
	}
	logFile, err := os.Create(filepath.Join(dir, "hydra.log"))
	if err != nil {
		t.Fatal(err)
	}
	// --dev: the issuer is plain HTTP, which Hydra refuses otherwise (as in compose).
	srv := exec.Command(bin, append([]string{"serve", "all", "--dev"}, config...)...)
	srv.Stdout, srv.Stderr = logFile, logFile
	if err := srv.Start(); err != nil {
		t.Fatalf("hydra serve: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		logFile.Close()
		if t.Failed() {
			log, _ := os.ReadFile(logFile.Name())
			t.Logf("hydra's log:\n%s", log)
		}
	})
}

// runContainer migrates and serves with Hydra's image, the config files copied in.
func runContainer(t *testing.T, configFile, overridesFile string) {
	t.Helper()
	ctx := t.Context()
	image := os.Getenv("HYDRA_IMAGE")
	if image == "" {
		image = testkit.DefaultHydraImage
	}
	const warrenConfig, testConfig = "/etc/warren/hydra.yml", "/etc/warren/test.json"
	config := []string{"-c", warrenConfig, "-c", testConfig}
	opts := []testcontainers.ContainerCustomizer{
		testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" }),
		testcontainers.WithFiles(
			testcontainers.ContainerFile{HostFilePath: configFile, ContainerFilePath: warrenConfig, FileMode: 0o444},
			testcontainers.ContainerFile{HostFilePath: overridesFile, ContainerFilePath: testConfig, FileMode: 0o444}),
	}
	migrate, err := testcontainers.Run(ctx, image, append(opts,
		testcontainers.WithCmd(append(append([]string{"migrate"}, config...), "sql", "up", "--read-from-env", "--yes")...),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute, wait.ForExit()))...)
	if migrate != nil {
		defer func() { _ = migrate.Terminate(context.Background()) }()
	}
	if err != nil {
		t.Fatalf("hydra migrate: %v", err)
	}
	if state, err := migrate.State(ctx); err != nil || state.ExitCode != 0 {
		t.Fatalf("hydra migrate failed: %v %+v", err, state)
	}
	serve, err := testcontainers.Run(ctx, image, append(opts,
		testcontainers.WithCmd(append([]string{"serve", "all", "--dev"}, config...)...))...)
	if serve != nil {
		t.Cleanup(func() { _ = serve.Terminate(context.Background()) })
	}
	if err != nil {
		t.Fatalf("hydra serve: %v", err)
	}
}

// ConfigFile is the path of deploy/hydra/hydra.yml.
func ConfigFile(t *testing.T) string {
	_, self, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("hydratest: cannot locate deploy/hydra/hydra.yml")
	}
	return filepath.Join(filepath.Dir(self), "..", "..", "hydra", "hydra.yml")
}

func waitReady(t *testing.T, u string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get(u)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("hydra not ready at %s: %v", u, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
