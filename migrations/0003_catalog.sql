-- Property catalog: listings, calendar entries, the amenity dictionary, per-language texts, and
-- the holds table whose exclusion constraint makes double booking impossible.
CREATE EXTENSION IF NOT EXISTS btree_gist;
CREATE SCHEMA catalog;

CREATE TABLE catalog.amenities (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name           text NOT NULL,
    icon_url       text,
    is_active      boolean NOT NULL DEFAULT true,
    record_version integer NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    owner_id       uuid
);
CREATE UNIQUE INDEX amenities_name_key ON catalog.amenities (lower(name)) WHERE is_active;

-- Money is integer minor units (cents); percentages are NUMERIC. Never floating point.
CREATE TABLE catalog.listings (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    host_id              uuid NOT NULL REFERENCES auth.users (id),
    title                text NOT NULL,
    description          text NOT NULL,
    address              text NOT NULL,
    city                 text NOT NULL,
    country              text,
    latitude             double precision,
    longitude            double precision,
    property_type        text NOT NULL CHECK (property_type IN ('apartment', 'house', 'villa', 'room', 'condo', 'loft', 'studio', 'other')),
    approval_type        text NOT NULL CHECK (approval_type IN ('instant', 'manual')),
    price_per_night      bigint NOT NULL CHECK (price_per_night > 0),
    cleaning_fee         bigint NOT NULL DEFAULT 0 CHECK (cleaning_fee >= 0),
    currency             text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    max_guests           integer NOT NULL DEFAULT 2 CHECK (max_guests BETWEEN 1 AND 100),
    min_stay             integer NOT NULL DEFAULT 1 CHECK (min_stay >= 1),
    max_stay             integer CHECK (max_stay IS NULL OR max_stay >= min_stay),
    seasonal_pricing     jsonb,
    booking_policies     jsonb,
    cancellation_policy  jsonb,
    languages_supported  text[] NOT NULL DEFAULT '{}',
    house_rules          text,
    is_published         boolean NOT NULL DEFAULT false,
    city_tax_percent     numeric(5, 2) NOT NULL DEFAULT 0 CHECK (city_tax_percent BETWEEN 0 AND 100),
    amenity_ids          uuid[] NOT NULL DEFAULT '{}',
    main_photo           text,
    photos               text[] NOT NULL DEFAULT '{}',
    is_active            boolean NOT NULL DEFAULT true,
    record_version       integer NOT NULL DEFAULT 1,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now(),
    owner_id             uuid
);
CREATE INDEX listings_host_idx ON catalog.listings (host_id);
-- Guest search: city + capacity + price over the visible listings.
CREATE INDEX listings_search_idx ON catalog.listings (lower(city), max_guests, price_per_night)
    WHERE is_active AND is_published;
CREATE INDEX listings_created_idx ON catalog.listings (created_at DESC, id);

-- A calendar entry covers the nights [date, end_date); entries of one listing never overlap.
CREATE TABLE catalog.listing_calendars (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    listing_id            uuid NOT NULL REFERENCES catalog.listings (id),
    date                  date NOT NULL,
    end_date              date NOT NULL,
    is_available          boolean NOT NULL,
    price_override        bigint CHECK (price_override IS NULL OR price_override > 0),
    min_stay              integer CHECK (min_stay IS NULL OR min_stay >= 1),
    booked_by             uuid,
    ical_url              text,
    external_calendar_ids text[] NOT NULL DEFAULT '{}',
    is_active             boolean NOT NULL DEFAULT true,
    record_version        integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    owner_id              uuid,
    CONSTRAINT listing_calendars_range_ck CHECK (end_date > date),
    CONSTRAINT listing_calendars_no_overlap EXCLUDE USING gist
        (listing_id WITH =, daterange(date, end_date, '[)') WITH &&) WHERE (is_active)
);
CREATE INDEX listing_calendars_listing_idx ON catalog.listing_calendars (listing_id, date);

CREATE TABLE catalog.listing_locale_texts (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    listing_id            uuid NOT NULL REFERENCES catalog.listings (id),
    language_code         text NOT NULL,
    localized_title       text NOT NULL,
    localized_description text NOT NULL,
    is_active             boolean NOT NULL DEFAULT true,
    record_version        integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    owner_id              uuid
);
CREATE UNIQUE INDEX listing_locale_texts_key ON catalog.listing_locale_texts (listing_id, lower(language_code)) WHERE is_active;

-- Every night a listing cannot be sold: a holding reservation or an unavailable calendar entry.
-- Rows are kept by triggers (here and in the booking schema), so no code path can skip them, and
-- the exclusion constraint is the one invariant: no two holds of a listing share a night.
CREATE TABLE catalog.listing_holds (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    listing_id     uuid NOT NULL REFERENCES catalog.listings (id),
    stay           daterange NOT NULL,
    calendar_id    uuid UNIQUE REFERENCES catalog.listing_calendars (id) ON DELETE CASCADE,
    reservation_id uuid UNIQUE,
    CONSTRAINT listing_holds_one_source CHECK (num_nonnulls(calendar_id, reservation_id) = 1),
    CONSTRAINT listing_holds_no_overlap EXCLUDE USING gist (listing_id WITH =, stay WITH &&)
);

CREATE FUNCTION catalog.sync_calendar_hold() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM catalog.listing_holds WHERE calendar_id = NEW.id;
    IF NEW.is_active AND NOT NEW.is_available THEN
        INSERT INTO catalog.listing_holds (listing_id, stay, calendar_id)
        VALUES (NEW.listing_id, daterange(NEW.date, NEW.end_date, '[)'), NEW.id);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER listing_calendars_hold AFTER INSERT OR UPDATE ON catalog.listing_calendars
    FOR EACH ROW EXECUTE FUNCTION catalog.sync_calendar_hold();
