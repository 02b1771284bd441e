package auth_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warrenhq/warren/shared/auth"
	"github.com/warrenhq/warren/shared/httpjson"
	"github.com/warrenhq/warren/shared/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// api is an API behind Middleware: GET /whoami echoes the principal, GET /staff needs the
// role staff.
func api(t *testing.T, v *auth.Verifier) *httptest.Server {
	t.Helper()
	whoami := func(w http.ResponseWriter, r *http.Request) {
		p, ok := auth.FromContext(r.Context())
		if !ok {
			t.Error("no principal in the context behind Middleware")
		}
		httpjson.Write(w, http.StatusOK, p)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /whoami", whoami)
	mux.Handle("GET /staff", auth.Require(auth.RoleStaff, http.HandlerFunc(whoami)))
	srv := httptest.NewServer(auth.Middleware(v, mux))
	t.Cleanup(srv.Close)
	return srv
}

func verifier(t *testing.T, cfg auth.Config, now func() time.Time) *auth.Verifier {
	t.Helper()
	v, err := auth.NewWithClock(t.Context(), cfg, slog.New(slog.DiscardHandler), now)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func hydraConfig(h *testkit.Hydra) auth.Config {
	return auth.Config{Issuer: h.Issuer, JWKSURL: h.JWKSURL, Audience: testkit.Audience}
}

type answer struct {
	status    int
	challenge string
	body      []byte
}

func get(t *testing.T, url, authorization string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return answer{resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body}
}

// refused checks a 401 or 403 answer: the challenge, and a JSON error body.
func refused(t *testing.T, name string, got answer, status int, challenge string) {
	t.Helper()
	var body httpjson.ErrorBody
	if got.status != status || got.challenge != challenge || json.Unmarshal(got.body, &body) != nil || body.Error == "" {
		t.Errorf("%s: %d, WWW-Authenticate %q, body %s; want %d, %q and a JSON error", name, got.status, got.challenge, got.body, status, challenge)
	}
}

func TestMiddlewareLetsAValidTokenThrough(t *testing.T) {
	h := testkit.SharedHydra(t)
	srv := api(t, verifier(t, hydraConfig(h), nil))

	got := get(t, srv.URL+"/whoami", "Bearer "+h.Token(t, "alice", auth.RoleCustomer))
	var p auth.Principal
	if got.status != http.StatusOK || json.Unmarshal(got.body, &p) != nil {
		t.Fatalf("GET /whoami with alice's token = %d %s, want 200", got.status, got.body)
	}
	if p.Subject != "alice" || !slices.Equal(p.Roles, []string{auth.RoleCustomer}) {
		t.Errorf("principal = %+v, want alice with the role customer", p)
	}
	// The scheme is case-insensitive (RFC 7235).
	if got := get(t, srv.URL+"/whoami", "bearer "+h.Token(t, "bob", auth.RoleCustomer)); got.status != http.StatusOK {
		t.Errorf(`"bearer <token>" = %d %s, want 200`, got.status, got.body)
	}
}

func TestMiddlewareRefusesBadTokens(t *testing.T) {
	h := testkit.SharedHydra(t)
	srv := api(t, verifier(t, hydraConfig(h), nil))
	token := h.Token(t, "alice", auth.RoleCustomer)
	const noToken, badToken = `Bearer realm="warren"`, `Bearer realm="warren", error="invalid_token"`

	refused(t, "no Authorization", get(t, srv.URL+"/whoami", ""), http.StatusUnauthorized, noToken)
	refused(t, "Basic credentials", get(t, srv.URL+"/whoami", "Basic YWxpY2U6YWxpY2U="), http.StatusUnauthorized, noToken)
	refused(t, "an empty bearer token", get(t, srv.URL+"/whoami", "Bearer "), http.StatusUnauthorized, noToken)
	refused(t, "not a JWT", get(t, srv.URL+"/whoami", "Bearer not-a-jwt"), http.StatusUnauthorized, badToken)

	// The same signature over a payload that names another subject.
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	forged := strings.Replace(string(payload), `"sub":"alice"`, `"sub":"mallory"`, 1)
	if forged == string(payload) {
		t.Fatalf("no sub alice in the token's payload %s", payload)
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	refused(t, "a tampered payload", get(t, srv.URL+"/whoami", "Bearer "+tampered), http.StatusUnauthorized, badToken)
	sig := []byte(parts[2])
	sig[10] ^= 1
	refused(t, "a tampered signature", get(t, srv.URL+"/whoami", "Bearer "+parts[0]+"."+parts[1]+"."+string(sig)), http.StatusUnauthorized, badToken)

	other := h.TokenFor(t, testkit.TokenRequest{Subject: "alice", Roles: []string{auth.RoleCustomer}, Audience: "someone-else"})
	refused(t, "another audience", get(t, srv.URL+"/whoami", "Bearer "+other), http.StatusUnauthorized, badToken)

	// A verifier that trusts another issuer refuses Hydra's tokens, though the keys are the same.
	elsewhere := hydraConfig(h)
	elsewhere.Issuer = "https://issuer.example/"
	refused(t, "another issuer", get(t, api(t, verifier(t, elsewhere, nil)).URL+"/whoami", "Bearer "+token), http.StatusUnauthorized, badToken)

	// Two hours on, Hydra's one-hour token has expired.
	later := func() time.Time { return time.Now().Add(2 * time.Hour) }
	refused(t, "an expired token", get(t, api(t, verifier(t, hydraConfig(h), later)).URL+"/whoami", "Bearer "+token), http.StatusUnauthorized, badToken)
}

func TestRequireRefusesAMissingRole(t *testing.T) {
	h := testkit.SharedHydra(t)
	srv := api(t, verifier(t, hydraConfig(h), nil))

	refused(t, "a customer on a staff route", get(t, srv.URL+"/staff", "Bearer "+h.Token(t, "alice", auth.RoleCustomer)),
		http.StatusForbidden, `Bearer realm="warren", error="insufficient_scope"`)
	refused(t, "no roles on a staff route", get(t, srv.URL+"/staff", "Bearer "+h.Token(t, "carol")),
		http.StatusForbidden, `Bearer realm="warren", error="insufficient_scope"`)
	if got := get(t, srv.URL+"/staff", "Bearer "+h.Token(t, "sam", auth.RoleStaff)); got.status != http.StatusOK {
		t.Errorf("sam (staff) on a staff route = %d %s, want 200", got.status, got.body)
	}
	// Without Middleware in front, Require has no principal: 401, not a way in.
	bare := httptest.NewServer(auth.Require(auth.RoleStaff, http.NotFoundHandler()))
	defer bare.Close()
	refused(t, "Require without Middleware", get(t, bare.URL, ""), http.StatusUnauthorized, `Bearer realm="warren"`)
}

// The tracing handler outside Middleware names its span after the route the mux matched,
// which it reads from its own request.
func TestMiddlewareHandsTheMatchedRouteOut(t *testing.T) {
	h := testkit.SharedHydra(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(http.ResponseWriter, *http.Request) {})
	inner := auth.Middleware(verifier(t, hydraConfig(h), nil), mux)
	var pattern string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inner.ServeHTTP(w, r)
		pattern = r.Pattern
	}))
	defer srv.Close()
	if got := get(t, srv.URL+"/orders/42", "Bearer "+h.Token(t, "alice", auth.RoleCustomer)); got.status != http.StatusOK {
		t.Fatalf("GET /orders/42 = %d %s", got.status, got.body)
	}
	if pattern != "GET /orders/{id}" {
		t.Errorf("the outer handler's r.Pattern = %q, want GET /orders/{id}", pattern)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []auth.Config{
		{Issuer: "", Audience: "warren-api"},
		{Issuer: "http://localhost:4444/", Audience: ""},
		{Issuer: "http://localhost:4444/", JWKSURL: "hydra:4444/keys", Audience: "warren-api"},
	} {
		if _, err := auth.New(context.Background(), c, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("New(%+v) = nil error, want the configuration refused", c)
		}
	}
}
