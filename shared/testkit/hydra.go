package testkit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/moby/moby/api/types/container"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// DefaultHydraImage is Ory Hydra, the OpenID Connect provider Warren runs; make images
// provides it locally where no registry answers.
const DefaultHydraImage = "oryd/hydra:v2.3.0"

// Audience is the audience Warren's APIs accept (OIDC_AUDIENCE's default).
const Audience = "warren-api"

// Hydra is a real OpenID Connect provider for tests: Ory Hydra on its own database, with
// one confidential client that tests use to obtain access tokens for any subject. It issues
// JWT access tokens with a top-level roles claim, as Warren's compose deployment does.
type Hydra struct {
	// Issuer is the provider's issuer URL, as its tokens carry it (iss), with the
	// trailing slash Hydra adds.
	Issuer string
	// JWKSURL is where the provider publishes its signing keys.
	JWKSURL string
	// AdminURL is the admin API's base URL.
	AdminURL string

	clientID, clientSecret, redirectURL string
}

var (
	sharedHydra     *Hydra
	sharedHydraErr  error
	sharedHydraOnce sync.Once
)

// SharedHydra returns the provider all tests of this binary share, started on first use:
// the binary WARREN_TEST_HYDRA_BIN as a process when set, else a container of HYDRA_IMAGE
// (default DefaultHydraImage) on the host's network (so that it reaches the test database
// at the address the tests use). Its database is one more on SharedPostgres. It skips the
// test under -short.
func SharedHydra(t testing.TB) *Hydra {
	t.Helper()
	Integration(t)
	pg := SharedPostgres(t)
	sharedHydraOnce.Do(func() {
		sharedHydra, sharedHydraErr = startHydra(context.Background(), pg)
	})
	if sharedHydraErr != nil {
		t.Fatalf("start hydra: %v", sharedHydraErr)
	}
	return sharedHydra
}

// Env returns the settings that make a Warren service trust this provider.
func (h *Hydra) Env() map[string]string {
	return map[string]string{"OIDC_ISSUER": h.Issuer, "OIDC_JWKS_URL": h.JWKSURL, "OIDC_AUDIENCE": Audience}
}

// TokenRequest says what access token to obtain.
type TokenRequest struct {
	// Subject is the user the token is for (sub).
	Subject string
	// Roles go into the token's roles claim.
	Roles []string
	// Audience is requested and granted; empty means Audience. Set another to obtain a
	// token that Warren must refuse.
	Audience string
}

// Token returns an access token for subject with roles, obtained as a browser would: the
// authorization-code flow through Hydra, with the login and the consent accepted through
// its admin API on the test's behalf (a login app does that in a deployment).
func (h *Hydra) Token(t testing.TB, subject string, roles ...string) string {
	t.Helper()
	return h.TokenFor(t, TokenRequest{Subject: subject, Roles: roles})
}

// TokenFor is Token with every choice spelled out.
func (h *Hydra) TokenFor(t testing.TB, req TokenRequest) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	token, err := h.token(ctx, req)
	if err != nil {
		t.Fatalf("hydra token for %s: %v", req.Subject, err)
	}
	return token
}

func (h *Hydra) token(ctx context.Context, req TokenRequest) (string, error) {
	audience := req.Audience
	if audience == "" {
		audience = Audience
	}
	roles := req.Roles
	if roles == nil {
		roles = []string{}
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return "", err
	}
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	state := randomHex(16)
	authURL := h.Issuer + "oauth2/auth?" + url.Values{
		"client_id": {h.clientID}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {h.redirectURL}, "state": {state}, "audience": {audience},
	}.Encode()
	loginChallenge, err := followTo(ctx, browser, authURL, "login_challenge")
	if err != nil {
		return "", fmt.Errorf("to the login page: %w", err)
	}
	next, err := h.accept(ctx, "login", loginChallenge, map[string]any{"subject": req.Subject})
	if err != nil {
		return "", err
	}
	consentChallenge, err := followTo(ctx, browser, next, "consent_challenge")
	if err != nil {
		return "", fmt.Errorf("to the consent page: %w", err)
	}
	next, err = h.accept(ctx, "consent", consentChallenge, map[string]any{
		"grant_scope":                 []string{"openid"},
		"grant_access_token_audience": []string{audience},
		"session":                     map[string]any{"access_token": map[string]any{"roles": roles}},
	})
	if err != nil {
		return "", err
	}
	code, err := followTo(ctx, browser, next, "code")
	if err != nil {
		return "", fmt.Errorf("to the redirect URL: %w", err)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {h.redirectURL},
		"client_id": {h.clientID}, "client_secret": {h.clientSecret}}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := call(ctx, http.MethodPost, h.Issuer+"oauth2/token", "application/x-www-form-urlencoded",
		strings.NewReader(form.Encode()), &tok); err != nil {
		return "", fmt.Errorf("token exchange: %w", err)
	}
	return tok.AccessToken, nil
}

