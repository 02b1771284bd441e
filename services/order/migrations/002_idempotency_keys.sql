-- The Idempotency-Key of each POST /orders that carried one, so that a retry of the same
-- request returns the order the first one placed instead of placing another
-- (draft-ietf-httpapi-idempotency-key-header). A key is written in the transaction that
-- stores its order and the order's OrderPlaced, so the three exist together or not at all.
CREATE TABLE idempotency_keys (
    -- Who sent the key: keys are unique per caller, not globally. Empty while the API does
    -- not authenticate its callers; the issue that adds authentication fills it in.
    subject      TEXT NOT NULL DEFAULT '',
    key          TEXT NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- sha256 of the canonical request (the decoded body, re-encoded): enough to tell a
    -- retry from a different request under the same key without keeping customer data twice.
    request_hash BYTEA NOT NULL CHECK (length(request_hash) = 32),
    -- Deferred: the key is claimed first in its transaction, before the order row exists,
    -- so that a concurrent duplicate waits on the key instead of pricing a second order.
    order_id     UUID NOT NULL REFERENCES orders (id) DEFERRABLE INITIALLY DEFERRED,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (subject, key)
);

-- The periodic cleanup deletes keys older than IDEMPOTENCY_KEY_TTL.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- The pending-order check reads the oldest pending orders.
CREATE INDEX orders_pending_created_at ON orders (created_at) WHERE status = 'pending';
