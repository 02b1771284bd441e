-- The product catalogue: what can be ordered and at what price. Orders copy the price at
-- the time they are placed, so a later price change does not rewrite history.
CREATE TABLE products (
    sku         TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    price_cents BIGINT NOT NULL CHECK (price_cents > 0)
);

-- The demo catalogue; inventory seeds the same SKUs with their stock.
INSERT INTO products (sku, name, price_cents) VALUES
    ('carrot-seeds', 'Carrot seeds', 299),
    ('garden-trowel', 'Garden trowel', 1499),
    ('watering-can', 'Watering can', 2499),
    ('burrow-lamp', 'Burrow lamp', 3999),
    ('rare-orchid', 'Rare orchid', 9999);

CREATE TABLE orders (
    id             UUID PRIMARY KEY,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'rejected', 'cancelled')),
    customer_name  TEXT NOT NULL,
    customer_email TEXT NOT NULL,
    customer_phone TEXT NOT NULL,
    region         TEXT NOT NULL,
    total_cents    BIGINT NOT NULL CHECK (total_cents >= 0),
    -- Why an order was rejected; empty otherwise.
    reason         TEXT NOT NULL DEFAULT '',
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- line keeps the items in the order the customer listed them.
CREATE TABLE order_items (
    order_id         UUID NOT NULL REFERENCES orders (id),
    line             INTEGER NOT NULL,
    sku              TEXT NOT NULL REFERENCES products (sku),
    quantity         INTEGER NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents > 0),
    PRIMARY KEY (order_id, line),
    UNIQUE (order_id, sku)
);
