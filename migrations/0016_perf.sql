-- Performance (issue 15).

-- Principal cache invalidation: every change that can alter or end a cached principal (a user's
-- role, activity, email or name; a session revoked, expired or deleted; an API key revoked,
-- deactivated or deleted) announces the user's id on `haven_principals` (delivered at commit to
-- every replica's listener) and notes it in the transaction-local setting
-- `haven.principals_changed`, which the process that made the change reads before committing so
-- its own cache forgets the user at once.
CREATE FUNCTION auth.announce_principal_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    uid text;
BEGIN
    IF TG_OP = 'DELETE' THEN
        uid := to_jsonb(OLD) ->> TG_ARGV[0];
    ELSE
        uid := to_jsonb(NEW) ->> TG_ARGV[0];
    END IF;
    IF uid IS NOT NULL THEN
        PERFORM pg_notify('haven_principals', uid);
        PERFORM set_config('haven.principals_changed',
            COALESCE(current_setting('haven.principals_changed', true), '') || uid || ',', true);
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER users_principal_update AFTER UPDATE ON auth.users FOR EACH ROW
    WHEN ((OLD.role_id, OLD.is_active, OLD.email, OLD.fullname)
          IS DISTINCT FROM (NEW.role_id, NEW.is_active, NEW.email, NEW.fullname))
    EXECUTE FUNCTION auth.announce_principal_change('id');
CREATE TRIGGER users_principal_delete AFTER DELETE ON auth.users FOR EACH ROW
    EXECUTE FUNCTION auth.announce_principal_change('id');
CREATE TRIGGER sessions_principal_change AFTER UPDATE OR DELETE ON auth.sessions FOR EACH ROW
    EXECUTE FUNCTION auth.announce_principal_change('user_id');
CREATE TRIGGER api_keys_principal_update AFTER UPDATE ON platformadmin.api_keys FOR EACH ROW
    WHEN ((OLD.active, OLD.revoked_at, OLD.is_active, OLD.key_hash, OLD.created_by)
          IS DISTINCT FROM (NEW.active, NEW.revoked_at, NEW.is_active, NEW.key_hash, NEW.created_by))
    EXECUTE FUNCTION auth.announce_principal_change('created_by');
CREATE TRIGGER api_keys_principal_delete AFTER DELETE ON platformadmin.api_keys FOR EACH ROW
    EXECUTE FUNCTION auth.announce_principal_change('created_by');

-- Listing search (listListings): cities match regardless of case and accents (`Lisbon`,
-- `lisbon`, `LISBON`; `Zurich`, `Zürich`) through one immutable folding function, which the
-- search indexes are built on so the filter keeps using them.
CREATE FUNCTION catalog.fold_text(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT translate(lower($1), 'àáâãäåāăąçćčďđèéêëēėęěìíîïīįıłñńňòóôõöøōőŕřśšşţťùúûüūůűųýÿźżž', 'aaaaaaaaacccddeeeeeeeeiiiiiiilnnnoooooooorrsssttuuuuuuuuyyzzz') $$;

DROP INDEX catalog.listings_search_idx;
-- The common sorts within a city: newest first (the default), and by price.
CREATE INDEX listings_city_newest_idx ON catalog.listings (catalog.fold_text(city), created_at DESC, id)
    WHERE is_active;
CREATE INDEX listings_city_price_idx ON catalog.listings (catalog.fold_text(city), price_per_night, created_at DESC, id)
    WHERE is_active;
