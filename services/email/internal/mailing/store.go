package mailing

import (
	"context"
	"errors"
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

// Claim records, inside tx, that m is about to be sent for the event messageID: a row with
// StatusSending, committed before the send.
func (s *Store) Claim(ctx context.Context, tx pgx.Tx, messageID string, m Mail) error {
	_, err := tx.Exec(ctx, `INSERT INTO sent_emails (message_id, order_id, kind, recipient, subject, status)
		VALUES ($1, $2, $3, $4, $5, $6)`, messageID, m.OrderID, m.Kind, m.To, m.Subject, StatusSending)
	if err != nil {
		return fmt.Errorf("claim %s: %w", messageID, err)
	}
	return nil
}

// Lock locks, inside tx, the row of the event messageID until tx ends and returns its
// status, or "" when there is none (the event had no mail to send).
func (s *Store) Lock(ctx context.Context, tx pgx.Tx, messageID string) (Status, error) {
	var status Status
	err := tx.QueryRow(ctx, `SELECT status FROM sent_emails WHERE message_id = $1 FOR UPDATE`, messageID).Scan(&status)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("lock %s: %w", messageID, err)
	}
	return status, nil
}

// execer is a transaction or the pool.
type execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Confirm records, through db, that the mail of the event messageID was sent. It is
// idempotent: a row already sent keeps its sent_at.
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
