package texting

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/warrenhq/warren/shared/postgres"
)

// listLimit caps GET /messages: the newest texts are the interesting ones.
const listLimit = 100

// Store keeps texts in the sent_texts table.
//
// It is also the default Provider: "sending" a text records it, in the handler's
// transaction, so a text exists exactly when its event is marked processed. Development,
// demos and tests need nothing more; GET /messages shows what a phone would have received.
type Store struct {
	pool *pgxpool.Pool
}

// NewStore returns a Store on pool.
func NewStore(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// SentExpiry is the retention of sent texts: after is SENT_TEXT_RETENTION. Idempotency
// does not depend on these rows (the ledger's record does it), so after may be shorter
// than the ledger's retention.
func SentExpiry(after time.Duration) postgres.Expiry {
	return postgres.Expiry{Table: "sent_texts", Column: "sent_at", After: after}
}

// Send records t inside tx.
func (s *Store) Send(ctx context.Context, tx pgx.Tx, t Text) error {
	_, err := tx.Exec(ctx, `INSERT INTO sent_texts (message_id, order_id, recipient, body) VALUES ($1, $2, $3, $4)`,
		t.MessageID, t.OrderID, t.To, t.Body)
	if err != nil {
		return fmt.Errorf("send text %s: %w", t.MessageID, err)
	}
	return nil
}

// List returns the newest texts, oldest first, only those of orderID unless it is empty.
func (s *Store) List(ctx context.Context, orderID string) ([]Text, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT message_id, order_id, recipient, body, sent_at FROM (
			SELECT * FROM sent_texts WHERE $1 = '' OR order_id = $1
			ORDER BY sent_at DESC, message_id DESC LIMIT $2
		) newest ORDER BY sent_at, message_id`, orderID, listLimit)
	if err != nil {
		return nil, fmt.Errorf("list texts: %w", err)
	}
	texts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[Text])
	if err != nil {
		return nil, fmt.Errorf("list texts: %w", err)
	}
	return texts, nil
}
