package service

import (
	"net/http"

	"go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/warrenhq/warren/shared/auth"
)

// Authenticated is a service's API handler: api behind auth.Middleware (every route needs
// a valid bearer token), with the verified subject recorded on the request's server span
// (enduser.id), so that a trace tells whose request it was. Give it to NewServer, whose
// tracing handler goes outside it.
func Authenticated(v *auth.Verifier, api http.Handler) http.Handler {
	return auth.Middleware(v, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := auth.FromContext(r.Context()); ok {
			trace.SpanFromContext(r.Context()).SetAttributes(semconv.EnduserID(p.Subject))
		}
		api.ServeHTTP(w, r)
	}))
}
