package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// processedSchema creates the processed-message ledger; Migrate creates it for every service.
const processedSchema = `CREATE TABLE IF NOT EXISTS processed_messages (
	consumer     TEXT NOT NULL,
	message_id   TEXT NOT NULL,
	processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer, message_id)
);`

// MarkProcessed records, inside tx, that consumer handled messageID, and reports whether
// this is the first time. A handler calls it in the same transaction as its state change
// and skips the work when it returns false: a redelivered message then changes nothing,
// and if the transaction rolls back the record goes with it.
func MarkProcessed(ctx context.Context, tx pgx.Tx, consumer, messageID string) (first bool, err error) {
	tag, err := tx.Exec(ctx,
		`INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		consumer, messageID)
	if err != nil {
		return false, fmt.Errorf("mark processed %s/%s: %w", consumer, messageID, err)
	}
	return tag.RowsAffected() == 1, nil
}
