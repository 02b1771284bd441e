-- Stock per SKU. available never goes negative: a reservation that would make it so fails.
CREATE TABLE stock (
    sku        TEXT PRIMARY KEY,
    available  INTEGER NOT NULL CHECK (available >= 0),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- What each order holds, so that a cancellation releases exactly that.
CREATE TABLE reservations (
    order_id    TEXT NOT NULL,
    sku         TEXT NOT NULL REFERENCES stock (sku),
    quantity    INTEGER NOT NULL CHECK (quantity > 0),
    released_at TIMESTAMPTZ,
    PRIMARY KEY (order_id, sku)
);

-- The demo catalogue; the order service seeds the same SKUs with their prices.
INSERT INTO stock (sku, available) VALUES
    ('carrot-seeds', 1000),
    ('garden-trowel', 200),
    ('watering-can', 100),
    ('burrow-lamp', 50),
    ('rare-orchid', 0);

-- Orders cancelled before their OrderPlaced was handled (competing consumers can see the
-- two out of order): their OrderPlaced must reserve nothing.
CREATE TABLE cancelled_orders (
    order_id     TEXT PRIMARY KEY,
    cancelled_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
