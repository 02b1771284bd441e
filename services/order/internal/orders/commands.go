package orders

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
)

// Commands are the changes a customer asks for over HTTP. Each runs in one transaction
// that also stores its event in the outbox: the request never waits for the broker, and
// succeeds while the broker is down.
type Commands struct {
	pool       *pgxpool.Pool
	store      *Store
	propagator propagation.TextMapPropagator
	openOrders int
	metrics    *Metrics
	logger     *slog.Logger
}

// NewCommands returns the order service's commands. openOrders is how many pending orders
// one customer may hold (0: no limit); metrics (nil: none) counts the orders placed and
// cancelled.
func NewCommands(pool *pgxpool.Pool, store *Store, p propagation.TextMapPropagator, openOrders int, metrics *Metrics, logger *slog.Logger) *Commands {
	return &Commands{pool: pool, store: store, propagator: p, openOrders: openOrders, metrics: metrics, logger: logger}
}

// fanout is where OrderPlaced and OrderCancelled go: every interested service has a queue
// bound to it.
var fanout = messaging.Topic(events.ExchangeOrderEvents, "")

// Place prices a valid request from the catalogue, stores it as a pending order of owner
// (the customer's subject) and announces it with OrderPlaced. A SKU that is not in the
// catalogue is a *ValidationError; a customer who holds the quota's number of pending
// orders already gets ErrTooManyOpenOrders.
//
// With an idempotency key (its Subject is set to owner: keys are per customer), the key is
// stored in the same transaction as the order and its OrderPlaced: a request whose key is
// already stored places nothing and returns that order (replayed is true; the quota does
// not apply to a replay), or ErrIdempotencyKeyReused when it is not the same request.
func (c *Commands) Place(ctx context.Context, owner string, req PlaceRequest, key IdempotencyKey) (order Order, replayed bool, err error) {
	if err := req.Validate(); err != nil {
		return Order{}, false, err
	}
	// Two customers who send the same key place an order each and never see the other's.
	key.Subject = owner
	var hash []byte
	if key.Key != "" {
		if hash, err = requestHash(req); err != nil {
			return Order{}, false, fmt.Errorf("place: %w", err)
		}
	}
	order = Order{ID: uuid.NewString(), Owner: owner, Status: StatusPending, Customer: req.Customer, Region: req.Region}
	err = postgres.InTx(ctx, c.pool, func(tx pgx.Tx) error {
		if key.Key != "" {
			// First, before any work: a concurrent duplicate waits here for this
			// transaction, then finds the key taken.
			claim, err := c.store.ClaimKey(ctx, tx, key, hash, order.ID)
			if err != nil {
				return err
			}
			if !claim.claimed {
				if !bytes.Equal(claim.requestHash, hash) {
					return ErrIdempotencyKeyReused
				}
				replayed = true
				order, err = load(ctx, tx, claim.orderID, &owner, false)
				return err
			}
		}
		if c.openOrders > 0 {
			pending, err := c.store.LockPending(ctx, tx, owner)
			if err != nil {
				return err
			}
			if pending >= c.openOrders {
				return fmt.Errorf("%w: %d of at most %d", ErrTooManyOpenOrders, pending, c.openOrders)
			}
		}
		return c.insertPlaced(ctx, tx, &order, req.Items)
	})
	switch {
	case err != nil:
		return Order{}, false, fmt.Errorf("place: %w", err)
	case replayed:
		c.logger.InfoContext(ctx, "order request replayed: the idempotency key placed this order before", "order_id", order.ID)
	default:
		c.metrics.orderPlaced()
		c.logger.InfoContext(ctx, "order placed", "order_id", order.ID, "region", order.Region, "total_cents", order.TotalCents)
	}
	return order, replayed, nil
}

// insertPlaced prices items into order, stores it and its OrderPlaced in tx.
func (c *Commands) insertPlaced(ctx context.Context, tx pgx.Tx, order *Order, items []LineRequest) error {
	skus := make([]string, len(items))
	for i, it := range items {
		skus[i] = it.SKU
	}
	prices, err := c.store.Prices(ctx, tx, skus)
	if err != nil {
		return err
	}
	for i, it := range items {
		price, ok := prices[it.SKU]
		if !ok {
			return invalid(fmt.Sprintf("items[%d].sku", i), "%q is not in the catalogue", it.SKU)
		}
		order.Items = append(order.Items, events.Item{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: price})
	}
	order.TotalCents = Total(order.Items)
	if *order, err = c.store.Insert(ctx, tx, *order); err != nil {
		return err
	}
	msg, err := messaging.NewEvent(events.TypeOrderPlaced, order.ID, events.OrderPlaced{
		OrderID: order.ID, Customer: order.Customer, Region: order.Region,
		Items: order.Items, TotalCents: order.TotalCents, PlacedAt: order.CreatedAt,
	})
	if err != nil {
		return err
	}
	return outbox.Store(ctx, tx, c.propagator, fanout, msg)
}

// Cancel cancels owner's pending or confirmed order and announces it with OrderCancelled,
// on which inventory releases the order's stock. Cancelling an order that is already
// cancelled or was rejected is ErrNotCancellable; an unknown one, or someone else's, is
// ErrNotFound.
func (c *Commands) Cancel(ctx context.Context, id, owner string) (Order, error) {
	var order Order
	err := postgres.InTx(ctx, c.pool, func(tx pgx.Tx) error {
		var err error
		if order, err = c.store.LockOwned(ctx, tx, id, owner); err != nil {
			return err
		}
		if !order.Status.Cancellable() {
			return fmt.Errorf("%w: it is %s", ErrNotCancellable, order.Status)
		}
		if order, err = c.store.SetStatus(ctx, tx, order, StatusCancelled, ""); err != nil {
			return err
		}
		msg, err := messaging.NewEvent(events.TypeOrderCancelled, order.ID, events.OrderCancelled{
			OrderID: order.ID, Region: order.Region, Customer: order.Customer,
			Reason: "cancelled by the customer", CancelledAt: order.UpdatedAt,
		})
		if err != nil {
			return err
		}
		return outbox.Store(ctx, tx, c.propagator, fanout, msg)
	})
	if err != nil {
		return Order{}, fmt.Errorf("cancel %s: %w", id, err)
	}
	c.metrics.orderCancelled()
	c.logger.InfoContext(ctx, "order cancelled", "order_id", order.ID)
	return order, nil
}
