package mailing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/events"
	"github.com/warrenhq/warren/shared/messaging"
	"github.com/warrenhq/warren/shared/postgres"
)

// Handlers handle the messages of the email queue.
//
// Each event with an address gets its mail in three steps:
//
//  1. Claim: one statement marks the message processed and inserts its sent_emails row
//     with status "sending" (Store.Claim), and commits before anything is sent.
//  2. Send: a transaction locks the row and marks it "sent" in the same statement, if it
//     is still "sending" (Store.Take), and sends the mail over SMTP. A failed send rolls
//     the transaction back, leaving the row "sending", and returns the error: the retry
//     sends again. A permanent rejection is dead-lettered with its row left "sending", so
//     replaying it from the dead-letter queue sends it.
//  3. Confirm: the transaction commits. If that fails (the database went away during the
//     send), the confirm is retried in place as one UPDATE (Store.Confirm), from 100 ms
//     doubling to 2 s, until it succeeds or the attempt's context ends. The process also
//     remembers that it sent the mail (unconfirmed): when the attempt ends first (the
//     database stalled past HANDLER_TIMEOUT), the consumer holds the message while the
//     database is down, and the next attempt finds the row "sending" and only confirms it,
//     however many attempts the outage takes.
//
// A mail costs four database round trips: the claim, then BEGIN, the take and COMMIT
// (before: BEGIN, the ledger's INSERT, the claim's INSERT, COMMIT, then BEGIN, SELECT ...
// FOR UPDATE, the confirm's UPDATE, COMMIT: eight). The take cannot join the claim: the
// claim must commit before the send, and the lock must be held across it. A message older
// than the ledger's horizon takes the ledger's own path (postgres.Ledger.Mark), which
// refuses it unless it is a duplicate.
//
// A delivery that finds the message already processed takes its row: "sent" (or no row,
// when the order had no address) is a duplicate, acked with nothing done; "sending" is an
// attempt that did not confirm, and the mail is sent again. The lock makes a replica
// handed the same message (a broker redelivery) wait while another sends, then find the
// row "sent".
//
// So a database outage or stall, however timed and however long, sends no mail twice, and
// SMTP outages are retried. Two windows send a mail twice, each time with the same Message-ID header, which mail
// clients use to show the two as one: the process dies (or the message's context ends)
// after the server accepted the mail and before the confirm commits, leaving the row
// "sending" for the redelivery; or the database restarts during a send, dropping the row
// lock, and another replica handed the message locks the row before this one's confirm
// lands. SMTP cannot take part in a transaction: delivery is at least once, and exactly
// once short of those windows.
type Handlers struct {
	pool        *pgxpool.Pool
	ledger      *postgres.Ledger
	store       *Store
	sender      *Sender
	logger      *slog.Logger
	unconfirmed unconfirmed
}

// NewHandlers returns the email service's message handlers.
func NewHandlers(pool *pgxpool.Pool, ledger *postgres.Ledger, store *Store, sender *Sender, logger *slog.Logger) *Handlers {
	return &Handlers{pool: pool, ledger: ledger, store: store, sender: sender, logger: logger}
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

// Backoff of the in-place confirm retries.
const (
	confirmInitialWait = 100 * time.Millisecond
	confirmMaxWait     = 2 * time.Second
)

// confirmInPlace calls confirm until it returns nil or ctx ends (then it returns the last
// error with ctx's), waiting confirmInitialWait, doubling up to confirmMaxWait.
func confirmInPlace(ctx context.Context, confirm func(context.Context) error) error {
	waits := backoff.NewExponentialBackOff()
	waits.InitialInterval, waits.MaxInterval, waits.RandomizationFactor = confirmInitialWait, confirmMaxWait, 0
	var last error // Retry returns only ctx's cause when ctx ends: keep what the database said
	_, err := backoff.Retry(ctx, func() (struct{}, error) { last = confirm(ctx); return struct{}{}, last },
		backoff.WithBackOff(waits), backoff.WithMaxElapsedTime(0))
	if err != nil && last != nil && !errors.Is(err, last) {
		return errors.Join(last, err)
	}
	return err
}

// claim is step 1: it reports whether this delivery claimed the mail, false when the
// message was processed before.
func (h *Handlers) claim(ctx context.Context, msg *message.Message, m Mail) (bool, error) {
	if h.ledger.Folds(messaging.OccurredAt(msg)) {
		return h.store.Claim(ctx, events.QueueEmail, msg.UUID, m)
	}
	// Older than the horizon (a replay, weeks later): only the ledger can say whether it is
	// a duplicate or must be refused, and its refusal rolls the transaction back.
	claimed := false
	err := postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
		first, err := h.ledger.Mark(ctx, tx, events.QueueEmail, msg.UUID, messaging.OccurredAt(msg))
		if err != nil || !first {
			return err
		}
		claimed = true
		return h.store.ClaimMarked(ctx, tx, msg.UUID, m)
	})
	return claimed, err
}

func (h *Handlers) send(ctx context.Context, msg *message.Message, m Mail) error {
	if m.To == "" {
		return postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
			if first, err := h.ledger.Mark(ctx, tx, events.QueueEmail, msg.UUID, messaging.OccurredAt(msg)); err != nil || !first {
				return err
			}
			// Nothing an operator could fix by replaying: the order simply has no address.
			h.logger.WarnContext(ctx, "no email address; mail skipped", "order_id", m.OrderID, "kind", m.Kind)
			return nil
		})
	}

	// 1. Claim. An already processed message has its row from an earlier delivery.
	claimed, err := h.claim(ctx, msg, m)
	if err != nil {
		return err
	}

	// 2. Send, unless the row is already sent, and 3. confirm.
	sent := false
	err = postgres.InTx(ctx, h.pool, func(tx pgx.Tx) error {
		taken, err := h.store.Take(ctx, tx, msg.UUID)
		if err != nil || !taken {
			return err
		}
		if h.unconfirmed.has(msg.UUID) {
			// This process sent it; only the confirm did not commit.
			sent = true
			return nil
		}
		if !claimed {
			// An earlier attempt (a delivery's before a crash, or another replica's) claimed
			// the mail and never confirmed it: it may have been sent. The same Message-ID
			// lets the mailbox keep one of the two.
			h.logger.WarnContext(ctx, "an earlier attempt did not confirm the mail; sending it again",
				"order_id", m.OrderID, "kind", m.Kind, "message_id", msg.UUID)
		}
		if err := h.sender.Send(ctx, msg.UUID, m); err != nil {
			return fmt.Errorf("mail %s for order %s: %w", m.Kind, m.OrderID, err)
		}
		sent = true
		h.unconfirmed.add(msg.UUID)
		return nil // the commit confirms
	})
	if err != nil && sent {
		h.logger.WarnContext(ctx, "mail sent but not confirmed; retrying the confirm",
			"order_id", m.OrderID, "kind", m.Kind, "message_id", msg.UUID, "error", err)
		err = confirmInPlace(ctx, func(ctx context.Context) error { return h.store.Confirm(ctx, h.pool, msg.UUID) })
	}
	if err == nil {
		h.unconfirmed.forget(msg.UUID)
	}
	if err != nil {
		return err
	}
	if sent {
		h.logger.InfoContext(ctx, "mail sent", "order_id", m.OrderID, "kind", m.Kind, "message_id", msg.UUID)
	}
	return nil
}
