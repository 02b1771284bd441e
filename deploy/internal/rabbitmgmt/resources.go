package rabbitmgmt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Permissions are a user's rights in one vhost: three regular expressions that a resource
// name (queue or exchange: RabbitMQ does not tell them apart here) must match for the
// configure (declare, delete), write (publish, bind to) and read (consume, bind from)
// operations. "^$" matches nothing.
type Permissions struct {
	Configure string `json:"configure"`
	Write     string `json:"write"`
	Read      string `json:"read"`
}

// TopicPermissions narrow publishing to (Write) and binding from (Read) one topic
// exchange to routing keys matching the expressions.
type TopicPermissions struct {
	Exchange string `json:"exchange"`
	Write    string `json:"write"`
	Read     string `json:"read"`
}

// Policy sets optional queue or exchange arguments on every queue or exchange whose name
// Pattern matches (a regular expression). A queue gets the arguments of one policy at most,
// the matching one with the highest Priority; the queue's own arguments win over it.
type Policy struct {
	Pattern string `json:"pattern"`
	// ApplyTo is "queues", "exchanges" or "all".
	ApplyTo    string         `json:"apply-to"`
	Definition map[string]any `json:"definition"`
	Priority   int            `json:"priority"`
}

// User is a broker user as the API lists it.
type User struct {
	Name string `json:"name"`
	Tags any    `json:"tags"` // a list in 4.x, a comma-separated string in older versions
}

// PutUser creates the user or updates its password and tags.
func (c *Client) PutUser(ctx context.Context, name, password string, tags []string) error {
	body := map[string]any{"password": password, "tags": tags}
	if tags == nil {
		body["tags"] = []string{}
	}
	return c.do(ctx, http.MethodPut, path("users", name), body, nil)
}

// User returns the user named name, or an error wrapping ErrNotFound.
func (c *Client) User(ctx context.Context, name string) (User, error) {
	var u User
	err := c.do(ctx, http.MethodGet, path("users", name), nil, &u)
	return u, err
}

// DeleteUser deletes the user. A user that does not exist is not an error: the outcome
// is the same.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	err := c.do(ctx, http.MethodDelete, path("users", name), nil, nil)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// PutPermissions sets user's permissions in vhost, replacing the previous ones.
func (c *Client) PutPermissions(ctx context.Context, vhost, user string, p Permissions) error {
	return c.do(ctx, http.MethodPut, path("permissions", vhost, user), p, nil)
}

// GetPermissions returns user's permissions in vhost, or an error wrapping ErrNotFound.
func (c *Client) GetPermissions(ctx context.Context, vhost, user string) (Permissions, error) {
	var p Permissions
	err := c.do(ctx, http.MethodGet, path("permissions", vhost, user), nil, &p)
	return p, err
}

// PutTopicPermissions sets user's topic permissions on one exchange of vhost.
func (c *Client) PutTopicPermissions(ctx context.Context, vhost, user string, p TopicPermissions) error {
	return c.do(ctx, http.MethodPut, path("topic-permissions", vhost, user), p, nil)
}

// PutPolicy creates or replaces the policy named name in vhost.
func (c *Client) PutPolicy(ctx context.Context, vhost, name string, p Policy) error {
	return c.do(ctx, http.MethodPut, path("policies", vhost, name), p, nil)
}

// EnsureVHost creates vhost if it does not exist and reports whether it did.
func (c *Client) EnsureVHost(ctx context.Context, vhost string) (created bool, err error) {
	err = c.do(ctx, http.MethodGet, path("vhosts", vhost), nil, nil)
	if err == nil {
		return false, nil
	}
	if !errors.Is(err, ErrNotFound) {
		return false, err
	}
	if err := c.do(ctx, http.MethodPut, path("vhosts", vhost), map[string]any{}, nil); err != nil {
		return false, err
	}
	return true, nil
}

// ImportDefinitions imports a definitions file (exchanges, queues, bindings...) into vhost,
// whatever vhost the file names. Importing is additive and idempotent: nothing that exists
// is deleted, and an existing queue keeps its arguments.
func (c *Client) ImportDefinitions(ctx context.Context, vhost string, definitions []byte) error {
	if !json.Valid(definitions) {
		return errors.New("import definitions: not valid JSON")
	}
	return c.do(ctx, http.MethodPost, path("definitions", vhost), json.RawMessage(bytes.TrimSpace(definitions)), nil)
}

// WaitReady polls the API until it answers or timeout passes. A broker reports healthy
// (rabbitmq-diagnostics ping) a moment before its management listener accepts requests,
// so a one-shot run right after start-up must wait. Wrong credentials fail at once.
func (c *Client) WaitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for wait := 250 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err := c.do(ctx, http.MethodGet, "/api/overview", nil, nil)
		var status *StatusError
		if err == nil || (errors.As(err, &status) && status.Status < 500) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the management API: %w (last error: %v)", ctx.Err(), err)
		case <-time.After(wait):
		}
	}
}
