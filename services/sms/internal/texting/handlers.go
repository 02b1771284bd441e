package texting

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

// Provider delivers texts. Send runs inside the handler's transaction, after the event was
// marked processed: an error rolls both back and the message is retried; an error wrapped
// by messaging.Permanent (a number the provider rejects for good) dead-letters it.
//
// The default provider is Store, which records the text in the same transaction. A real
// gateway (Twilio, MessageBird, ...) cannot take part in that transaction; it plugs in one
// of two ways:
//
//   - directly: Send calls the gateway's API and returns its error, as the email service
//     does with SMTP. A crash between the API call and the commit resends the text on
//     redelivery, so pass msg.UUID as the gateway's idempotency key where it has one.
//   - through a table (better at volume): keep Store as the Provider, so the handler only
//     records the text, and run a relay that sends pending sent_texts rows to the gateway
//     and marks them delivered. The consumer then never waits on a third party, and
//     gateway outages only delay the relay.
type Provider interface {
	Send(ctx context.Context, tx pgx.Tx, t Text) error
}

// Handlers handle the messages of the sms queue.
type Handlers struct {
	pool     *pgxpool.Pool
	ledger   *postgres.Ledger
	provider Provider
	logger   *slog.Logger
}

// NewHandlers returns the sms service's message handlers.
func NewHandlers(pool *pgxpool.Pool, ledger *postgres.Ledger, provider Provider, logger *slog.Logger) *Handlers {
	return &Handlers{pool: pool, ledger: ledger, provider: provider, logger: logger}
}

// OrderEvents handles every type the sms queue receives: confirmations, the only ones
// it is bound to.
//
// OrderPlaced and OrderCancelled are acknowledged without a text. Up to the release that
// retired it, the queue was also bound to the order.events fanout, so a broker upgraded in
// place may still hold such messages queued before the service removed that binding at
// start-up (events.Topology): the Dispatcher would dead-letter an unknown type, and these
// are expected ones. Acknowledging changes nothing, so it needs no idempotency record
// either.
func (h *Handlers) OrderEvents() message.NoPublishHandlerFunc {
	return messaging.Dispatcher{
		events.TypeOrderConfirmed: messaging.Handle(h.orderConfirmed),
		events.TypeOrderPlaced:    h.ignore,
		events.TypeOrderCancelled: h.ignore,
	}.Handle
}

// orderConfirmed texts the customer, once per event: the text and the processed-message
// record commit together.
func (h *Handlers) orderConfirmed(ctx context.Context, e events.OrderConfirmed, msg *message.Message) error {
	return postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
		if first, err := h.ledger.Mark(ctx, tx, events.QueueSMS, msg.UUID, messaging.OccurredAt(msg)); err != nil || !first {
			return err
		}
		if e.Customer.Phone == "" {
			// Nothing an operator could fix by replaying: the order simply has no number.
			h.logger.WarnContext(ctx, "no phone number; text skipped", "order_id", e.OrderID)
			return nil
		}
		text, err := Confirmation(msg.UUID, e)
		if err != nil {
			// A number no one can text: retrying cannot help, the event is malformed.
			return messaging.Permanent(err)
		}
		if err := h.provider.Send(ctx, tx, text); err != nil {
			return fmt.Errorf("text order %s: %w", e.OrderID, err)
		}
		h.logger.InfoContext(ctx, "text sent", "order_id", e.OrderID, "region", e.Region, "message_id", msg.UUID)
		return nil
	})
}

func (h *Handlers) ignore(msg *message.Message) error {
	h.logger.DebugContext(msg.Context(), "no text for this event", "type", msg.Metadata.Get(messaging.HeaderType), "message_id", msg.UUID)
	return nil
}
