package stats

import (
	"context"
	"errors"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
)

// ErrNoOrderID is returned (as a permanent failure) for an order event without an order id:
// it cannot be attributed, and would otherwise be counted as an order of its own.
var ErrNoOrderID = errors.New("order event without order_id")

// Handlers handle the messages of the analytics queue.
type Handlers struct {
	pool   *pgxpool.Pool
	ledger *postgres.Ledger
	store  *Store
	logger *slog.Logger
}

// NewHandlers returns the analytics service's message handlers.
func NewHandlers(pool *pgxpool.Pool, ledger *postgres.Ledger, store *Store, logger *slog.Logger) *Handlers {
	return &Handlers{pool: pool, ledger: ledger, store: store, logger: logger}
}

// Events handles every type that reaches the analytics queue: the order.events fanout and
// everything on the topic exchange ("#").
func (h *Handlers) Events() message.NoPublishHandlerFunc {
	return messaging.Dispatcher{
		events.TypeOrderPlaced: messaging.Handle(func(ctx context.Context, e events.OrderPlaced, msg *message.Message) error {
			return h.record(ctx, msg, &Update{OrderID: e.OrderID, Region: e.Region, Status: StatusPending, TotalCents: &e.TotalCents})
		}),
		events.TypeOrderConfirmed: messaging.Handle(func(ctx context.Context, e events.OrderConfirmed, msg *message.Message) error {
			u := &Update{OrderID: e.OrderID, Region: e.Region, Status: StatusConfirmed}
			if e.TotalCents > 0 { // zero is what an omitted total decodes to
				u.TotalCents = &e.TotalCents
			}
			return h.record(ctx, msg, u)
		}),
		events.TypeOrderRejected: messaging.Handle(func(ctx context.Context, e events.OrderRejected, msg *message.Message) error {
			return h.record(ctx, msg, &Update{OrderID: e.OrderID, Region: e.Region, Status: StatusRejected})
		}),
		events.TypeOrderCancelled: messaging.Handle(func(ctx context.Context, e events.OrderCancelled, msg *message.Message) error {
			return h.record(ctx, msg, &Update{OrderID: e.OrderID, Region: e.Region, Status: StatusCancelled})
		}),
		events.TypeStockReserved:   countOnly[events.StockReserved](h),
		events.TypeStockOutOfStock: countOnly[events.StockOutOfStock](h),
		events.TypeStockReleased:   countOnly[events.StockReleased](h),
	}.Handle
}

// countOnly handles a type that only adds to its counter. Decoding it still dead-letters
// a malformed payload instead of counting it.
func countOnly[T any](h *Handlers) message.NoPublishHandlerFunc {
	return messaging.Handle(func(ctx context.Context, _ T, msg *message.Message) error {
		return h.record(ctx, msg, nil)
	})
}

// record applies u (when not nil) and counts the message's type, together with the
// processed-message record: a redelivered event changes nothing.
//
// A message younger than the ledger's horizon (nearly every one) is recorded in one
// autocommit statement: one round trip, no transaction. One older than that goes the
// ledger's own way, postgres.Ledger.Mark in a transaction, which skips it when it is
// recorded and refuses it (ErrBeyondHorizon, dead-lettered) when it is not; the record and
// the totals then commit together. Both ways end as Mark says.
func (h *Handlers) record(ctx context.Context, msg *message.Message, u *Update) error {
	if u != nil && u.OrderID == "" {
		return messaging.Permanent(ErrNoOrderID)
	}
	e := Event{Consumer: events.QueueAnalytics, MessageID: msg.UUID, Update: u, Type: msg.Metadata.Get(messaging.HeaderType)}
	occurredAt := messaging.OccurredAt(msg)
	if !h.ledger.Folds(occurredAt) {
		return postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
			if first, err := h.ledger.Mark(ctx, tx, e.Consumer, e.MessageID, occurredAt); err != nil || !first {
				return err
			}
			e.Marked = true
			_, err := h.store.Record(ctx, tx, e)
			return err
		})
	}
	first, err := h.store.Record(ctx, h.pool, e)
	if err != nil {
		return err
	}
	if first {
		h.logger.DebugContext(ctx, "event recorded", "type", e.Type, "message_id", msg.UUID)
	}
	return nil
}
