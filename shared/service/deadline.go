package service

import (
	"context"
	"net/http"
	"time"
)

// Deadline gives every request at most timeout: the request's context is cancelled then,
// so whatever the handler waits for with it (a database query, a pool connection, an
// answer from the broker) gives up, and the handler answers with an error instead of
// holding the client, a connection and a goroutine for as long as the stall lasts.
//
// The handler keeps running in the request's goroutine and writes the answer itself
// (see WriteDeadlineExceeded). http.TimeoutHandler would answer on time even for a handler
// that ignores its context, but it buffers every response and leaves that handler running
// after the answer; handlers here pass r.Context() to everything they wait on instead.
func Deadline(timeout time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// WriteDeadlineExceeded is the answer to a request that ran out of time (its context's
// error is context.DeadlineExceeded): 503, so that a client retries later, with an
// ErrorBody and a Retry-After.
func WriteDeadlineExceeded(w http.ResponseWriter) {
	w.Header().Set("Retry-After", "1")
	WriteError(w, http.StatusServiceUnavailable, "", "the request did not finish in time; retry later")
}
