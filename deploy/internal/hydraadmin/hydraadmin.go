// Package hydraadmin is the part of Ory Hydra's admin REST API (v2) that Warren uses: the
// login and consent requests Hydra delegates to the login app, and OAuth 2 client
// registration for `warrenctl oidc setup`. It is a few small structs over net/http rather
// than github.com/ory/hydra-client-go: that generated client is large, and the module
// proxy serves it only at v2.2.1 while Hydra is v2.3.0 (Hydra builds its own copy from
// internal/httpclient through a replace directive).
//
// The admin API has no authentication of its own: whoever reaches it can log anyone in.
// Compose never publishes it; only the login app and the setup one-shot reach it.
package hydraadmin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// ErrNotFound is returned when Hydra answers 404 (an unknown client, or a login or consent
// challenge that does not exist).
var ErrNotFound = errors.New("not found")

// Client calls one Hydra's admin API. The zero HTTP uses a client with a 10 s timeout.
type Client struct {
	// BaseURL is the admin API's root, e.g. http://hydra:4445.
	BaseURL string
	HTTP    *http.Client
}

// New returns a Client for the admin API at baseURL.
func New(baseURL string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), HTTP: &http.Client{Timeout: 10 * time.Second}}
}

// OAuth2Client is the part of Hydra's client object Warren sets.
type OAuth2Client struct {
	ClientID                string   `json:"client_id"`
	ClientName              string   `json:"client_name,omitempty"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	Scope                   string   `json:"scope"`
	Audience                []string `json:"audience"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	// AccessTokenStrategy "jwt" or "opaque"; empty: Hydra's strategies.access_token.
	AccessTokenStrategy string `json:"access_token_strategy,omitempty"`
	// SkipConsent lets Hydra skip the consent screen for a first-party client.
	SkipConsent bool `json:"skip_consent,omitempty"`
}

// LoginRequest is what Hydra tells about a pending login.
type LoginRequest struct {
	Challenge string `json:"challenge"`
	// Skip is true when Hydra already knows the user (a remembered session): the login app
	// must then accept with Subject and not ask again.
	Skip    bool         `json:"skip"`
	Subject string       `json:"subject"`
	Client  OAuth2Client `json:"client"`
}

// AcceptLogin is the body of a login acceptance.
type AcceptLogin struct {
	Subject  string `json:"subject"`
	Remember bool   `json:"remember"`
	// RememberFor is in seconds; 0 with Remember is "until the browser session ends".
	RememberFor int `json:"remember_for,omitempty"`
}

// ConsentRequest is what Hydra tells about a pending consent.
type ConsentRequest struct {
	Challenge                    string       `json:"challenge"`
	Subject                      string       `json:"subject"`
	Skip                         bool         `json:"skip"`
	RequestedScope               []string     `json:"requested_scope"`
	RequestedAccessTokenAudience []string     `json:"requested_access_token_audience"`
	Client                       OAuth2Client `json:"client"`
}

// AcceptConsent is the body of a consent acceptance. Session's claims go into the tokens:
// AccessToken's into the access token (under "ext", and top-level for the claims Hydra's
// oauth2.allowed_top_level_claims lists), IDToken's into the ID token.
type AcceptConsent struct {
	GrantScope               []string `json:"grant_scope"`
	GrantAccessTokenAudience []string `json:"grant_access_token_audience"`
	Remember                 bool     `json:"remember"`
	Session                  Session  `json:"session"`
}

// Session holds the claims added to the tokens.
type Session struct {
	AccessToken map[string]any `json:"access_token,omitempty"`
	IDToken     map[string]any `json:"id_token,omitempty"`
}

// Reject is the body of a login or consent rejection: an OAuth 2 error code
// (access_denied) and a text the client is shown.
type Reject struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

// redirect is Hydra's answer to an acceptance or rejection: where to send the browser.
type redirect struct {
	RedirectTo string `json:"redirect_to"`
}

// LoginRequest fetches the login request of challenge.
func (c *Client) LoginRequest(ctx context.Context, challenge string) (LoginRequest, error) {
	var out LoginRequest
	err := c.do(ctx, http.MethodGet, "/admin/oauth2/auth/requests/login?login_challenge="+url.QueryEscape(challenge), nil, &out)
	return out, err
}

// AcceptLogin accepts the login of challenge and returns where to redirect the browser.
func (c *Client) AcceptLogin(ctx context.Context, challenge string, body AcceptLogin) (string, error) {
	var out redirect
	err := c.do(ctx, http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(challenge), body, &out)
	return out.RedirectTo, err
}

// ConsentRequest fetches the consent request of challenge.
func (c *Client) ConsentRequest(ctx context.Context, challenge string) (ConsentRequest, error) {
	var out ConsentRequest
	err := c.do(ctx, http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(challenge), nil, &out)
	return out, err
}

// AcceptConsent accepts the consent of challenge and returns where to redirect the browser.
func (c *Client) AcceptConsent(ctx context.Context, challenge string, body AcceptConsent) (string, error) {
	var out redirect
	err := c.do(ctx, http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(challenge), body, &out)
	return out.RedirectTo, err
}

// RejectConsent refuses the consent of challenge and returns where to redirect the browser.
func (c *Client) RejectConsent(ctx context.Context, challenge string, body Reject) (string, error) {
	var out redirect
	err := c.do(ctx, http.MethodPut, "/admin/oauth2/auth/requests/consent/reject?consent_challenge="+url.QueryEscape(challenge), body, &out)
	return out.RedirectTo, err
}

// PutClient creates or replaces the client cl.ClientID, so that registering it is the same
// call on the first start and every later one. Hydra's PUT replaces a client but does not
// create one, hence the POST after a 404.
func (c *Client) PutClient(ctx context.Context, cl OAuth2Client) (created bool, err error) {
	err = c.do(ctx, http.MethodPut, "/admin/clients/"+url.PathEscape(cl.ClientID), cl, nil)
	if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	return true, c.do(ctx, http.MethodPost, "/admin/clients", cl, nil)
}

// Ready returns nil when Hydra answers its readiness probe (the database is reachable).
func (c *Client) Ready(ctx context.Context) error {
	return c.do(ctx, http.MethodGet, "/health/ready", nil, nil)
}

// do sends body as JSON and decodes a 2xx answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	op := method + " " + strings.SplitN(path, "?", 2)[0]
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("hydra %s: %w", op, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return fmt.Errorf("hydra %s: %w", op, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("hydra %s: %w", op, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("hydra %s: %w", op, err)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("hydra %s: %w: %s", op, ErrNotFound, bytes.TrimSpace(b))
	case resp.StatusCode/100 != 2:
		return fmt.Errorf("hydra %s: %s: %s", op, resp.Status, bytes.TrimSpace(b))
	case out == nil:
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("hydra %s: decode: %w", op, err)
	}
	return nil
}
