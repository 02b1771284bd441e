package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// processedSchema creates the processed-message ledger; Migrate creates it for every
// service. The index on processed_at lets the Sweeper find expired rows without scanning
// the table.
const processedSchema = `CREATE TABLE IF NOT EXISTS processed_messages (
	consumer     TEXT NOT NULL,
	message_id   TEXT NOT NULL,
	processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
	PRIMARY KEY (consumer, message_id)
);
CREATE INDEX IF NOT EXISTS processed_messages_processed_at ON processed_messages (processed_at);`

// LedgerConfig is the ledger's setting. Every consuming service embeds it in its Config.
type LedgerConfig struct {
	// LedgerRetention is how long the ledger remembers a processed message (720h, 30
	// days, by default): longer than a message can wait in a dead-letter queue (7 days)
	// and then in the archive before an operator replays it. See Ledger.
	LedgerRetention time.Duration `env:"LEDGER_RETENTION" envDefault:"720h"`
}

// ErrBeyondHorizon is the ledger refusing a message it has no record of that is older than
// its horizon: the record may have expired, so the message may have been applied already.
// IsPermanent reports it: retrying cannot change the message's age.
var ErrBeyondHorizon = errors.New("older than the processed-message ledger's horizon")

// Ledger is the processed-message ledger that makes consumers idempotent: each consumer
// records every message it handles, in the transaction of the handling, and skips a
// message already recorded.
//
// A record is kept for the retention, then a Sweeper deletes it (see Expiry). A message
// older than that can no longer be told from a new one, so Mark refuses any message it has
// no record of that occurred longer ago than the horizon: nine tenths of the retention. The
// tenth between them is the margin for clocks that disagree (the producer's stamps the
// message, the database's the record) and for a record being deleted while a delivery of
// its message is checked; at the default retention it is 3 days.
type Ledger struct {
	retention time.Duration
}

// NewLedger returns the ledger with cfg's retention, which must be positive.
func NewLedger(cfg LedgerConfig) (*Ledger, error) {
	if cfg.LedgerRetention <= 0 {
		return nil, fmt.Errorf("ledger: LEDGER_RETENTION must be positive, not %s", cfg.LedgerRetention)
	}
	return &Ledger{retention: cfg.LedgerRetention}, nil
}

// Horizon is the age beyond which a message the ledger has no record of is refused.
func (l *Ledger) Horizon() time.Duration { return l.retention - l.retention/10 }

// Expiry is the ledger's retention, for a Sweeper.
func (l *Ledger) Expiry() Expiry {
	return Expiry{Table: "processed_messages", Column: "processed_at", After: l.retention}
}

// Mark records, inside tx, that consumer handled messageID, and reports whether this is
// the first time. A handler calls it in the same transaction as its state change and skips
// the work when it returns false: a redelivered message then changes nothing, and if the
// transaction rolls back the record goes with it.
//
// occurredAt is when the message's event happened (messaging.OccurredAt). A message seen
// for the first time that is older than the Horizon is refused with ErrBeyondHorizon
// instead: the handler returns the error, the transaction rolls back, and the consumer
// dead-letters the message with the reason. A zero occurredAt (a producer that does not
// stamp its messages) cannot be judged and counts as new: refusing it would dead-letter
// every message of such a producer, while the record still catches its redeliveries
// within the retention.
func (l *Ledger) Mark(ctx context.Context, tx pgx.Tx, consumer, messageID string, occurredAt time.Time) (first bool, err error) {
	tag, err := tx.Exec(ctx,
		`INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
		consumer, messageID)
	if err != nil {
		return false, fmt.Errorf("mark processed %s/%s: %w", consumer, messageID, err)
	}
	if tag.RowsAffected() == 0 {
		return false, nil // recorded: a duplicate, whatever its age
	}
	if age := time.Since(occurredAt); !occurredAt.IsZero() && age > l.Horizon() {
		return false, fmt.Errorf("message %s occurred %s ago, %w (%s): it may have been applied already and its record expired; see README \"Retention\"",
			messageID, days(age), ErrBeyondHorizon, days(l.Horizon()))
	}
	return true, nil
}

// days renders d of a day or more in days, to a tenth ("27d", "27.5d"), and anything
// shorter as time.Duration does, to the second.
func days(d time.Duration) string {
	const day = 24 * time.Hour
	if d < day {
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(strconv.FormatFloat(float64(d)/float64(day), 'f', 1, 64), ".0") + "d"
}

// A handler may fold the ledger's record into the statement of its change instead of
// calling Mark first, saving the ledger's round trip: the statement opens with a
// data-modifying CTE, "mark", that yields one row for a new message and none for a
// duplicate, and every other part of it reads mark, so that a duplicate changes and locks
// nothing. Only a message within the horizon may go that way (Folds): for an older one,
// the statement cannot tell a duplicate whose record expired from a new message, so Mark
// judges it first.

// Delivery is a message's processed-message record, for the statement of its change to
// write: the consumer and the message id are the ledger's key, the statement's $1 and $2.
type Delivery struct {
	Consumer, MessageID string
	// Marked means Mark has recorded the message already, in the same transaction: the
	// statement's mark then yields its one row without writing.
	Marked bool
}

// markSQL is Mark's insert, yielding one row for a new message and none for a duplicate.
const markSQL = `INSERT INTO processed_messages (consumer, message_id) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING 1`

// MarkSQL is the body of the statement's mark CTE for d.
func (d Delivery) MarkSQL() string {
	if d.Marked {
		return `SELECT $1::text, $2::text`
	}
	return markSQL
}

// Folds reports whether a message that occurred at occurredAt may be recorded by the
// statement of its change (within the horizon, or not stamped: see Mark).
func (l *Ledger) Folds(occurredAt time.Time) bool {
	return occurredAt.IsZero() || time.Since(occurredAt) <= l.Horizon()
}

// Delivery returns the record of consumer's message for the statement of its change, in
// tx. A message older than the horizon (rare) is judged by Mark first: recorded, it is a
// duplicate and Delivery returns nil (nothing to do); not recorded, Mark refuses it
// (ErrBeyondHorizon). Both ways end as Mark says.
func (l *Ledger) Delivery(ctx context.Context, tx pgx.Tx, consumer, messageID string, occurredAt time.Time) (*Delivery, error) {
	d := &Delivery{Consumer: consumer, MessageID: messageID}
	if l.Folds(occurredAt) {
		return d, nil
	}
	first, err := l.Mark(ctx, tx, consumer, messageID, occurredAt)
	if err != nil || !first {
		return nil, err
	}
	d.Marked = true
	return d, nil
}
