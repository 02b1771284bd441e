-- Every text sent, one per event. The default provider "sends" by inserting here, in the
-- same transaction as the processed-message record.
CREATE TABLE sent_texts (
    message_id TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    body       TEXT NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX sent_texts_order ON sent_texts (order_id, sent_at);
