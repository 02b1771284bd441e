-- The relay lease: which replica's relay publishes, and until when. One row at most. The
-- holder renews it every few seconds; another relay takes it over once expires_at has
-- passed (see lease.go), so a holder that vanished without closing its connection blocks
-- the outbox for one lease, not until the server's TCP gives up on it.
CREATE TABLE outbox_relay_lease (
    id         BOOLEAN PRIMARY KEY DEFAULT true CHECK (id),
    holder     TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL
);
