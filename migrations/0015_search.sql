-- The BFF read side: full-text and fuzzy search over the business tables, served from Postgres.
-- Nothing is copied: every index is a query over the owning tables (see tools/src/search), and
-- these are the expression indexes those queries use, plus the per-user saved filters.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE SCHEMA bff;

-- One tsvector per searchable object, as IMMUTABLE functions so the index expression and the
-- query expression are the same text. The 'simple' configuration: listings are written in any
-- language, so no stemming is assumed; terms match by prefix (see tools/src/search/engine.rs).
CREATE FUNCTION bff.listing_tsv(title text, description text, city text, country text, address text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple', coalesce(title, '')), 'A')
        || setweight(to_tsvector('simple', coalesce(city, '') || ' ' || coalesce(country, '')), 'B')
        || setweight(to_tsvector('simple', coalesce(address, '')), 'C')
        || setweight(to_tsvector('simple', coalesce(description, '')), 'D')
$$;
-- Names and places for fuzzy (typo-tolerant) matches with pg_trgm's word similarity.
CREATE FUNCTION bff.listing_fuzzy(title text, city text)
RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT lower(coalesce(title, '') || ' ' || coalesce(city, ''))
$$;
CREATE INDEX listings_bff_tsv_idx ON catalog.listings
    USING gin (bff.listing_tsv(title, description, city, country, address));
CREATE INDEX listings_bff_fuzzy_idx ON catalog.listings
    USING gin (bff.listing_fuzzy(title, city) gin_trgm_ops);

CREATE FUNCTION bff.text_tsv(a text, b text)
RETURNS tsvector LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT to_tsvector('simple', coalesce(a, '') || ' ' || coalesce(b, ''))
$$;
CREATE INDEX reservations_bff_tsv_idx ON booking.reservations
    USING gin (bff.text_tsv(guest_note, cancellation_reason));
CREATE INDEX reservations_bff_guest_checkin_idx ON booking.reservations (guest_id, check_in DESC);
CREATE INDEX reservations_bff_host_checkin_idx ON booking.reservations (host_id, check_in DESC);
CREATE INDEX reservations_bff_created_idx ON booking.reservations (created_at DESC, id);
CREATE INDEX listing_locale_texts_bff_tsv_idx ON catalog.listing_locale_texts
    USING gin (bff.text_tsv(localized_title, localized_description));
CREATE INDEX reviews_bff_tsv_idx ON reviews.reviews USING gin (bff.text_tsv(review_text, NULL));
CREATE INDEX disputes_bff_tsv_idx ON booking.disputes USING gin (bff.text_tsv(issue_type, description));
CREATE INDEX users_bff_fuzzy_idx ON auth.users USING gin (lower(fullname) gin_trgm_ops);
CREATE INDEX users_bff_tsv_idx ON auth.users USING gin (bff.text_tsv(fullname, bio));
CREATE INDEX amenities_bff_fuzzy_idx ON catalog.amenities USING gin (lower(name) gin_trgm_ops);

-- Saved filters: a named filter definition per user and index (the BFF's only writes).
CREATE TABLE bff.saved_filters (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES auth.users (id),
    index_name  text NOT NULL,
    filter_name text NOT NULL,
    conditions  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX saved_filters_user_idx ON bff.saved_filters (user_id, index_name, created_at DESC);
