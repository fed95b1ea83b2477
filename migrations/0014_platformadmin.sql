-- The rest of platform admin: a richer audit row (who, through which face, what changed), the
-- change capture that feeds its before/after summary, localization settings, admin dispute
-- actions, immutable financial reports, and GDPR requests with their durable job table, export
-- documents and consent records.

-- 1. Audit rows say who acted (credential, OAuth client, agent run), through which face, in which
--    request, and what the call changed.
ALTER TABLE platformadmin.audit_logs
    ADD COLUMN operation          text,
    ADD COLUMN face               text CHECK (face IN ('rest', 'mcp', 'agent', 'internal')),
    ADD COLUMN request_id         text,
    ADD COLUMN credential_kind    text CHECK (credential_kind IN ('session', 'apiKey', 'oauth')),
    ADD COLUMN session_id         uuid,
    ADD COLUMN api_key_id         uuid,
    ADD COLUMN oauth_client_id    text,
    ADD COLUMN agent_execution_id uuid,
    ADD COLUMN changes            jsonb,
    ADD COLUMN recorded_by_admin  boolean NOT NULL DEFAULT false;
CREATE INDEX audit_logs_performer_idx ON platformadmin.audit_logs (performed_by, occurred_at DESC);
CREATE INDEX audit_logs_occurred_idx ON platformadmin.audit_logs (occurred_at DESC, id DESC);

-- Audit rows stay append-only. The one exception is a GDPR erasure (which sets the transaction-local
-- `haven.gdpr_erasure`): it may blank the IP address and scrub personal values out of `details` and
-- `changes`, never anything else, and no row is ever deleted.
CREATE OR REPLACE FUNCTION platformadmin.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('haven.gdpr_erasure', true) = 'on'
       AND (to_jsonb(NEW) - 'ip_address' - 'details' - 'changes')
           = (to_jsonb(OLD) - 'ip_address' - 'details' - 'changes') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit log rows are append-only';
END $$;

-- Change capture: an AFTER trigger on the business tables notes each changed row's first
-- "before" and last "after" image in a transaction-local setting (at most 20 rows per
-- transaction, so a bulk load costs almost nothing); audit::record turns it into the row's
-- before/after summary and clears it. Secrets and blobs never enter it.
CREATE FUNCTION platformadmin.capture_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    n   integer := coalesce(nullif(current_setting('haven.changes_n', true), '')::integer, 0);
    cur jsonb;
    row_new jsonb;
    row_old jsonb;
    k   text;
BEGIN
    IF n >= 20 THEN
        RETURN NULL;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        row_new := to_jsonb(NEW) - 'password_hash' - 'key_hash' - 'file_data' - 'document';
    END IF;
    IF TG_OP <> 'INSERT' THEN
        row_old := to_jsonb(OLD) - 'password_hash' - 'key_hash' - 'file_data' - 'document';
    END IF;
    k := TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME || '/' || coalesce(row_new ->> 'id', row_old ->> 'id', '');
    cur := coalesce(nullif(current_setting('haven.changes', true), '')::jsonb, '{}');
    IF cur ? k THEN
        cur := jsonb_set(cur, ARRAY[k, 'a'], coalesce(row_new, 'null'::jsonb));
    ELSE
        cur := cur || jsonb_build_object(k, jsonb_build_object(
            't', TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 'op', lower(TG_OP),
            'b', row_old, 'a', row_new));
        PERFORM set_config('haven.changes_n', (n + 1)::text, true);
    END IF;
    PERFORM set_config('haven.changes', cur::text, true);
    RETURN NULL;
END $$;

