-- Listing search (listListings, issue 15): which listings hold a night of the requested stay,
-- across all listings of a city. The exclusion constraint's GiST index leads with listing_id, so
-- a probe by the stay alone walks the whole index (~1,200 pages at 110k holds, 20 ms), yet the
-- planner costs it like any other GiST index and picks it. This index holds the stay written as
-- `daterange(lower(stay), upper(stay))` (the same range), which only queries written that way
-- match: the search asks for it by that expression and finds the few thousand overlapping holds
-- in about a millisecond. The listing id rides along for an index-only scan.
CREATE INDEX listing_holds_span_idx ON catalog.listing_holds
    USING gist ((daterange(lower(stay), upper(stay)))) INCLUDE (listing_id);

-- The caller's language chain (every listing read binds it): a LANGUAGE sql function with CTEs
-- cannot be inlined, and PostgreSQL plans such a body anew at every call, which cost ~1.2 ms of
-- the ~1.7 ms `getListing` spent in Postgres. The same query in PL/pgSQL keeps its plan for the
-- session (measured with pgbench on the getListing statement: 2.4k → 5.8k statements/s at 4
-- clients). Same arguments, same result.
CREATE OR REPLACE FUNCTION platformadmin.language_chain(asked text[]) RETURNS text[]
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
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
            ELSE ARRAY(SELECT t FROM chain GROUP BY t ORDER BY min(o)) END);
END $$;
