// Package rabbitmgmt is a small client for the RabbitMQ management HTTP API: the calls
// warrenctl makes, and nothing more. It speaks JSON over HTTP with basic authentication.
package rabbitmgmt

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

// ErrNotFound is returned (wrapped) when the API answers 404.
var ErrNotFound = errors.New("not found")

// StatusError is an answer of the API other than 2xx, with the reason RabbitMQ gave.
type StatusError struct {
	Method, Path string
	Status       int
	Body         string
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: %d %s: %s", e.Method, e.Path, e.Status, http.StatusText(e.Status), e.Body)
}

// Is lets errors.Is(err, ErrNotFound) see a 404.
func (e *StatusError) Is(target error) bool {
	return target == ErrNotFound && e.Status == http.StatusNotFound
}

// Config configures a Client.
type Config struct {
	// URL is the API's base URL, e.g. http://rabbitmq:15672. Credentials in it are ignored:
	// User and Password are used.
	URL string
	// User and Password are an administrator's.
	User, Password string
	// HTTPClient defaults to a client with a 10 s timeout per request.
	HTTPClient *http.Client
}

func (c *Config) setDefaults() {
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("rabbitmgmt config: URL %q is not an http(s) URL", c.URL)
	}
	if c.User == "" || c.Password == "" {
		return errors.New("rabbitmgmt config: User and Password are required")
	}
	return nil
}

// Client calls the management API. It is safe for concurrent use.
type Client struct {
	base   *url.URL
	config Config
}

// New returns a Client for config.
func New(config Config) (*Client, error) {
	config.setDefaults()
	if err := config.Validate(); err != nil {
		return nil, err
	}
	base, _ := url.Parse(config.URL) // validated above
	base.User = nil
	base.Path = strings.TrimSuffix(base.Path, "/")
	return &Client{base: base, config: config}, nil
}

// path joins API path segments, escaping each one: a vhost named "/" becomes %2F.
func path(segments ...string) string {
	var b strings.Builder
	b.WriteString("/api")
	for _, s := range segments {
		b.WriteString("/")
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

// do sends in (when not nil) as JSON and decodes the answer into out (when not nil).
func (c *Client) do(ctx context.Context, method, apiPath string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: encode: %w", method, apiPath, err)
		}
		body = bytes.NewReader(b)
	}
	u, err := url.Parse(c.base.String() + apiPath)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, apiPath, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, apiPath, err)
	}
	req.SetBasicAuth(c.config.User, c.config.Password)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.config.HTTPClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, apiPath, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return &StatusError{Method: method, Path: apiPath, Status: resp.StatusCode, Body: strings.TrimSpace(string(msg))}
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, apiPath, err)
	}
	return nil
}
