package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warrenhq/warren/deploy/internal/demousers"
	"github.com/warrenhq/warren/deploy/internal/hydratest"
	"github.com/warrenhq/warren/shared/auth/login"
)

// TestOIDCSetupAndToken is compose's path to a token: secrets init writes the users
// file, oidc setup registers warren-cli (twice: every `up` runs it), and token logs alice
// in with the password from that file and prints an access token for her.
func TestOIDCSetupAndToken(t *testing.T) {
	dir := t.TempDir()
	secretsRun(t, dir, map[string]string{})
	usersFile := filepath.Join(dir, "login", demousers.FileName)
	p := hydratest.StartProvider(t, usersFile)
	environ := map[string]string{"HYDRA_ADMIN_URL": p.AdminURL, "OIDC_ISSUER": p.Issuer}

	for i, want := range []string{"oauth2 client warren-cli created\n", "oauth2 client warren-cli updated\n"} {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"oidc", "setup"}, environ, &out, io.Discard); err != nil {
			t.Fatalf("oidc setup, run %d: %v", i+1, err)
		}
		if out.String() != want {
			t.Errorf("oidc setup, run %d: printed %q, want %q", i+1, out.String(), want)
		}
	}

	var out bytes.Buffer
	if err := run(t.Context(), []string{"token", "--user", "alice", "--users-file", usersFile}, environ, &out, io.Discard); err != nil {
		t.Fatalf("token: %v", err)
	}
	jwt := strings.TrimSuffix(out.String(), "\n")
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 || strings.Contains(jwt, "\n") {
		t.Fatalf("token printed %q, want one JWT on one line", out.String())
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Sub   string   `json:"sub"`
		Roles []string `json:"roles"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Sub != "alice" || len(claims.Roles) != 1 || claims.Roles[0] != "customer" {
		t.Errorf("token's claims sub %q roles %v, want alice [customer]", claims.Sub, claims.Roles)
	}

	environ["TOKEN_PASSWORD"] = "not alice's"
	err = run(t.Context(), []string{"token", "--user", "alice"}, environ, io.Discard, io.Discard)
	if !errors.Is(err, login.ErrWrongPassword) || !strings.Contains(err.Error(), "wrong user name or password") {
		t.Errorf("token with a wrong TOKEN_PASSWORD: error %v, want %v", err, login.ErrWrongPassword)
	}
}
