// Package stats is the analytics service's business: running totals of orders by region
// and status, revenue, and events by type, kept from the events as they arrive.
package stats

import "github.com/warrenhq/warren/shared/events"

// Status is where an order stands, as far as analytics has heard.
type Status string

// The statuses an order goes through.
const (
	StatusPending   Status = "pending"
	StatusConfirmed Status = "confirmed"
	StatusRejected  Status = "rejected"
	StatusCancelled Status = "cancelled"
)

// Statuses lists every status, in order of precedence.
var Statuses = []Status{StatusPending, StatusConfirmed, StatusRejected, StatusCancelled}

// precedence orders statuses so that events applied in any order end in the same status.
// OrderPlaced travels on the fanout and the outcomes on the topic exchange, so a
// confirmation can arrive before its order: a late "pending" must not undo it. A
// cancellation is final whatever came before. Confirmed and rejected exclude each other;
// should a faulty producer send both, rejected wins so that revenue is never overstated.
func (s Status) precedence() int {
	switch s {
	case StatusPending:
		return 1
	case StatusConfirmed:
		return 2
	case StatusRejected:
		return 3
	case StatusCancelled:
		return 4
	}
	return 0
}

// Order is what analytics knows of one order.
type Order struct {
	Region events.Region
	Status Status
	// TotalCents is nil until an event carrying the total arrived.
	TotalCents *int64
}

// Update is what one event says about an order.
type Update struct {
	OrderID string
	// Region is empty when the event does not carry it.
	Region events.Region
	Status Status
	// TotalCents is nil when the event does not carry the total.
	TotalCents *int64
}

// Apply returns o as it stands after u: the status changes only to one of higher
// precedence, and region and total are filled in once and then kept. As long as the
// events agree on region and total, the result does not depend on their order. It is the
// rule; Store.Record applies it in SQL, and a test holds the two to the same results.
func (o Order) Apply(u Update) Order {
	if u.Status.precedence() > o.Status.precedence() {
		o.Status = u.Status
	}
	if o.Region == "" {
		o.Region = u.Region
	}
	if o.TotalCents == nil && u.TotalCents != nil {
		total := *u.TotalCents
		o.TotalCents = &total
	}
	return o
}
