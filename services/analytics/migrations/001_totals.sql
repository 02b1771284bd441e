-- What analytics knows of each order. status only moves to one of higher precedence
-- (pending < confirmed < rejected < cancelled), so events arriving out of order end in the
-- same row; region is '' and total_cents NULL until an event carrying them arrived.
CREATE TABLE orders (
    order_id    TEXT PRIMARY KEY,
    region      TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    total_cents BIGINT,
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Events handled, by message type.
CREATE TABLE event_counts (
    type  TEXT PRIMARY KEY,
    count BIGINT NOT NULL
);
