// Package loginapp is Warren's login and consent app for Ory Hydra (deploy/cmd/warren-login
// serves it): the pages Hydra sends the browser to, which check the user against the users
// file and tell Hydra's admin API who logged in and which claims their tokens carry.
package loginapp

import (
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"slices"

	"github.com/warrenhq/warren/deploy/internal/demousers"
	"github.com/warrenhq/warren/deploy/internal/hydraadmin"
)

// Config is what the app needs.
type Config struct {
	// Hydra is the admin API that accepts logins and consents.
	Hydra *hydraadmin.Client
	// UsersFile is the users file (deploy/internal/demousers), read on each login and
	// consent, so a new `secrets init` is seen without a restart.
	UsersFile string
	// TrustedClients are the first-party clients whose consent is given at once; any
	// other client's consent is refused.
	TrustedClients []string
	Logger         *slog.Logger
}

// app serves the login and consent pages.
type app struct {
	hydra     *hydraadmin.Client
	usersFile string
	trusted   []string
	logger    *slog.Logger
}

// Handler returns the app's routes: GET and POST /login, GET /consent, GET /healthz.
func Handler(cfg Config) (http.Handler, error) {
	if cfg.Hydra == nil || cfg.UsersFile == "" || cfg.Logger == nil {
		return nil, errors.New("loginapp: Hydra, UsersFile and Logger are required")
	}
	a := &app{hydra: cfg.Hydra, usersFile: cfg.UsersFile, trusted: cfg.TrustedClients, logger: cfg.Logger}
	return a.routes(), nil
}

// Form fields of the login page; the headless client (shared/auth/login) posts them too,
// to the URL the form was served from.
const (
	fieldChallenge = "login_challenge"
	fieldUsername  = "username"
	fieldPassword  = "password"
)

func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /login", a.loginPage)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /consent", a.consent)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	return mux
}

// loginPage shows the form, unless Hydra already knows the user (skip), in which case
// Hydra requires the login to be accepted for that subject without asking.
func (a *app) loginPage(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get(fieldChallenge)
	if challenge == "" {
		http.Error(w, "missing login_challenge: start at Hydra's /oauth2/auth", http.StatusBadRequest)
		return
	}
	req, err := a.hydra.LoginRequest(r.Context(), challenge)
	if err != nil {
		a.hydraFailed(w, r, err)
		return
	}
	if req.Skip {
		a.acceptLogin(w, r, challenge, req.Subject)
		return
	}
	a.showForm(w, http.StatusOK, challenge, "", "")
}

// login checks the posted user name and password against the users file and accepts
// the login with Hydra, or shows the form again with 401. Hydra binds the challenge to
// the browser that started the flow (its CSRF cookie), so a challenge posted from
// elsewhere cannot complete a login in someone else's browser.
func (a *app) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	challenge, name := r.PostForm.Get(fieldChallenge), r.PostForm.Get(fieldUsername)
	if challenge == "" {
		http.Error(w, "missing login_challenge", http.StatusBadRequest)
		return
	}
	users, err := demousers.Load(a.usersFile)
	if err != nil {
		a.logger.ErrorContext(r.Context(), "login", "error", err)
		http.Error(w, "users file unavailable", http.StatusInternalServerError)
		return
	}
	if _, ok := users.Check(name, r.PostForm.Get(fieldPassword)); !ok {
		a.logger.InfoContext(r.Context(), "login refused", "user", name)
		a.showForm(w, http.StatusUnauthorized, challenge, name, "Wrong user name or password.")
		return
	}
	a.acceptLogin(w, r, challenge, name)
}

