// Package login logs a user in to Warren's OpenID Connect provider (Ory Hydra with
// Warren's login app, deploy/cmd/warren-login) without a browser, and returns their
// tokens. It is for tools and tests (warrenctl token, e2e, chaos, bench): it drives the
// authorization-code flow with PKCE exactly as a browser would, through Hydra's redirects
// and the login app's form, so what it gets is what a real user gets.
//
// The redirect to the client's RedirectURL is never followed: the code is read off it,
// so nothing needs to listen there (http://127.0.0.1:8400/callback for warren-cli).
package login

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Errors a caller can tell apart with errors.Is.
var (
	// ErrWrongPassword: the login app refused the user name and password.
	ErrWrongPassword = errors.New("wrong user name or password")
	// ErrRefused: the provider ended the flow with an OAuth 2 error (access_denied, a
	// client or audience it does not allow...), or never reached the login form.
	ErrRefused = errors.New("authorization refused")
)

// The login app's form fields (deploy/cmd/warren-login): the form is posted to the URL
// it was served from.
const (
	fieldChallenge = "login_challenge"
	fieldUsername  = "username"
	fieldPassword  = "password"
)

// Config says which provider and client to log in with.
type Config struct {
	// Issuer is the provider's issuer URL, e.g. http://localhost:4444/; its endpoints are
	// read from <Issuer>/.well-known/openid-configuration.
	Issuer string
	// ClientID is a public client allowed the authorization-code grant (warren-cli).
	ClientID string
	// RedirectURL is one of the client's redirect URIs.
	RedirectURL string
	// Audience is requested for the access token (warren-api); empty for none.
	Audience []string
	// Scopes requested; empty: openid.
	Scopes []string
	// HTTPClient makes the requests; nil: one with a 15 s timeout. Its Jar and
	// CheckRedirect are not used: each login has its own cookie jar, as a fresh browser.
	HTTPClient *http.Client
}

// Password logs user in with password and returns their tokens (access token, and ID and
// refresh tokens when the scopes ask for them). A refused password is ErrWrongPassword.
func Password(ctx context.Context, cfg Config, user, password string) (*oauth2.Token, error) {
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 15 * time.Second}
	}
	endpoint, err := discover(ctx, base, cfg.Issuer)
	if err != nil {
		return nil, err
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{"openid"}
	}
	conf := oauth2.Config{ClientID: cfg.ClientID, RedirectURL: cfg.RedirectURL, Scopes: scopes,
		Endpoint: oauth2.Endpoint{AuthURL: endpoint.Auth, TokenURL: endpoint.Token, AuthStyle: oauth2.AuthStyleInParams}}
	redirect, err := url.Parse(cfg.RedirectURL)
	if err != nil {
		return nil, fmt.Errorf("login: redirect URL: %w", err)
	}
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	browser := *base
	browser.Jar = jar
	browser.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if sameEndpoint(req.URL, redirect) {
			return http.ErrUseLastResponse
		}
		if len(via) >= 20 {
			return errors.New("too many redirects")
		}
		return nil
	}

	state, verifier := randomString(), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if len(cfg.Audience) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("audience", strings.Join(cfg.Audience, " ")))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, conf.AuthCodeURL(state, opts...), nil)
	if err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	resp, err := send(&browser, req)
	if err != nil {
		return nil, err
	}
	if resp.callback == nil {
		// Hydra sent us to the login form: post the credentials to where it was served.
		form := resp.final
		challenge := form.Query().Get(fieldChallenge)
		if resp.status != http.StatusOK || challenge == "" {
			// Hydra's own error page carries the OAuth 2 error in its query.
			return nil, fmt.Errorf("login: %w: expected the login form, got %d from %s (%s)", ErrRefused,
				resp.status, form.Redacted(), form.Query().Get("error_description"))
		}
		action := *form
		action.RawQuery = ""
		body := url.Values{fieldChallenge: {challenge}, fieldUsername: {user}, fieldPassword: {password}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, action.String(), strings.NewReader(body.Encode()))
		if err != nil {
			return nil, fmt.Errorf("login: %w", err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if resp, err = send(&browser, req); err != nil {
			return nil, err
		}
		switch {
		case resp.status == http.StatusUnauthorized:
			return nil, fmt.Errorf("login as %q: %w", user, ErrWrongPassword)
		case resp.callback == nil:
			return nil, fmt.Errorf("login as %q: %w: the login form answered %d at %s", user, ErrRefused, resp.status, resp.final.Redacted())
		}
	}

	q := resp.callback.Query()
	switch {
	case q.Get("error") != "":
		return nil, fmt.Errorf("login as %q: %w: %s: %s", user, ErrRefused, q.Get("error"), q.Get("error_description"))
	case q.Get("state") != state:
		return nil, fmt.Errorf("login as %q: the callback's state does not match the request's", user)
	case q.Get("code") == "":
		return nil, fmt.Errorf("login as %q: the callback has no code", user)
	}
	tok, err := conf.Exchange(context.WithValue(ctx, oauth2.HTTPClient, base), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, fmt.Errorf("login as %q: exchange the code: %w", user, err)
	}
	return tok, nil
}

// answer is where a chain of redirects ended: at the callback (its URL), or at a page.
type answer struct {
	callback *url.URL
	final    *url.URL
	status   int
}

// send follows redirects until a page or the callback, and closes the body.
func send(c *http.Client, req *http.Request) (answer, error) {
	resp, err := c.Do(req)
	if err != nil {
		return answer{}, fmt.Errorf("login: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	a := answer{final: resp.Request.URL, status: resp.StatusCode}
	if resp.StatusCode/100 == 3 {
		loc, err := resp.Location()
		if err != nil {
			return answer{}, fmt.Errorf("login: redirect from %s: %w", resp.Request.URL.Redacted(), err)
		}
		a.callback = loc
	}
	return a, nil
}

// endpoints are the provider's, from its discovery document.
type endpoints struct {
	Auth  string `json:"authorization_endpoint"`
	Token string `json:"token_endpoint"`
}

func discover(ctx context.Context, c *http.Client, issuer string) (endpoints, error) {
	var e endpoints
	u := strings.TrimRight(issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return e, fmt.Errorf("login: discovery: %w", err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return e, fmt.Errorf("login: discovery: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return e, fmt.Errorf("login: discovery: %s answered %s", u, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&e); err != nil {
		return e, fmt.Errorf("login: discovery: %w", err)
	}
	if e.Auth == "" || e.Token == "" {
		return e, fmt.Errorf("login: discovery: %s names no authorization or token endpoint", u)
	}
	return e, nil
}

// sameEndpoint is true when u is the redirect URL r, query aside.
func sameEndpoint(u, r *url.URL) bool {
	return u.Scheme == r.Scheme && u.Host == r.Host && u.Path == r.Path
}

func randomString() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
