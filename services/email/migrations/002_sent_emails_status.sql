-- A mail is claimed before it is sent: the row commits with status 'sending' in the same
-- transaction as the processed-message record, and becomes 'sent' (with sent_at) once the
-- SMTP server accepted the mail. A row left 'sending' is a mail whose send failed or was
-- never confirmed; the next delivery of its message sends it. Rows written before this
-- migration were all sent.
ALTER TABLE sent_emails
    ADD COLUMN status TEXT NOT NULL DEFAULT 'sent',
    ALTER COLUMN sent_at DROP NOT NULL,
    ALTER COLUMN sent_at DROP DEFAULT;

ALTER TABLE sent_emails
    ALTER COLUMN status DROP DEFAULT,
    ADD CONSTRAINT sent_emails_status CHECK (status IN ('sending', 'sent')),
    ADD CONSTRAINT sent_emails_sent_at CHECK ((status = 'sent') = (sent_at IS NOT NULL));