-- A shown value: personal or secret fields only say that they changed, long ones are shortened.
CREATE FUNCTION platformadmin.summary_value(field text, value jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN value IS NULL OR value = 'null'::jsonb THEN 'null'::jsonb
        WHEN field = ANY (ARRAY['email', 'fullname', 'bio', 'avatar', 'address', 'guest_note',
                'card_holder_name', 'card_holder_zip', 'card_info', 'access_key', 'ip_address',
                'created_ip', 'mobile', 'phone', 'token', 'body', 'content', 'message_text',
                'description', 'localized_description', 'review_text', 'note', 'notes',
                'cancellation_reason', 'input', 'output', 'consent'])
            THEN '"(personal data, not shown)"'::jsonb
        WHEN jsonb_typeof(value) = 'string' AND length(value #>> '{}') > 120
            THEN to_jsonb(left(value #>> '{}', 117) || '...')
        WHEN jsonb_typeof(value) IN ('object', 'array') AND length(value::text) > 400
            THEN '"(large value, not shown)"'::jsonb
        ELSE value
    END
$$;

-- The before/after summary of the transaction's captured changes: the changed fields of the
-- audited object (`object`) and the other rows the call touched. Clears the capture.
CREATE FUNCTION platformadmin.change_summary(object uuid) RETURNS jsonb LANGUAGE plpgsql AS $$
DECLARE
    cur     jsonb := nullif(current_setting('haven.changes', true), '')::jsonb;
    e       jsonb;
    main    jsonb;
    fields  jsonb;
    related jsonb := '[]';
    f       text;
BEGIN
    PERFORM set_config('haven.changes', '', true);
    PERFORM set_config('haven.changes_n', '0', true);
    IF cur IS NULL THEN
        RETURN NULL;
    END IF;
    FOR e IN SELECT value FROM jsonb_each(cur) LOOP
        IF main IS NULL AND object IS NOT NULL
           AND coalesce(e -> 'a' ->> 'id', e -> 'b' ->> 'id') = object::text THEN
            fields := '{}';
            FOR f IN SELECT jsonb_object_keys(
                    (CASE WHEN jsonb_typeof(e -> 'a') = 'object' THEN e -> 'a' ELSE '{}' END)
                    || (CASE WHEN jsonb_typeof(e -> 'b') = 'object' THEN e -> 'b' ELSE '{}' END)) LOOP
                IF f NOT IN ('updated_at', 'record_version', 'created_at')
                   AND (e -> 'b' -> f) IS DISTINCT FROM (e -> 'a' -> f) THEN
                    fields := fields || jsonb_build_object(f, jsonb_build_object(
                        'before', platformadmin.summary_value(f, e -> 'b' -> f),
                        'after', platformadmin.summary_value(f, e -> 'a' -> f)));
                END IF;
            END LOOP;
            main := jsonb_build_object('table', e ->> 't', 'operation', e ->> 'op', 'fields', fields);
        ELSE
            related := related || jsonb_build_array(jsonb_build_object('table', e ->> 't',
                'id', coalesce(e -> 'a' ->> 'id', e -> 'b' ->> 'id'), 'operation', e ->> 'op'));
        END IF;
    END LOOP;
    RETURN coalesce(main, '{}'::jsonb) || jsonb_build_object('related', related);
END $$;

-- 2. Localization settings: the languages and currencies the site accepts.
CREATE TABLE platformadmin.localization_settings (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    language_code      text NOT NULL,
    currency_code      text NOT NULL,
    is_currency_active boolean NOT NULL,
    effective_from     timestamptz,
    effective_to       timestamptz,
    position           integer NOT NULL DEFAULT 0,
    is_active          boolean NOT NULL DEFAULT true,
    record_version     integer NOT NULL DEFAULT 1,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    owner_id           uuid,
    CONSTRAINT localization_window_ck CHECK (effective_to IS NULL OR effective_from IS NULL OR effective_to > effective_from)
);
CREATE UNIQUE INDEX localization_pair_key ON platformadmin.localization_settings (lower(language_code), upper(currency_code)) WHERE is_active;

-- The languages to localize an answer in, best first: the caller's `Accept-Language` tags the
-- settings in effect support (exactly or by primary subtag), then every supported language in
-- fallback order (position, then age). With no setting in effect, the caller's tags unchanged.
CREATE FUNCTION platformadmin.language_chain(asked text[]) RETURNS text[] LANGUAGE sql STABLE AS $$
    WITH s AS (
        SELECT lower(language_code) AS l, min(position) AS pos, min(created_at) AS made
        FROM platformadmin.localization_settings
        WHERE is_active AND (effective_from IS NULL OR effective_from <= now())
          AND (effective_to IS NULL OR effective_to > now())
        GROUP BY lower(language_code)
    ), chain AS (
        SELECT lower(a.t) AS t, a.ord::bigint AS o
        FROM unnest(asked) WITH ORDINALITY AS a(t, ord)
        WHERE EXISTS (SELECT 1 FROM s WHERE s.l = lower(a.t)
                      OR split_part(s.l, '-', 1) = split_part(lower(a.t), '-', 1))
        UNION ALL
        SELECT s.l, 1000000 + row_number() OVER (ORDER BY s.pos, s.made, s.l) FROM s
    )
    SELECT CASE WHEN NOT EXISTS (SELECT 1 FROM s) THEN asked
        ELSE ARRAY(SELECT t FROM chain GROUP BY t ORDER BY min(o)) END
$$;

-- 3. Admin dispute actions: append-only decisions on a dispute.
CREATE TABLE platformadmin.admin_dispute_actions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    dispute_id     uuid NOT NULL REFERENCES booking.disputes (id),
    admin_id       uuid NOT NULL REFERENCES auth.users (id),
    action_taken   text NOT NULL,
    notes          text,
    outcome        text,
    resolution_before text NOT NULL,
    resolution_after  text NOT NULL,
    action_date    timestamptz NOT NULL DEFAULT now(),
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    owner_id       uuid
);
CREATE INDEX admin_dispute_actions_dispute_idx ON platformadmin.admin_dispute_actions (dispute_id, action_date DESC);
CREATE FUNCTION platformadmin.reject_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable', TG_TABLE_NAME;
END $$;
CREATE TRIGGER admin_dispute_actions_append_only BEFORE UPDATE OR DELETE ON platformadmin.admin_dispute_actions
    FOR EACH ROW EXECUTE FUNCTION platformadmin.reject_record_change();

-- 4. Financial reports: immutable snapshots computed from the payment ledger.
CREATE TABLE platformadmin.financial_reports (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    period               text NOT NULL,
    period_start         date NOT NULL,
    period_end           date NOT NULL,
    currency             text,
    figures              jsonb NOT NULL,
    created_by           uuid NOT NULL REFERENCES auth.users (id),
    generated_at         timestamptz NOT NULL DEFAULT now(),
    is_active            boolean NOT NULL DEFAULT true,
    record_version       integer NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    owner_id             uuid
);
CREATE INDEX financial_reports_period_idx ON platformadmin.financial_reports (period_start, generated_at DESC);
CREATE TRIGGER financial_reports_immutable BEFORE UPDATE OR DELETE ON platformadmin.financial_reports
    FOR EACH ROW EXECUTE FUNCTION platformadmin.reject_record_change();

-- 5. GDPR requests, the durable job that processes each (claimed with SKIP LOCKED and a lease, one
--    data source per step, so a crashed worker's job is taken up again where it stopped), the
--    export documents and the consent records.
CREATE TABLE platformadmin.gdpr_actions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    action_type    text NOT NULL CHECK (action_type IN ('export', 'delete', 'consent')),
    status         text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'complete', 'failed')),
    requested_by   uuid NOT NULL REFERENCES auth.users (id),
    requested_at   timestamptz NOT NULL DEFAULT now(),
    processed_at   timestamptz,
    failure_reason text,
    consent        jsonb,
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    owner_id       uuid
);
CREATE INDEX gdpr_actions_user_idx ON platformadmin.gdpr_actions (user_id, requested_at DESC);
CREATE TRIGGER gdpr_actions_no_delete BEFORE DELETE ON platformadmin.gdpr_actions
    FOR EACH ROW EXECUTE FUNCTION platformadmin.reject_record_change();

CREATE TABLE platformadmin.gdpr_jobs (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    gdpr_action_id uuid NOT NULL UNIQUE REFERENCES platformadmin.gdpr_actions (id),
    state          text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done', 'failed', 'cancelled')),
    step           integer NOT NULL DEFAULT 0,
    attempts       integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gdpr_jobs_queued_idx ON platformadmin.gdpr_jobs (created_at) WHERE state = 'queued';

CREATE TABLE platformadmin.gdpr_exports (
    gdpr_action_id uuid PRIMARY KEY REFERENCES platformadmin.gdpr_actions (id),
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    document       jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE platformadmin.consents (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id        uuid NOT NULL REFERENCES auth.users (id),
    gdpr_action_id uuid NOT NULL REFERENCES platformadmin.gdpr_actions (id),
    purpose        text NOT NULL,
    granted        boolean NOT NULL,
    recorded_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_user_idx ON platformadmin.consents (user_id, purpose, recorded_at DESC);

-- The change capture on every business table with an `id`.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY[
        'auth.users', 'auth.user_groups', 'auth.user_group_members', 'auth.user_avatars_files',
        'platformadmin.api_keys', 'platformadmin.localization_settings',
        'platformadmin.admin_dispute_actions', 'platformadmin.financial_reports',
        'platformadmin.gdpr_actions',
        'catalog.amenities', 'catalog.listings', 'catalog.listing_calendars', 'catalog.listing_locale_texts',
        'booking.reservations', 'booking.disputes', 'booking.payment_records',
        'booking.reservation_payments', 'booking.payment_methods',
        'reviews.reviews', 'agenthub.agent_overrides']
    LOOP
        EXECUTE format('CREATE TRIGGER capture_change AFTER INSERT OR UPDATE OR DELETE ON %s
            FOR EACH ROW EXECUTE FUNCTION platformadmin.capture_change()', t);
    END LOOP;
END $$;

-- An erased user keeps its row (reservations, reviews and the ledger point at it) but nothing
-- personal; counterparts see "Deleted user".
ALTER TABLE auth.users ADD COLUMN erased_at timestamptz;

-- Replaces each of `needles` (and its lower-case form) in a JSON document's text with `[erased]`,
-- for personal values that sit inside other people's records (audit summaries, agent transcripts).
CREATE FUNCTION platformadmin.scrub(doc jsonb, needles text[]) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    t text := doc::text;
    n text;
    escaped text;
BEGIN
    IF doc IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH n IN ARRAY needles LOOP
        IF n IS NOT NULL AND length(n) >= 3 THEN
            escaped := substr(to_jsonb(n)::text, 2, length(to_jsonb(n)::text) - 2);
            t := replace(replace(t, escaped, '[erased]'), lower(escaped), '[erased]');
        END IF;
    END LOOP;
    RETURN t::jsonb;
END $$;