func (a *app) acceptLogin(w http.ResponseWriter, r *http.Request, challenge, subject string) {
	// Not remembered: each flow logs in again, so a changed password takes effect at once.
	to, err := a.hydra.AcceptLogin(r.Context(), challenge, hydraadmin.AcceptLogin{Subject: subject})
	if err != nil {
		a.hydraFailed(w, r, err)
		return
	}
	a.logger.InfoContext(r.Context(), "login accepted", "user", subject)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// consent gives a first-party client what it asked for at once, adding the user's roles
// to the access token (top-level "roles" through Hydra's oauth2.allowed_top_level_claims)
// and their email to the ID token. Any other client is refused: Warren has no consent
// screen, and giving a third party a user's access without asking is not consent.
func (a *app) consent(w http.ResponseWriter, r *http.Request) {
	challenge := r.URL.Query().Get("consent_challenge")
	if challenge == "" {
		http.Error(w, "missing consent_challenge", http.StatusBadRequest)
		return
	}
	req, err := a.hydra.ConsentRequest(r.Context(), challenge)
	if err != nil {
		a.hydraFailed(w, r, err)
		return
	}
	var user demousers.User
	users, err := demousers.Load(a.usersFile)
	if err == nil {
		user, err = users.User(req.Subject)
	}
	if err != nil || !slices.Contains(a.trusted, req.Client.ClientID) {
		a.logger.WarnContext(r.Context(), "consent refused", "client", req.Client.ClientID, "user", req.Subject, "error", err)
		to, err := a.hydra.RejectConsent(r.Context(), challenge, hydraadmin.Reject{
			Error: "access_denied", ErrorDescription: "this client or user is not allowed here"})
		if err != nil {
			a.hydraFailed(w, r, err)
			return
		}
		http.Redirect(w, r, to, http.StatusFound)
		return
	}
	to, err := a.hydra.AcceptConsent(r.Context(), challenge, hydraadmin.AcceptConsent{
		GrantScope:               req.RequestedScope,
		GrantAccessTokenAudience: req.RequestedAccessTokenAudience,
		Session: hydraadmin.Session{
			AccessToken: map[string]any{"roles": user.Roles},
			IDToken:     map[string]any{"email": user.Email, "roles": user.Roles},
		},
	})
	if err != nil {
		a.hydraFailed(w, r, err)
		return
	}
	a.logger.InfoContext(r.Context(), "consent given", "client", req.Client.ClientID, "user", req.Subject, "roles", user.Roles)
	http.Redirect(w, r, to, http.StatusFound)
}

// hydraFailed answers a failed admin API call: 404 for an unknown or expired challenge
// (the user should start again), 502 otherwise. It logs once.
func (a *app) hydraFailed(w http.ResponseWriter, r *http.Request, err error) {
	if isNotFound(err) {
		// A stale bookmark or a reused link: the user's doing, not an outage.
		a.logger.InfoContext(r.Context(), "unknown or expired challenge", "path", r.URL.Path, "error", err)
		http.Error(w, "this login has expired or does not exist: start again", http.StatusNotFound)
		return
	}
	a.logger.ErrorContext(r.Context(), "hydra admin API", "path", r.URL.Path, "error", err)
	http.Error(w, "the identity provider did not answer", http.StatusBadGateway)
}

func (a *app) showForm(w http.ResponseWriter, status int, challenge, name, message string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	// The page is never framed: no clickjacking of the login form.
	w.Header().Set("X-Frame-Options", "DENY")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	w.WriteHeader(status)
	err := loginForm.Execute(w, map[string]string{
		"Challenge": challenge, "Username": name, "Error": message,
		"FieldChallenge": fieldChallenge, "FieldUsername": fieldUsername, "FieldPassword": fieldPassword,
	})
	if err != nil {
		a.logger.Error("login form", "error", err)
	}
}

var loginForm = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Warren: log in</title>
<style>body{font-family:sans-serif;max-width:22em;margin:4em auto}label,input,button{display:block;width:100%;margin:.3em 0}.error{color:#b00}</style>
</head>
<body>
<h1>Log in to Warren</h1>
{{if .Error}}<p class="error" role="alert">{{.Error}}</p>{{end}}
<form method="post" action="/login">
<input type="hidden" name="{{.FieldChallenge}}" value="{{.Challenge}}">
<label>User name <input name="{{.FieldUsername}}" value="{{.Username}}" autocomplete="username" required autofocus></label>
<label>Password <input name="{{.FieldPassword}}" type="password" autocomplete="current-password" required></label>
<button type="submit">Log in</button>
</form>
</body>
</html>
`))

func isNotFound(err error) bool { return errors.Is(err, hydraadmin.ErrNotFound) }