// followTo follows redirects from start until one carries the query parameter param, and
// returns its value (the page that would be shown there is not needed).
func followTo(ctx context.Context, c *http.Client, start, param string) (string, error) {
	next := start
	for range 10 {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, next, nil)
		if err != nil {
			return "", err
		}
		resp, err := c.Do(req)
		if err != nil {
			return "", err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if loc == "" {
			return "", fmt.Errorf("GET %s: %s without a redirect: %s", next, resp.Status, body)
		}
		u, err := req.URL.Parse(loc)
		if err != nil {
			return "", err
		}
		if e := u.Query().Get("error"); e != "" {
			return "", fmt.Errorf("provider refused: %s: %s", e, u.Query().Get("error_description"))
		}
		if v := u.Query().Get(param); v != "" {
			return v, nil
		}
		next = u.String()
	}
	return "", errors.New("too many redirects")
}

// accept accepts a login or consent request through the admin API and returns where the
// browser goes next.
func (h *Hydra) accept(ctx context.Context, kind, challenge string, body any) (string, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return "", err
	}
	var out struct {
		RedirectTo string `json:"redirect_to"`
	}
	u := h.AdminURL + "/admin/oauth2/auth/requests/" + kind + "/accept?" + kind + "_challenge=" + url.QueryEscape(challenge)
	if err := call(ctx, http.MethodPut, u, "application/json", bytes.NewReader(b), &out); err != nil {
		return "", fmt.Errorf("accept %s: %w", kind, err)
	}
	return out.RedirectTo, nil
}

func call(ctx context.Context, method, u, contentType string, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, u, resp.Status, b)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(b, out)
}

func startHydra(ctx context.Context, pg *Postgres) (*Hydra, error) {
	dsn, err := hydraDatabase(ctx, pg)
	if err != nil {
		return nil, err
	}
	publicPort, err1 := freePort()
	adminPort, err2 := freePort()
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("free ports: %w", err)
	}
	issuer := "http://127.0.0.1:" + publicPort + "/"
	h := &Hydra{
		Issuer:   issuer,
		JWKSURL:  issuer + ".well-known/jwks.json",
		AdminURL: "http://127.0.0.1:" + adminPort,
		clientID: "warren-test", clientSecret: randomHex(16),
		// Never opened: followTo stops at the redirect that carries the code.
		redirectURL: "http://127.0.0.1:1/callback",
	}
	// The login and consent pages are never opened either: the test accepts both
	// through the admin API.
	config := fmt.Sprintf(`serve:
  public: {host: 127.0.0.1, port: %s}
  admin: {host: 127.0.0.1, port: %s}
urls:
  self: {issuer: %q}
  login: http://127.0.0.1:1/login
  consent: http://127.0.0.1:1/consent
secrets:
  system: [%q]
strategies:
  access_token: jwt
oauth2:
  allowed_top_level_claims: [roles]
log:
  level: warn
`, publicPort, adminPort, issuer, randomHex(32))
	dir, err := os.MkdirTemp("", "warren-hydra-")
	if err != nil {
		return nil, err
	}
	configFile := filepath.Join(dir, "hydra.yml")
	if err := os.WriteFile(configFile, []byte(config), 0o644); err != nil {
		return nil, err
	}
	onExit(func(context.Context) error { return os.RemoveAll(dir) })
	env := map[string]string{"DSN": dsn}
	migrate := []string{"migrate", "sql", "up", "-e", "--yes"}
	serve := []string{"serve", "all", "--dev", "-c", "/etc/warren/hydra.yml"}
	if bin := os.Getenv("WARREN_TEST_HYDRA_BIN"); bin != "" {
		serve[len(serve)-1] = configFile
		err = runHydraProcess(ctx, bin, env, migrate, serve)
	} else {
		err = runHydraContainer(ctx, env, configFile, migrate, serve)
	}
	if err != nil {
		return nil, err
	}
	if err := waitHealthy(ctx, h.AdminURL+"/health/ready", time.Minute); err != nil {
		return nil, err
	}
	client := map[string]any{
		"client_id": h.clientID, "client_secret": h.clientSecret,
		"grant_types": []string{"authorization_code"}, "response_types": []string{"code"},
		"scope": "openid", "audience": []string{Audience, "someone-else"},
		"redirect_uris": []string{h.redirectURL}, "token_endpoint_auth_method": "client_secret_post",
		// First-party: the consent is accepted without asking.
		"skip_consent": true,
	}
	b, _ := json.Marshal(client)
	if err := call(ctx, http.MethodPost, h.AdminURL+"/admin/clients", "application/json", bytes.NewReader(b), nil); err != nil {
		return nil, fmt.Errorf("create the test client: %w", err)
	}
	return h, nil
}

