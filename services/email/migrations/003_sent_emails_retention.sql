-- Mails are kept for SENT_EMAIL_RETENTION from their claim, then deleted by the retention
-- sweeper. sent_at cannot date them: a claimed mail not yet sent has none. Rows claimed
-- before this migration are dated by their sending (or now, if they have none).
ALTER TABLE sent_emails ADD COLUMN claimed_at TIMESTAMPTZ;
UPDATE sent_emails SET claimed_at = coalesce(sent_at, now());
ALTER TABLE sent_emails
    ALTER COLUMN claimed_at SET NOT NULL,
    ALTER COLUMN claimed_at SET DEFAULT now();
CREATE INDEX sent_emails_claimed_at ON sent_emails (claimed_at);
