-- Every mail sent, one per event: the row commits in the same transaction as the
-- processed-message record, after the SMTP server accepted the mail.
CREATE TABLE sent_emails (
    message_id TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL,
    kind       TEXT NOT NULL,
    recipient  TEXT NOT NULL,
    subject    TEXT NOT NULL,
    sent_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX sent_emails_order ON sent_emails (order_id, sent_at);
