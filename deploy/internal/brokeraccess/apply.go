package brokeraccess

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/warrenhq/warren/deploy/internal/rabbitmgmt"
	"github.com/warrenhq/warren/shared/events"
)

// GuestUser is RabbitMQ's well-known default user. Its password is public, so Apply
// deletes it.
const GuestUser = "guest"

// ApplyConfig configures Apply.
type ApplyConfig struct {
	// VHost is where the permissions apply (users themselves are broker-wide).
	VHost string
	// Passwords holds each service's password by service name; every service needs one.
	Passwords map[string]string
	// AdminUser is the user Apply runs as. It must not be guest, which Apply deletes.
	AdminUser string
}

// Validate reports a configuration Apply cannot carry out, before anything is changed.
func (c ApplyConfig) Validate() error {
	if c.VHost == "" {
		return errors.New("apply users: no vhost")
	}
	if c.AdminUser == GuestUser {
		return errors.New("apply users: the admin user is guest, which would be deleted: create another administrator")
	}
	for _, name := range Names() {
		if c.Passwords[name] == "" {
			return fmt.Errorf("apply users: no password for %s", name)
		}
	}
	return nil
}

// Apply creates or updates one user per service (no tags: no management UI), sets its
// permissions and topic permissions in the vhost, and deletes guest if it exists. It
// touches no other user and no other vhost, and running it again changes nothing but
// the passwords it is given.
func Apply(ctx context.Context, api *rabbitmgmt.Client, config ApplyConfig, logger *slog.Logger) error {
	if err := config.Validate(); err != nil {
		return err
	}
	topology := events.Topology(events.Regions)
	for _, s := range Services() {
		a, err := For(topology, s)
		if err != nil {
			return fmt.Errorf("apply users: %w", err)
		}
		if err := applyUser(ctx, api, config.VHost, a, config.Passwords[s.Name]); err != nil {
			return fmt.Errorf("apply users: %w", err)
		}
		p := a.Permissions()
		logger.InfoContext(ctx, "broker user applied", "user", s.Name, "vhost", config.VHost,
			"configure", p.Configure, "write", p.Write, "read", p.Read)
	}
	if err := api.DeleteUser(ctx, GuestUser); err != nil {
		return fmt.Errorf("apply users: delete %s: %w", GuestUser, err)
	}
	logger.InfoContext(ctx, "guest user absent")
	return nil
}

func applyUser(ctx context.Context, api *rabbitmgmt.Client, vhost string, a Access, password string) error {
	if err := api.PutUser(ctx, a.User, password, nil); err != nil {
		return fmt.Errorf("user %s: %w", a.User, err)
	}
	if err := api.PutPermissions(ctx, vhost, a.User, a.Permissions()); err != nil {
		return fmt.Errorf("permissions of %s: %w", a.User, err)
	}
	for _, tp := range a.TopicPermissions() {
		if err := api.PutTopicPermissions(ctx, vhost, a.User, tp); err != nil {
			return fmt.Errorf("topic permissions of %s on %s: %w", a.User, tp.Exchange, err)
		}
	}
	return nil
}
