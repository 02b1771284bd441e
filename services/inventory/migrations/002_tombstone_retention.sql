-- Tombstones are kept for TOMBSTONE_RETENTION, then deleted by the retention sweeper,
-- which finds the expired ones through this index.
CREATE INDEX cancelled_orders_cancelled_at ON cancelled_orders (cancelled_at);
