-- The outbox: one row per message a committed transaction stored, deleted once the broker
-- has confirmed it. id orders the messages (per topic, the relay publishes in id order).
CREATE TABLE outbox_messages (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic      TEXT NOT NULL,
    uuid       TEXT NOT NULL,
    metadata   JSONB NOT NULL,
    payload    BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The previous outbox (watermill-sql's tables, relayed by Watermill's forwarder) may still
-- hold messages its relay had not acknowledged: move them over, then drop it. The lock
-- keeps a replica still running the old code from adding a message between the copy and
-- the drop (its transaction fails instead, and rolls back its change with it).
-- A message acknowledged in between may go out twice; consumers are idempotent.
DO $$
BEGIN
    IF to_regclass('watermill_outbox') IS NULL THEN
        RETURN;
    END IF;
    LOCK TABLE watermill_outbox IN EXCLUSIVE MODE;
    INSERT INTO outbox_messages (topic, uuid, metadata, payload)
    SELECT e->>'destination_topic', e->>'uuid', coalesce(e->'metadata', '{}'), decode(e->>'payload', 'base64')
    FROM watermill_outbox w, LATERAL (SELECT w.payload::jsonb AS e) envelope
    WHERE NOT EXISTS (
        SELECT 1 FROM watermill_offsets_outbox o
        WHERE o.consumer_group = 'relay'
          AND (w.transaction_id, w."offset") <= (o.last_processed_transaction_id, o.offset_acked))
    ORDER BY w.transaction_id, w."offset";
    DROP TABLE watermill_outbox;
    DROP TABLE IF EXISTS watermill_offsets_outbox;
END $$;
