package mailing

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/postgres"
)

// listLimit caps GET /emails: the newest mails are the interesting ones.
const listLimit = 100

// Status is where the mail of one event stands.
type Status string

// The statuses of a sent_emails row.
const (
	// StatusSending: the mail is claimed and may or may not have reached the SMTP server.
	StatusSending Status = "sending"
	// StatusSent: the SMTP server accepted the mail.
	StatusSent Status = "sent"
)

// SentEmail is the record of one mail the service sent.
type SentEmail struct {
	// MessageID is the id of the event the mail answers; the mail's Message-ID header is
	// built from it.
	MessageID string    `json:"message_id"`
	OrderID   string    `json:"order_id"`
	Kind      Kind      `json:"kind"`
	Recipient string    `json:"recipient"`
	Subject   string    `json:"subject"`
	SentAt    time.Time `json:"sent_at"`
}

// Store keeps the record of sent mails in PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// SentExpiry is the retention of sent mails, counted from their claim: after is
// SENT_EMAIL_RETENTION. A redelivery finds its row to know whether the mail went out
// (see Handlers), and the ledger refuses any message older than its horizon: after must
// therefore be at least the ledger's retention (Config.Validate checks it).
func SentExpiry(after time.Duration) postgres.Expiry {
	return postgres.Expiry{Table: "sent_emails", Column: "claimed_at", After: after}
}

// Claim records, in one statement that commits on its own, that the event messageID was
// processed by consumer (the processed-message ledger's row, as postgres.Ledger.Mark
// writes it) and that m is about to be sent: a row with StatusSending, committed before the
// send. It reports whether this is the first time; a message already recorded inserts
// nothing. It does not judge the message's age: the caller leaves a message older than the
// ledger's horizon to postgres.Ledger.Mark (see Handlers), which refuses it.
//
// One statement instead of a transaction of two (BEGIN, the ledger's INSERT, the claim's
// INSERT, COMMIT): one round trip instead of four, and a statement is atomic on its own,
// so the ledger's row never commits without the mail's.
func (s *Store) Claim(ctx context.Context, consumer, messageID string, m Mail) (first bool, err error) {
	tag, err := s.pool.Exec(ctx, `WITH marked AS (
			INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2)
			ON CONFLICT DO NOTHING RETURNING message_id
		)
		INSERT INTO sent_emails (message_id, order_id, kind, recipient, subject, status)
		SELECT message_id, $3, $4, $5, $6, $7 FROM marked`,
		consumer, messageID, m.OrderID, m.Kind, m.To, m.Subject, StatusSending)
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", messageID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// ClaimMarked is Claim's second half, inside tx, for a message the ledger has just marked
// in tx: the row with StatusSending.
func (s *Store) ClaimMarked(ctx context.Context, tx pgx.Tx, messageID string, m Mail) error {
	_, err := tx.Exec(ctx, `INSERT INTO sent_emails (message_id, order_id, kind, recipient, subject, status)
		VALUES ($1, $2, $3, $4, $5, $6)`, messageID, m.OrderID, m.Kind, m.To, m.Subject, StatusSending)
	if err != nil {
		return fmt.Errorf("claim %s: %w", messageID, err)
	}
	return nil
}

// Take locks, inside tx, the row of the event messageID if it is still StatusSending and
// marks it StatusSent in tx, and reports whether it did: false when the mail is already
// sent, or when there is no row (the event had no mail to send). The caller then sends the
// mail and commits tx, or rolls it back when the send fails: the row is "sending" again.
// Until tx ends the row stays locked, so another delivery of the message waits (its Take
// blocks), then finds the row sent, or "sending" again after a rollback.
//
// Marking the row in the statement that locks it saves the confirm's round trip: the commit
// is the confirm. Under read committed, a Take that waited on another transaction's lock
// checks the status again on the row as that transaction left it.
func (s *Store) Take(ctx context.Context, tx pgx.Tx, messageID string) (bool, error) {
	tag, err := tx.Exec(ctx, `UPDATE sent_emails SET status = $2, sent_at = now()
		WHERE message_id = $1 AND status = $3`, messageID, StatusSent, StatusSending)
	if err != nil {
		return false, fmt.Errorf("take %s: %w", messageID, err)
	}
	return tag.RowsAffected() == 1, nil
}

// execer is a transaction or the pool.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Confirm records, through db, that the mail of the event messageID was sent, for a send
// whose Take did not commit. It is idempotent: a row already sent keeps its sent_at.
func (s *Store) Confirm(ctx context.Context, db execer, messageID string) error {
	_, err := db.Exec(ctx, `UPDATE sent_emails SET status = $2, sent_at = now()
		WHERE message_id = $1 AND status = $3`, messageID, StatusSent, StatusSending)
	if err != nil {
		return fmt.Errorf("confirm %s: %w", messageID, err)
	}
	return nil
}

// List returns the newest sent mails (claimed mails not yet confirmed are left out), oldest
// first, only those of orderID unless it is empty.
func (s *Store) List(ctx context.Context, orderID string) ([]SentEmail, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT message_id, order_id, kind, recipient, subject, sent_at FROM (
			SELECT * FROM sent_emails WHERE status = $3 AND ($1 = '' OR order_id = $1)
			ORDER BY sent_at DESC, message_id DESC LIMIT $2
		) newest ORDER BY sent_at, message_id`, orderID, listLimit, StatusSent)
	if err != nil {
		return nil, fmt.Errorf("list emails: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[SentEmail])
	if err != nil {
		return nil, fmt.Errorf("list emails: %w", err)
	}
	return out, nil
}
