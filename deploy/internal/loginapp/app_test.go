package loginapp_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warrenhq/warren/deploy/internal/demousers"
	"github.com/warrenhq/warren/deploy/internal/hydraadmin"
	"github.com/warrenhq/warren/deploy/internal/hydratest"
	"github.com/warrenhq/warren/shared/auth/login"
	"github.com/warrenhq/warren/shared/testkit"
)

// TestMain removes the provider and database the tests start (testkit.Run).
func TestMain(m *testing.M) { os.Exit(testkit.Run(m)) }

// startProvider is Hydra with this app in the test's process and the users file users.
func startProvider(t *testing.T, users demousers.File) *hydratest.Provider {
	t.Helper()
	usersFile := filepath.Join(t.TempDir(), demousers.FileName)
	b, err := users.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(usersFile, b, 0o444); err != nil {
		t.Fatal(err)
	}
	p := hydratest.StartProvider(t, usersFile)
	p.RegisterCLI(t)
	return p
}

// claims decodes a JWT's payload. The signature is the services' business (and their
// tests'); here the claims' shape is what is checked.
func claims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("access token is not a JWT: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func stringList(v any) []string {
	var out []string
	list, _ := v.([]any)
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// TestPasswordLoginThroughHydra: a user logs in through Hydra and this app with the
// headless client, as warrenctl token does, and gets a JWT access token with the claims
// the services check (AUTH-CONTRACT.md): iss the issuer, aud warren-api, sub the user name,
// a top-level roles array with the user's roles from the users file. A wrong password and
// an unknown user are refused with login.ErrWrongPassword.
func TestPasswordLoginThroughHydra(t *testing.T) {
	p := startProvider(t, demousers.File{Users: []demousers.User{
		{Name: "alice", Password: "alice's secret", Roles: []string{demousers.RoleCustomer}, Email: "alice@example.com"},
		{Name: "sam", Password: "sam's secret", Roles: []string{demousers.RoleStaff}},
	}})

	for _, tc := range []struct{ user, password, role string }{
		{"alice", "alice's secret", demousers.RoleCustomer},
		{"sam", "sam's secret", demousers.RoleStaff},
	} {
		tok, err := login.Password(t.Context(), p.LoginConfig(), tc.user, tc.password)
		if err != nil {
			t.Fatalf("%s: %v", tc.user, err)
		}
		c := claims(t, tok.AccessToken)
		t.Logf("%s's access token claims: %v", tc.user, c)
		if c["iss"] != p.Issuer {
			t.Errorf("%s: iss %v, want %s", tc.user, c["iss"], p.Issuer)
		}
		if aud := stringList(c["aud"]); !slices.Contains(aud, hydraadmin.Audience) {
			t.Errorf("%s: aud %v, want it to contain %s", tc.user, c["aud"], hydraadmin.Audience)
		}
		if c["sub"] != tc.user {
			t.Errorf("sub %v, want %s", c["sub"], tc.user)
		}
		if roles := stringList(c["roles"]); !slices.Equal(roles, []string{tc.role}) {
			t.Errorf("%s: top-level roles %v (%T), want [%s]", tc.user, c["roles"], c["roles"], tc.role)
		}
		if _, ok := c["exp"].(float64); !ok {
			t.Errorf("%s: no exp", tc.user)
		}
		if tok.RefreshToken == "" {
			t.Errorf("%s: no refresh token for offline_access", tc.user)
		}
		if id, _ := tok.Extra("id_token").(string); tc.user == "alice" && claims(t, id)["email"] != "alice@example.com" {
			t.Errorf("alice's ID token has email %v", claims(t, id)["email"])
		}
	}

	for _, tc := range []struct{ user, password string }{
		{"alice", "sam's secret"}, {"alice", ""}, {"mallory", "alice's secret"},
	} {
		_, err := login.Password(t.Context(), p.LoginConfig(), tc.user, tc.password)
		if !errors.Is(err, login.ErrWrongPassword) {
			t.Errorf("%s with password %q: error %v, want %v", tc.user, tc.password, err, login.ErrWrongPassword)
		}
	}
}

// TestConsentOnlyForFirstPartyClients: the app gives consent at once to warren-cli only;
// another client registered with Hydra gets access_denied, not a token.
func TestConsentOnlyForFirstPartyClients(t *testing.T) {
	p := startProvider(t, demousers.File{Users: []demousers.User{
		{Name: "alice", Password: "pw", Roles: []string{demousers.RoleCustomer}},
	}})
	other := hydraadmin.WarrenCLI()
	other.ClientID = "someone-else"
	if _, err := p.Admin.PutClient(t.Context(), other); err != nil {
		t.Fatal(err)
	}
	cfg := p.LoginConfig()
	cfg.ClientID = other.ClientID
	_, err := login.Password(t.Context(), cfg, "alice", "pw")
	if !errors.Is(err, login.ErrRefused) || !strings.Contains(err.Error(), "access_denied") {
		t.Errorf("login with client %s: error %v, want %v with access_denied", other.ClientID, err, login.ErrRefused)
	}
}
