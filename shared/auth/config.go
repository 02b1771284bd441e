// Package auth verifies the bearer tokens of Warren's HTTP APIs and authorizes by role. One
// middleware (Middleware) checks every API request's access token, a JWT from the OpenID
// provider (Ory Hydra), and puts its subject and roles in the request's context; Require
// lets a route through only for a role. The answers are the API's JSON error bodies: 401
// for no or a bad token, 403 for a missing role.
package auth

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Config says whose tokens are accepted. Every service has it, in service.BaseConfig.
type Config struct {
	// Issuer is the provider's issuer URL, compared exactly with the tokens' iss claim
	// (Hydra writes it with the trailing slash). It is the host-facing URL, the one a
	// user's browser and token tool reach, even where the services reach the provider by
	// another name: hence JWKSURL.
	Issuer string `env:"OIDC_ISSUER" envDefault:"http://localhost:4444/"`
	// JWKSURL is where the provider publishes the keys that sign its tokens. Empty means
	// <Issuer>.well-known/jwks.json; in compose it is http://hydra:4444/.well-known/jwks.json,
	// since localhost inside a container is the container. OpenID discovery is not used:
	// it would hand out the host-facing URLs.
	JWKSURL string `env:"OIDC_JWKS_URL"`
	// Audience must be one of the tokens' aud values: a token issued for another API is
	// refused here.
	Audience string `env:"OIDC_AUDIENCE" envDefault:"warren-api"`
}

// KeysURL is JWKSURL, or the issuer's default when it is empty.
func (c Config) KeysURL() string {
	if c.JWKSURL != "" {
		return c.JWKSURL
	}
	return strings.TrimSuffix(c.Issuer, "/") + "/.well-known/jwks.json"
}

// Validate reports a configuration that cannot verify anything.
func (c Config) Validate() error {
	if c.Issuer == "" || c.Audience == "" {
		return errors.New("auth: OIDC_ISSUER and OIDC_AUDIENCE must be set")
	}
	if u, err := url.Parse(c.KeysURL()); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("auth: OIDC_JWKS_URL %q is not an http(s) URL", c.KeysURL())
	}
	return nil
}
