-- BFF listing searches (`/bff-api/v1/listing/list`, `ListingDetailView`, issue 15). A text filter
-- there means "contains, case-insensitive" (`city ILIKE '%Lisbon%'`), which no b-tree serves: the
-- count and the page step read all 10k listings and ran the ILIKE on each (3.6 ms for Lisbon on
-- the bench database). A trigram index answers it from the pattern's trigrams, rechecking only the
-- candidate rows (2.0 ms for Lisbon, the largest city; 0.8 ms for Rome).
CREATE INDEX IF NOT EXISTS listings_city_trgm_idx ON catalog.listings USING gin (city gin_trgm_ops);
ANALYZE catalog.listings;
