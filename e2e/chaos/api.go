package chaos

import (
	"context"
	"errors"
	"net/http"
	"syscall"

	"github.com/warrenhq/warren/e2e"
)

// call is e2e.Call with token as the bearer token ("" for none: the broker's and
// Mailpit's APIs and the services' operational endpoints need none).
func call(ctx context.Context, token, method, url string, body any, want int, out any) error {
	return e2e.Call(ctx, method, url, e2e.Bearer(token), body, want, out)
}

// failure classifies why a request failed, for retrying and for the figures.
type failure int

const (
	// refused: nothing listened (connection refused): the request was not handled.
	refused failure = iota
	// serverError: a 5xx answer; the service says it did not do the work.
	serverError
	// throttled: 429, the rate limit; retried after Retry-After.
	throttled
	// ambiguous: a timeout or a broken connection after the request may have been
	// sent; the service may have done the work without the client knowing.
	ambiguous
	// rejected: any other 4xx. The request is wrong and retrying cannot help: a bug of
	// the test or the service.
	rejected
)

func classify(err error) failure {
	var se *e2e.StatusError
	switch {
	case errors.As(err, &se) && se.Status == http.StatusTooManyRequests:
		return throttled
	case errors.As(err, &se) && se.Status >= 500:
		return serverError
	case errors.As(err, &se):
		return rejected
	case errors.Is(err, syscall.ECONNREFUSED):
		return refused
	}
	return ambiguous
}
