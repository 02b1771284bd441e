package auth

import (
	"context"
	"slices"
)

// The roles Warren's tokens carry, in their top-level roles claim.
const (
	// RoleCustomer places, reads and cancels its own orders.
	RoleCustomer = "customer"
	// RoleStaff runs the shop: sets stock, reads the messages sent and the statistics.
	RoleStaff = "staff"
)

// Principal is who a verified token speaks for.
type Principal struct {
	// Subject is the token's sub: the user's name (alice), stable for as long as the
	// provider keeps the user.
	Subject string
	// Roles are the token's roles claim.
	Roles []string
}

// Has reports whether p holds role.
func (p Principal) Has(role string) bool { return slices.Contains(p.Roles, role) }

type principalKey struct{}

// FromContext returns the principal Middleware verified for this request; false when the
// request did not go through Middleware.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// NewContext returns ctx carrying p, as Middleware does once it has verified a token: for
// tests of handlers behind Middleware that need no provider.
func NewContext(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
