// Package orders is the order service's business: taking orders, following them through
// inventory's verdict to confirmed or rejected, and cancelling them. Every state change
// commits together with the event that announces it (through the outbox), so the rest of
// Warren hears of a change if and only if it happened.
package orders

import (
	"errors"
	"time"

	"github.com/warrenhq/warren/shared/events"
)

// Sentinel errors; the HTTP layer translates them to status codes in one place.
var (
	// ErrNotFound is returned for an order id that does not exist (or is no UUID at all).
	ErrNotFound = errors.New("order not found")
	// ErrUnknownSKU is returned for a SKU inventory does not stock.
	ErrUnknownSKU = errors.New("unknown sku")
	// ErrNotCancellable is returned when cancelling an order that is already cancelled or
	// was rejected.
	ErrNotCancellable = errors.New("order cannot be cancelled")
	// ErrUnavailable is returned when a dependency (inventory, over the broker) cannot be
	// asked at all, as opposed to not answering in time.
	ErrUnavailable = errors.New("dependency unavailable")
	// ErrTooManyOpenOrders is returned when a customer places an order while holding as
	// many pending orders as the quota allows.
	ErrTooManyOpenOrders = errors.New("too many pending orders")
)

// Status is where an order is in its life. Pending is the only state inventory's verdict
// can move an order out of; confirmed and pending orders can still be cancelled.
type Status string

// The statuses of an order.
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
)

// Cancellable reports whether an order in status s may still be cancelled.
func (s Status) Cancellable() bool { return s == StatusPending || s == StatusConfirmed }

// Order is an order as the service stores and shows it.
type Order struct {
	ID string `json:"id"`
	// Owner is the subject of the customer who placed it (auth.Principal.Subject); empty
	// for orders placed before the API authenticated its callers, which nobody owns.
	Owner    string          `json:"-"`
	Status   Status          `json:"status"`
	Customer events.Customer `json:"customer"`
	Region   events.Region   `json:"region"`
	// Items carry the unit price the order was accepted at.
	Items      []events.Item `json:"items"`
	TotalCents int64         `json:"total_cents"`
	// Reason says why a rejected order was rejected.
	Reason    string    `json:"reason,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Total is the sum of the items' prices.
func Total(items []events.Item) int64 {
	var total int64
	for _, it := range items {
		total += int64(it.Quantity) * it.UnitPriceCents
	}
	return total
}

// Product is one entry of the catalogue.
type Product struct {
	SKU        string `json:"sku"`
	Name       string `json:"name"`
	PriceCents int64  `json:"price_cents"`
}
