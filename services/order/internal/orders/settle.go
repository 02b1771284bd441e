package orders

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/postgres"
)

// settleSQL marks the message, locks the order (FOR UPDATE, so a
// cancellation and a verdict cannot interleave: the lock returns the order as the other
// left it) and moves it from pending to $4 with reason $5. It reads only what the verdict's
// event and the metrics use, not the items. Nothing is locked or changed for a duplicate.
const settleSQL = `WITH mark AS (%s),
current AS MATERIALIZED (
	SELECT id, status FROM orders WHERE id = $3 AND EXISTS (SELECT 1 FROM mark) FOR UPDATE
),
settled AS (
	UPDATE orders o SET status = $4::text, reason = $5::text, updated_at = now()
	FROM current c WHERE o.id = c.id AND c.status = 'pending'
	RETURNING o.customer_name, o.customer_email, o.customer_phone, o.region, o.total_cents, o.created_at, o.updated_at
)
SELECT EXISTS (SELECT 1 FROM mark), (SELECT status FROM current), s.*
FROM (SELECT 1) one LEFT JOIN settled s ON true`

// Settlement is what Settle did.
type Settlement struct {
	// First is false for a message already processed: nothing was read or changed.
	First bool
	// Settled is true when the order was pending and now has the verdict's status; Order
	// is then as stored (without its items). Otherwise Order.Status is the status that
	// kept it.
	Settled bool
	Order   Order
}

// Settle marks d processed and, if order id is pending, gives it status and reason, in
// one statement (one round trip) inside tx, where the caller writes the outbox event that
// announces it. An order that does not exist is ErrNotFound.
func (s *Store) Settle(ctx context.Context, tx pgx.Tx, d postgres.Delivery, id string, status Status, reason string) (Settlement, error) {
	uid, err := uuid.Parse(id)
	if err != nil {
		// Not a UUID: no order can have it, and PostgreSQL would reject the comparison.
		return Settlement{}, fmt.Errorf("settle %q: %w", id, ErrNotFound)
	}
	r := Settlement{Order: Order{ID: uid.String()}}
	var current *string
	var name, email, phone, region *string
	var total *int64
	var created, updated *time.Time
	o := &r.Order
	err = tx.QueryRow(ctx, fmt.Sprintf(settleSQL, d.MarkSQL()), d.Consumer, d.MessageID, o.ID, string(status), reason).
		Scan(&r.First, &current, &name, &email, &phone, &region, &total, &created, &updated)
	if err != nil {
		return Settlement{}, fmt.Errorf("settle %s: %w", o.ID, err)
	}
	switch {
	case !r.First:
		return r, nil
	case current == nil:
		return Settlement{}, fmt.Errorf("settle %s: %w", o.ID, ErrNotFound)
	case name == nil: // not pending: left alone
		o.Status = Status(*current)
		return r, nil
	}
	r.Settled = true
	o.Status, o.Reason = status, reason
	o.Customer.Name, o.Customer.Email, o.Customer.Phone = *name, *email, *phone
	o.Region, o.TotalCents = events.Region(*region), *total
	o.CreatedAt, o.UpdatedAt = *created, *updated
	return r, nil
}
