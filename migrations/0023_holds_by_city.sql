-- Listing search (listListings, issue 15): the availability filter collected every hold
-- overlapping the stay in every city (1,714 at 110k holds for a 3-night stay), hashed them and
-- probed the hash per candidate, about a third of a city search's time in Postgres. Each hold now
-- carries its listing's folded city, and the search collects only the holds of the cities asked
-- for (a seventh of them for the largest city of the bench data), read index-only.

ALTER TABLE catalog.listing_holds ADD COLUMN city_key text;
UPDATE catalog.listing_holds h SET city_key = catalog.fold_text(l.city)
    FROM catalog.listings l WHERE l.id = h.listing_id;
ALTER TABLE catalog.listing_holds ALTER COLUMN city_key SET NOT NULL;

-- A hold takes its listing's city when written. `FOR SHARE` waits for a concurrent change of the
-- listing's city to commit (and makes that change wait for this hold), so the city-change trigger
-- below always sees the hold or the hold sees the new city. A booking already holds the listing's
-- row lock, so for it this adds no wait.
CREATE FUNCTION catalog.hold_city() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.city_key := (SELECT catalog.fold_text(city) FROM catalog.listings
                     WHERE id = NEW.listing_id FOR SHARE);
    RETURN NEW;
END $$;
CREATE TRIGGER listing_holds_city BEFORE INSERT OR UPDATE OF listing_id ON catalog.listing_holds
    FOR EACH ROW EXECUTE FUNCTION catalog.hold_city();

-- A listing that moves city moves its holds with it.
CREATE FUNCTION catalog.move_holds_city() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE catalog.listing_holds SET city_key = catalog.fold_text(NEW.city)
        WHERE listing_id = NEW.id;
    RETURN NEW;
END $$;
CREATE TRIGGER listings_holds_city AFTER UPDATE OF city ON catalog.listings
    FOR EACH ROW WHEN (catalog.fold_text(OLD.city) IS DISTINCT FROM catalog.fold_text(NEW.city))
    EXECUTE FUNCTION catalog.move_holds_city();

-- The holds of a city overlapping a stay. `stay` and `listing_id` ride along so the search reads
-- the index alone (the search writes the range as `daterange(lower(stay), upper(stay))`, see
-- 0020, which an index-only scan can answer only when `stay` itself is in the index).
CREATE INDEX listing_holds_city_span_idx ON catalog.listing_holds
    USING gist (city_key, (daterange(lower(stay), upper(stay)))) INCLUDE (listing_id, stay);

ANALYZE catalog.listing_holds;
