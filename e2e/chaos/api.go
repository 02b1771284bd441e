package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// httpClient bounds every request: during a fault a request may hang until the network
// gives up, and the load generator must get the chance to count it and retry.
var httpClient = &http.Client{
	Timeout:   10 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second},
}

// statusError is an answer with an unexpected status.
type statusError struct {
	Status     int
	Body       string
	RetryAfter time.Duration
}

func (e *statusError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

// call sends method url with body as JSON (unless nil) and decodes a want answer into out
// (unless nil). Another status is a *statusError; a transport failure is returned as is.
func call(ctx context.Context, method, url string, body any, want int, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		e := &statusError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(data))}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
			e.RetryAfter = time.Duration(s) * time.Second
		}
		return e
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, url, err)
	}
	return nil
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
	var se *statusError
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
