-- The BFF read side over messaging (issue 14): the `message` index's free text is the message's
-- content, through the same immutable function as the other text indexes so the query's
-- expression and this index's are the same text; and the newest-first order every message search
-- defaults to, for admins (participants reach their messages through their threads:
-- message_threads_guest_idx / _host_idx, then messages_thread_idx).
CREATE INDEX messages_bff_tsv_idx ON messaging.messages USING gin (bff.text_tsv(content, NULL));
CREATE INDEX messages_bff_sent_idx ON messaging.messages (sent_at DESC, id DESC);
-- Report reasons and resolution notes (the `messageReport` index's free text).
CREATE INDEX message_reports_bff_tsv_idx ON messaging.message_reports
    USING gin (bff.text_tsv(report_reason, resolution_notes));
