-- The BFF read side over messaging (issue 14). The `message` index's free text is the message's
-- content, through the same immutable function as the other text indexes so the query's
-- expression and this index's are the same text. A participant's messages are found by their
-- sender or recipient (the thread's two participants): the existing (sender_id, sent_at) index and
-- this recipient one, newest first; an admin's newest-first page walks messages_bff_sent_idx
-- (NULLS LAST, as search orders).
CREATE INDEX messages_bff_tsv_idx ON messaging.messages USING gin (bff.text_tsv(content, NULL));
CREATE INDEX messages_bff_sent_idx ON messaging.messages (sent_at DESC NULLS LAST, id DESC);
CREATE INDEX messages_bff_recipient_idx ON messaging.messages (recipient_id, sent_at DESC NULLS LAST, id DESC);
-- Report reasons and resolution notes (the `messageReport` index's free text).
CREATE INDEX message_reports_bff_tsv_idx ON messaging.message_reports
    USING gin (bff.text_tsv(report_reason, resolution_notes));
