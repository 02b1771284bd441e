package orders

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/propagation"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/outbox"
	"github.com/warrenhq/warren/shared/postgres"
)

// Handlers handle the messages the order service consumes: inventory's verdicts.
type Handlers struct {
	pool       *pgxpool.Pool
	ledger     *postgres.Ledger
	store      *Store
	propagator propagation.TextMapPropagator
	metrics    *Metrics
	logger     *slog.Logger
}

// NewHandlers returns the order service's message handlers; metrics (nil: none) counts
// and times the orders they settle.
func NewHandlers(pool *pgxpool.Pool, ledger *postgres.Ledger, store *Store, p propagation.TextMapPropagator, metrics *Metrics, logger *slog.Logger) *Handlers {
	return &Handlers{pool: pool, ledger: ledger, store: store, propagator: p, metrics: metrics, logger: logger}
}

// StockEvents handles the order service's queue of inventory outcomes.
func (h *Handlers) StockEvents() message.NoPublishHandlerFunc {
	return messaging.Dispatcher{
		events.TypeStockReserved:   messaging.Handle(h.stockReserved),
		events.TypeStockOutOfStock: messaging.Handle(h.stockOutOfStock),
	}.Handle
}

// verdict is what inventory's answer does to a pending order: its new status and reason,
// and the event (with its routing key) that announces it.
type verdict struct {
	status Status
	reason string
	event  func(Order) (typ, key string, payload any)
}

func (h *Handlers) stockReserved(ctx context.Context, e events.StockReserved, msg *message.Message) error {
	return h.settle(ctx, e.OrderID, msg, verdict{
		status: StatusConfirmed,
		event: func(o Order) (string, string, any) {
			return events.TypeOrderConfirmed, events.OrderConfirmedKey(o.Region),
				events.OrderConfirmed{OrderID: o.ID, Region: o.Region, Customer: o.Customer, TotalCents: o.TotalCents}
		},
	})
}

func (h *Handlers) stockOutOfStock(ctx context.Context, e events.StockOutOfStock, msg *message.Message) error {
	reason := "out of stock"
	if len(e.MissingSKU) > 0 {
		reason += ": " + strings.Join(e.MissingSKU, ", ")
	}
	return h.settle(ctx, e.OrderID, msg, verdict{
		status: StatusRejected,
		reason: reason,
		event: func(o Order) (string, string, any) {
			return events.TypeOrderRejected, events.OrderRejectedKey(o.Region),
				events.OrderRejected{OrderID: o.ID, Region: o.Region, Customer: o.Customer, Reason: o.Reason}
		},
	})
}

// settle applies v to a pending order and stores its event in the outbox, in one
// transaction with the processed-message record: a redelivered verdict finds its record
// and changes nothing. An order that is no longer pending (the customer cancelled it
// meanwhile) is left alone; inventory releases its stock on the OrderCancelled. Only a
// settlement that committed is counted.
//
// The record, the lock and the change are one statement (Store.Settle): BEGIN, it, the
// outbox insert, COMMIT.
func (h *Handlers) settle(ctx context.Context, orderID string, msg *message.Message, v verdict) error {
	var settled *Order
	err := postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
		settled = nil
		d, err := h.ledger.Delivery(ctx, tx, events.QueueOrder, msg.UUID, messaging.OccurredAt(msg))
		if err != nil || d == nil {
			return err
		}
		r, err := h.store.Settle(ctx, tx, *d, orderID, v.status, v.reason)
		if errors.Is(err, ErrNotFound) {
			// Inventory only hears of orders this service committed: retrying cannot help.
			return messaging.Permanent(err)
		}
		if err != nil || !r.First {
			return err
		}
		order := r.Order
		if !r.Settled {
			h.logger.InfoContext(ctx, "verdict ignored: order no longer pending",
				"order_id", order.ID, "status", order.Status, "verdict", v.status)
			return nil
		}
		typ, key, payload := v.event(order)
		out, err := messaging.NewEvent(typ, order.ID, payload)
		if err != nil {
			return err
		}
		h.logger.InfoContext(ctx, "order settled", "order_id", order.ID, "status", order.Status, "reason", order.Reason)
		settled = &order
		return outbox.Store(ctx, tx, h.propagator, messaging.Topic(events.ExchangeTopic, key), out)
	})
	if err == nil && settled != nil {
		h.metrics.orderSettled(*settled)
	}
	return err
}
