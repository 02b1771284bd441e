package mailing

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
)

// Handlers handle the messages of the email queue.
//
// Each event gets at most one mail, through one transaction: the processed-message record,
// the SMTP send, the sent_emails row, then commit. A failed send rolls the record back, so
// the message is retried. Until commit the uncommitted record also locks the message id: a
// replica handed the same message (after a broker redelivery) waits on it instead of
// sending in parallel, then finds it processed.
//
// One window remains: the server accepted the mail but the commit never happened (a crash,
// a lost database). The message is then redelivered and the mail sent again, with the same
// Message-ID header, which mail clients use to show the two as one. SMTP has no way to
// take part in the transaction, so this is the best at-least-once delivery can do.
type Handlers struct {
	pool   *pgxpool.Pool
	store  *Store
	sender *Sender
	logger *slog.Logger
}

// NewHandlers returns the email service's message handlers.
func NewHandlers(pool *pgxpool.Pool, store *Store, sender *Sender, logger *slog.Logger) *Handlers {
	return &Handlers{pool: pool, store: store, sender: sender, logger: logger}
}

// OrderEvents handles every type bound to the email queue: OrderPlaced and OrderCancelled
// from the fanout, OrderConfirmed and OrderRejected from the topic exchange.
func (h *Handlers) OrderEvents() message.NoPublishHandlerFunc {
	return messaging.Dispatcher{
		events.TypeOrderPlaced: messaging.Handle(func(ctx context.Context, e events.OrderPlaced, msg *message.Message) error {
			return h.send(ctx, msg, Received(e))
		}),
		events.TypeOrderConfirmed: messaging.Handle(func(ctx context.Context, e events.OrderConfirmed, msg *message.Message) error {
			return h.send(ctx, msg, Confirmed(e))
		}),
		events.TypeOrderRejected: messaging.Handle(func(ctx context.Context, e events.OrderRejected, msg *message.Message) error {
			return h.send(ctx, msg, Rejected(e))
		}),
		events.TypeOrderCancelled: messaging.Handle(func(ctx context.Context, e events.OrderCancelled, msg *message.Message) error {
			return h.send(ctx, msg, Cancelled(e))
		}),
	}.Handle
}

func (h *Handlers) send(ctx context.Context, msg *message.Message, m Mail) error {
	return postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
		if first, err := postgres.MarkProcessed(ctx, tx, events.QueueEmail, msg.UUID); err != nil || !first {
			return err
		}
		if m.To == "" {
			// Nothing an operator could fix by replaying: the order simply has no address.
			h.logger.WarnContext(ctx, "no email address; mail skipped", "order_id", m.OrderID, "kind", m.Kind)
			return nil
		}
		if err := h.sender.Send(ctx, msg.UUID, m); err != nil {
			return fmt.Errorf("mail %s for order %s: %w", m.Kind, m.OrderID, err)
		}
		if err := h.store.Record(ctx, tx, msg.UUID, m); err != nil {
			return err
		}
		h.logger.InfoContext(ctx, "mail sent", "order_id", m.OrderID, "kind", m.Kind, "message_id", msg.UUID)
		return nil
	})
}