// hydraDatabase creates a database for the provider, dropped when the test binary ends.
func hydraDatabase(ctx context.Context, pg *Postgres) (string, error) {
	name := fmt.Sprintf("hydra_%d", time.Now().UnixNano()%1e9)
	conn, err := pgx.Connect(ctx, pg.URL)
	if err != nil {
		return "", fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create hydra database: %w", err)
	}
	onExit(func(ctx context.Context) error {
		c, err := pgx.Connect(ctx, pg.URL)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		_, err = c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		return err
	})
	u, err := url.Parse(pg.URL)
	if err != nil {
		return "", err
	}
	u.Path = "/" + name
	return u.String(), nil
}

func runHydraProcess(ctx context.Context, bin string, env map[string]string, migrate, serve []string) error {
	environ := os.Environ()
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	cmd := exec.CommandContext(ctx, bin, migrate...)
	cmd.Env = environ
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("hydra migrate: %w: %s", err, out)
	}
	srv := exec.Command(bin, serve...)
	srv.Env = environ
	srv.Stdout, srv.Stderr = os.Stderr, os.Stderr
	if err := srv.Start(); err != nil {
		return fmt.Errorf("hydra serve: %w", err)
	}
	onExit(func(context.Context) error {
		_ = srv.Process.Kill()
		_ = srv.Wait()
		return nil
	})
	return nil
}

func runHydraContainer(ctx context.Context, env map[string]string, configFile string, migrate, serve []string) error {
	image := envOr("HYDRA_IMAGE", DefaultHydraImage)
	// The host's network: Hydra reaches the test database at the address the tests use,
	// and the tests reach Hydra at the issuer URL its tokens carry.
	hostNetwork := testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.NetworkMode = "host" })
	m, err := testcontainers.Run(ctx, image, hostNetwork, testcontainers.WithEnv(env),
		testcontainers.WithCmd(migrate...),
		testcontainers.WithWaitStrategyAndDeadline(2*time.Minute, wait.ForExit()))
	if m != nil {
		defer func() { _ = m.Terminate(context.Background()) }()
	}
	if err != nil {
		return fmt.Errorf("hydra migrate: %w", err)
	}
	if state, err := m.State(ctx); err != nil || state.ExitCode != 0 {
		logs, _ := m.Logs(ctx)
		var out []byte
		if logs != nil {
			out, _ = io.ReadAll(logs)
		}
		return fmt.Errorf("hydra migrate failed (%v): %s", err, out)
	}
	c, err := testcontainers.Run(ctx, image, hostNetwork, testcontainers.WithEnv(env),
		testcontainers.WithFiles(testcontainers.ContainerFile{HostFilePath: configFile, ContainerFilePath: "/etc/warren/hydra.yml", FileMode: 0o644}),
		testcontainers.WithCmd(serve...))
	if c != nil {
		onExit(func(ctx context.Context) error { return c.Terminate(ctx) })
	}
	if err != nil {
		return fmt.Errorf("hydra serve: %w", err)
	}
	return nil
}

func waitHealthy(ctx context.Context, u string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hydra not ready at %s after %s: %v", u, timeout, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
