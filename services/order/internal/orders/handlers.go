package orders

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

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
		d, err := h.delivery(ctx, tx, msg)
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

// delivery is the processed-message record of msg for Store.Settle to write in the
// statement of its change, which saves the ledger its own round trip. A message older than
// the ledger's horizon (rare) is judged by postgres.Ledger.Mark first, in tx: recorded, it
// is a duplicate and delivery returns nil (nothing to do); not recorded, Mark refuses it
// (ErrBeyondHorizon). Both ways end as Mark says.
func (h *Handlers) delivery(ctx context.Context, tx pgx.Tx, msg *message.Message) (*Delivery, error) {
	d := &Delivery{Consumer: events.QueueOrder, MessageID: msg.UUID}
	occurredAt := messaging.OccurredAt(msg)
	if occurredAt.IsZero() || time.Since(occurredAt) <= h.ledger.Horizon() {
		return d, nil
	}
	first, err := h.ledger.Mark(ctx, tx, d.Consumer, d.MessageID, occurredAt)
	if err != nil || !first {
		return nil, err
	}
	d.Marked = true
	return d, nil
}
