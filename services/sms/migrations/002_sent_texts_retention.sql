-- Texts are kept for SENT_TEXT_RETENTION, then deleted by the retention sweeper, which
-- finds the expired ones through this index.
CREATE INDEX sent_texts_sent_at ON sent_texts (sent_at);
