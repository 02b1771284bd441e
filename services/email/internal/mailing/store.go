package mailing

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// listLimit caps GET /emails: the newest mails are the interesting ones.
const listLimit = 100

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

// Record records, inside tx, that m was sent for the event messageID.
func (s *Store) Record(ctx context.Context, tx pgx.Tx, messageID string, m Mail) error {
	_, err := tx.Exec(ctx, `INSERT INTO sent_emails (message_id, order_id, kind, recipient, subject)
		VALUES ($1, $2, $3, $4, $5)`, messageID, m.OrderID, m.Kind, m.To, m.Subject)
	if err != nil {
		return fmt.Errorf("record %s: %w", messageID, err)
	}
	return nil
}

// List returns the newest sent mails, oldest first, only those of orderID unless it is empty.
func (s *Store) List(ctx context.Context, orderID string) ([]SentEmail, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT message_id, order_id, kind, recipient, subject, sent_at FROM (
			SELECT * FROM sent_emails WHERE $1 = '' OR order_id = $1
			ORDER BY sent_at DESC, message_id DESC LIMIT $2
		) newest ORDER BY sent_at, message_id`, orderID, listLimit)
	if err != nil {
		return nil, fmt.Errorf("list emails: %w", err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[SentEmail])
	if err != nil {
		return nil, fmt.Errorf("list emails: %w", err)
	}
	return out, nil
}
