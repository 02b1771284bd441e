package testkit

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

// The tokens SharedHydra hands out must have the shape Warren's services verify: issuer,
// audience, subject and a top-level roles claim (Hydra would otherwise nest the consent's
// session claims under "ext").
func TestHydraTokenCarriesTheClaimsServicesVerify(t *testing.T) {
	h := SharedHydra(t)
	claims := jwtClaims(t, h.Token(t, "alice", "customer"))
	if claims["iss"] != h.Issuer {
		t.Errorf("iss = %v, want %s", claims["iss"], h.Issuer)
	}
	if claims["sub"] != "alice" {
		t.Errorf("sub = %v, want alice", claims["sub"])
	}
	if aud := strings.Fields(strings.Trim(strings.ReplaceAll(jsonString(claims["aud"]), `"`, " "), "[] ")); !slices.Contains(aud, Audience) {
		t.Errorf("aud = %v, want it to contain %s", claims["aud"], Audience)
	}
	if roles := jsonString(claims["roles"]); roles != `["customer"]` {
		t.Errorf("roles = %s, want [\"customer\"] (claims: %v)", roles, claims)
	}
	other := jwtClaims(t, h.TokenFor(t, TokenRequest{Subject: "bob", Audience: "someone-else"}))
	if aud := jsonString(other["aud"]); strings.Contains(aud, Audience) {
		t.Errorf("a token asked for another audience carries %s: %s", Audience, aud)
	}
}

func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
