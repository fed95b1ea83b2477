-- Platform administration: API keys and the append-only audit log; domain events for live streams.
CREATE SCHEMA platformadmin;

-- Only the SHA-256 of a key is stored; the plaintext is shown once at creation.
CREATE TABLE platformadmin.api_keys (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    key_hash       text NOT NULL,
    key_prefix     text NOT NULL,
    active         boolean NOT NULL DEFAULT true,
    description    text,
    revoked_at     timestamptz,
    created_by     uuid NOT NULL REFERENCES auth.users (id),
    last_used_at   timestamptz,
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX api_keys_hash_key ON platformadmin.api_keys (key_hash);
CREATE INDEX api_keys_created_by_idx ON platformadmin.api_keys (created_by);

CREATE TABLE platformadmin.audit_logs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    performed_by   uuid,
    object_id      uuid,
    details        jsonb,
    ip_address     text,
    action_object  text NOT NULL,
    action_type    text NOT NULL,
    occurred_at    timestamptz NOT NULL DEFAULT now(),
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_logs_object_idx ON platformadmin.audit_logs (object_id);

-- Append-only; nothing may rewrite history.
CREATE FUNCTION platformadmin.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit log rows are append-only';
END $$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON platformadmin.audit_logs
    FOR EACH ROW EXECUTE FUNCTION platformadmin.reject_change();

CREATE SCHEMA events;
-- Domain events for /events (LISTEN/NOTIFY carries the id; Last-Event-ID resumes from here).
CREATE TABLE events.domain_events (
    id         bigserial PRIMARY KEY,
    kind       text NOT NULL,
    object_id  uuid,
    actor_id   uuid,
    payload    jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now()
);
