package hydraadmin

// Warren's OAuth 2 client, as `warrenctl oidc setup` registers it (AUTH-CONTRACT.md).
const (
	// CLIClientID is the public client of warrenctl, the tests and the tools.
	CLIClientID = "warren-cli"
	// CLIRedirectURL is its redirect URI: a loopback address that the headless client
	// (shared/auth/login) reads the code off and never listens on.
	CLIRedirectURL = "http://127.0.0.1:8400/callback"
	// Audience is what Warren's APIs accept in an access token's aud.
	Audience = "warren-api"
)

// WarrenCLI is the warren-cli client: public (PKCE, no secret), authorization code and
// refresh tokens, audience warren-api.
func WarrenCLI() OAuth2Client {
	return OAuth2Client{
		ClientID:                CLIClientID,
		ClientName:              "Warren CLI and tests",
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		Scope:                   "openid offline_access",
		Audience:                []string{Audience},
		RedirectURIs:            []string{CLIRedirectURL},
		TokenEndpointAuthMethod: "none",
		AccessTokenStrategy:     "jwt",
	}
}
