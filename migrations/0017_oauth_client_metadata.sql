-- Client ID Metadata Documents: an app whose client_id is the https URL of its metadata document
-- is kept as an oauth.clients row (id = the URL) like a registered one, refreshed from the URL
-- once metadata_expires_at passes (its Cache-Control max-age, bounded).
ALTER TABLE oauth.clients
    ADD COLUMN metadata_document boolean NOT NULL DEFAULT false,
    ADD COLUMN metadata_expires_at timestamptz;
