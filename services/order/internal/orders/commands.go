package orders

import (
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
	logger     *slog.Logger
}

// NewCommands returns the order service's commands.
func NewCommands(pool *pgxpool.Pool, store *Store, p propagation.TextMapPropagator, logger *slog.Logger) *Commands {
	return &Commands{pool: pool, store: store, propagator: p, logger: logger}
}

// fanout is where OrderPlaced and OrderCancelled go: every interested service has a queue
// bound to it.
var fanout = messaging.Topic(events.ExchangeOrderEvents, "")

// Place prices a valid request from the catalogue, stores it as a pending order and
// announces it with OrderPlaced. A SKU that is not in the catalogue is a *ValidationError.
func (c *Commands) Place(ctx context.Context, req PlaceRequest) (Order, error) {
	if err := req.Validate(); err != nil {
		return Order{}, err
	}
	order := Order{ID: uuid.NewString(), Status: StatusPending, Customer: req.Customer, Region: req.Region}
	err := postgres.InTx(ctx, c.pool, func(tx pgx.Tx) error {
		skus := make([]string, len(req.Items))
		for i, it := range req.Items {
			skus[i] = it.SKU
		}
		prices, err := c.store.Prices(ctx, tx, skus)
		if err != nil {
			return err
		}
		for i, it := range req.Items {
			price, ok := prices[it.SKU]
			if !ok {
				return invalid(fmt.Sprintf("items[%d].sku", i), "%q is not in the catalogue", it.SKU)
			}
			order.Items = append(order.Items, events.Item{SKU: it.SKU, Quantity: it.Quantity, UnitPriceCents: price})
		}
		order.TotalCents = Total(order.Items)
		if order, err = c.store.Insert(ctx, tx, order); err != nil {
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
	})
	if err != nil {
		return Order{}, fmt.Errorf("place: %w", err)
	}
	c.logger.InfoContext(ctx, "order placed", "order_id", order.ID, "region", order.Region, "total_cents", order.TotalCents)
	return order, nil
}

// Cancel cancels a pending or confirmed order and announces it with OrderCancelled, on
// which inventory releases the order's stock. Cancelling an order that is already
// cancelled or was rejected is ErrNotCancellable; an unknown one is ErrNotFound.
func (c *Commands) Cancel(ctx context.Context, id string) (Order, error) {
	var order Order
	err := postgres.InTx(ctx, c.pool, func(tx pgx.Tx) error {
		var err error
		if order, err = c.store.Lock(ctx, tx, id); err != nil {
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
	c.logger.InfoContext(ctx, "order cancelled", "order_id", order.ID)
	return order, nil
}
