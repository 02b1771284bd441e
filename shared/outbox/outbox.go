// Package outbox is the transactional outbox: a service writes the events of a state
// change into its own database in the same transaction as the change, and a relay
// publishes them to the broker afterwards. An event is therefore published if and only if
// its change committed, even when the broker was down at the time (it goes out when the
// broker is back).
//
// The events wait in the outbox_messages table (created by NewRelay through
// postgres.Migrate). Store inserts them and notifies the relay (NOTIFY, delivered at
// commit); the relay reads them in batches, publishes each batch pipelined, and deletes it
// once the broker confirmed it (see Relay for what it promises).
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/propagation"
)

// migrations creates outbox_messages. Its file names start with "outbox_" so that they
// share schema_migrations with the service's own migrations without clashing.
//
//go:embed *.sql
var migrations embed.FS

// channel is the NOTIFY channel Store signals and the relay listens on.
const channel = "outbox_messages"

// storeSQL inserts the messages in their order and notifies the relay in one round trip.
// PostgreSQL delivers the notification only when the transaction commits, and folds the
// notifications of one transaction into one.
const storeSQL = `
WITH stored AS (
	INSERT INTO outbox_messages (topic, uuid, metadata, payload)
	SELECT $1, m.uuid, m.metadata::jsonb, m.payload
	FROM unnest($2::text[], $3::text[], $4::bytea[]) WITH ORDINALITY AS m(uuid, metadata, payload, n)
	ORDER BY m.n
)
SELECT pg_notify('` + channel + `', '')`

// Store writes msgs to the outbox inside tx, to be published to topic once tx commits.
// The trace context of ctx is stored with each message, so the eventual publish continues
// the trace of the request that caused it.
func Store(ctx context.Context, tx pgx.Tx, p propagation.TextMapPropagator, topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	uuids := make([]string, len(msgs))
	metadata := make([]string, len(msgs))
	payloads := make([][]byte, len(msgs))
	for i, msg := range msgs {
		p.Inject(ctx, propagation.MapCarrier(msg.Metadata))
		md, err := json.Marshal(msg.Metadata)
		if err != nil {
			return fmt.Errorf("outbox store %s: metadata of %s: %w", topic, msg.UUID, err)
		}
		uuids[i], metadata[i], payloads[i] = msg.UUID, string(md), msg.Payload
	}
	if _, err := tx.Exec(ctx, storeSQL, topic, uuids, metadata, payloads); err != nil {
		return fmt.Errorf("outbox store %s: %w", topic, err)
	}
	return nil
}
