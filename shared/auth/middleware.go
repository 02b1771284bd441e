package auth

import (
	"net/http"
	"strings"

	"github.com/warrenhq/warren/shared/httpjson"
)

// realm names the protection space in WWW-Authenticate (RFC 7235).
const realm = `Bearer realm="warren"`

// Middleware lets a request through to next only with a valid access token in
// "Authorization: Bearer <token>", and puts its Principal in the request's context
// (FromContext). Otherwise it answers 401 with a WWW-Authenticate challenge (RFC 6750: no
// error code when no token was sent, error="invalid_token" for a bad one) and a JSON
// httpjson.ErrorBody. Why a token was refused is logged at debug level, never the token.
//
// Wrap the whole API mux with it, inside the tracing handler: it gives that handler the
// route the mux matched, for the span's name.
func Middleware(v *Verifier, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, ok := bearerToken(r.Header.Get("Authorization"))
		if !ok {
			v.logger.DebugContext(r.Context(), "request refused: no bearer token", "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", realm)
			httpjson.WriteError(w, http.StatusUnauthorized, "", "this needs a bearer token (Authorization: Bearer <access token>)")
			return
		}
		p, err := v.Verify(r.Context(), raw)
		if err != nil {
			v.logger.DebugContext(r.Context(), "request refused: invalid bearer token", "method", r.Method, "path", r.URL.Path, "error", err)
			w.Header().Set("WWW-Authenticate", realm+`, error="invalid_token"`)
			httpjson.WriteError(w, http.StatusUnauthorized, "", "the bearer token is invalid or expired")
			return
		}
		inner := r.WithContext(NewContext(r.Context(), p))
		next.ServeHTTP(w, inner)
		// The mux sets the matched route on the request it is given, which is inner; the
		// tracing handler outside reads it from r.
		r.Pattern = inner.Pattern
	})
}

// Require lets a request through to next only when its principal holds role; otherwise it
// answers 403 (error="insufficient_scope", RFC 6750's nearest code) with a JSON
// httpjson.ErrorBody. A request that did not go through Middleware is answered 401.
func Require(role string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := FromContext(r.Context())
		if !ok {
			w.Header().Set("WWW-Authenticate", realm)
			httpjson.WriteError(w, http.StatusUnauthorized, "", "this needs a bearer token (Authorization: Bearer <access token>)")
			return
		}
		if !p.Has(role) {
			w.Header().Set("WWW-Authenticate", realm+`, error="insufficient_scope"`)
			httpjson.WriteError(w, http.StatusForbidden, "", "this needs the role "+role)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// bearerToken returns the token of an "Authorization: Bearer <token>" header; the scheme
// is case-insensitive (RFC 7235).
func bearerToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(header, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}
