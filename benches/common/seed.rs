//! The benchmarks' data: 10,000 listings over fifty cities (skewed), with calendars, and 100,000
//! reservations, inserted with set-based SQL (the guests `guest<i>@bench.haven` must exist first).

// Each benchmark uses its own part of this module.
#![allow(dead_code)]

use std::time::Instant;

use anyhow::Context;
use sqlx::PgPool;

/// Listings seeded.
pub const LISTINGS: i64 = 10_000;
/// Reservations seeded per listing (10 × 10,000 = 100,000).
pub const STAYS_PER_LISTING: i64 = 10;
/// Hosts (one per 100 listings), inserted by SQL: they never log in.
pub const HOSTS: i64 = 100;
/// Fifty cities; the seed picks them with a skewed (quadratic) distribution, first = most popular.
pub const CITIES: [&str; 50] = [
    "Lisbon",
    "Barcelona",
    "Paris",
    "Rome",
    "Berlin",
    "Amsterdam",
    "Prague",
    "Vienna",
    "Madrid",
    "Porto",
    "Budapest",
    "Florence",
    "Athens",
    "Dublin",
    "Copenhagen",
    "Seville",
    "Munich",
    "Milan",
    "Venice",
    "Nice",
    "Krakow",
    "Edinburgh",
    "Brussels",
    "Stockholm",
    "Valencia",
    "Naples",
    "Hamburg",
    "Lyon",
    "Oslo",
    "Helsinki",
    "Split",
    "Dubrovnik",
    "Tallinn",
    "Riga",
    "Vilnius",
    "Ljubljana",
    "Zagreb",
    "Bruges",
    "Salzburg",
    "Zurich",
    "Geneva",
    "Marseille",
    "Bordeaux",
    "Malaga",
    "Granada",
    "Bologna",
    "Turin",
    "Palermo",
    "Valletta",
    "Reykjavik",
];

/// Runs one timed SQL step of the seed and prints how long it took.
async fn step(pool: &PgPool, label: &str, sql: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    let done = sqlx::query(sql)
        .execute(pool)
        .await
        .with_context(|| format!("seeding {label}"))?;
    println!(
        "  {label:<44} {:>7.2} s  ({} rows)",
        t.elapsed().as_secs_f64(),
        done.rows_affected()
    );
    Ok(())
}

/// Seeds hosts, listings, calendars and reservations with set-based SQL, then ANALYZEs.
///
/// Layout per listing `n` (day offsets from today): reservations `i` = 0..9 start at
/// `30i + 1 + n%7` for 2–6 nights (so they end before `30i + 14`); two blocked calendar ranges at
/// `301 + n%5` (4 nights) and `315 + n%5` (3 nights); one price override at `330 + n%5` (7 nights).
/// Nothing overlaps, so the holds' exclusion constraint accepts every row, and days `30i + 15` to
/// `30i + 29` stay free for the booking measurement.
pub async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    let cities = CITIES
        .iter()
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(",");
    let t = Instant::now();
    step(
        pool,
        "hosts (SQL)",
        &format!(
            "INSERT INTO auth.users (email, password_hash, fullname, email_verified)
             SELECT format('host%s@bench.haven', g), '!', format('Bench Host %s', g), true
               FROM generate_series(1, {HOSTS}) g"
        ),
    )
    .await?;
    step(
        pool,
        "listings",
        &format!(
            "WITH hosts AS (SELECT array_agg(id ORDER BY email) AS ids FROM auth.users WHERE email LIKE 'host%@bench.haven'),
                  cities AS (SELECT ARRAY[{cities}] AS names)
             INSERT INTO catalog.listings (id, host_id, owner_id, title, description, address, city, country,
                 latitude, longitude, property_type, approval_type, price_per_night, cleaning_fee, currency,
                 max_guests, min_stay, max_stay, is_published, city_tax_percent, languages_supported, created_at)
             SELECT md5('bench-listing-' || g)::uuid, h.ids[1 + (g - 1) % {HOSTS}], h.ids[1 + (g - 1) % {HOSTS}],
                 format('Bench stay %s', g), format('A comfortable bench stay number %s, close to everything.', g),
                 format('%s Bench Street', g),
                 c.names[1 + floor(50 * power(((g * 7919) % 10007)::float8 / 10007, 2))::int], 'EU',
                 38 + (g % 1000) / 100.0, -9 + (g % 2000) / 100.0,
                 (ARRAY['apartment','house','villa','room','condo','loft','studio','other'])[1 + g % 8],
                 CASE WHEN g % 4 = 0 THEN 'manual' ELSE 'instant' END,
                 4000 + (g * 104729) % 36001, (g % 5) * 1000, 'EUR',
                 1 + (g * 31) % 8, 1 + (g * 17) % 3, 30, g % 20 <> 0, (g % 3) * 2.5, ARRAY['en'],
                 now() - make_interval(mins => g)
               FROM generate_series(1, {LISTINGS}) g, hosts h, cities c"
        ),
    )
    .await?;
    step(
        pool,
        "calendars (2 blocked + 1 override, + holds)",
        &format!(
            "INSERT INTO catalog.listing_calendars (listing_id, owner_id, date, end_date, is_available, price_override, min_stay)
             SELECT l.id, l.host_id, current_date + e.start + g % 5, current_date + e.start + g % 5 + e.nights,
                    e.available, CASE WHEN e.available THEN l.price_per_night * 6 / 5 END,
                    CASE WHEN e.available THEN 2 END
               FROM generate_series(1, {LISTINGS}) g
               JOIN catalog.listings l ON l.id = md5('bench-listing-' || g)::uuid
               CROSS JOIN (VALUES (301, 4, false), (315, 3, false), (330, 7, true)) AS e(start, nights, available)"
        ),
    )
    .await?;
    step(
        pool,
        "reservations (+ holds by trigger)",
        &format!(
            "WITH guests AS (SELECT array_agg(id ORDER BY email) AS ids FROM auth.users WHERE email LIKE 'guest%@bench.haven'),
                  plan AS (
                    SELECT g, i, (g * 10 + i) * 37 % 100 AS k,
                           30 * i + 1 + g % 7 AS start, 2 + (g + i) % 5 AS nights
                      FROM generate_series(1, {LISTINGS}) g, generate_series(0, {STAYS_PER_LISTING} - 1) i)
             INSERT INTO booking.reservations (listing_id, guest_id, host_id, approval_type, booking_status,
                 payment_confirmation, check_in, check_out, guest_count, currency, total_price, price_breakdown,
                 booking_policies_snapshot, cancellation_policy_snapshot, approved_at, cancelled_at, owner_id)
             SELECT l.id, gs.ids[1 + (p.g * 10 + p.i) % array_length(gs.ids, 1)], l.host_id, l.approval_type,
                    CASE WHEN p.k < 8 THEN 'cancelled' WHEN p.k < 10 THEN 'declined' ELSE 'confirmed' END,
                    CASE WHEN p.k < 10 THEN 'canceled' ELSE 'paid' END,
                    current_date + p.start, current_date + p.start + p.nights, 1 + p.g % l.max_guests, 'EUR',
                    l.price_per_night * p.nights + l.cleaning_fee, '{{}}', '{{}}', '{{}}',
                    CASE WHEN p.k >= 10 THEN now() END, CASE WHEN p.k < 8 THEN now() END,
                    gs.ids[1 + (p.g * 10 + p.i) % array_length(gs.ids, 1)]
               FROM plan p
               JOIN catalog.listings l ON l.id = md5('bench-listing-' || p.g)::uuid
               CROSS JOIN guests gs"
        ),
    )
    .await?;
    let a = Instant::now();
    sqlx::query("ANALYZE").execute(pool).await?;
    println!("  {:<44} {:>7.2} s", "ANALYZE", a.elapsed().as_secs_f64());
    let (listings, calendars, reservations, holds): (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM catalog.listings), (SELECT count(*) FROM catalog.listing_calendars),
                (SELECT count(*) FROM booking.reservations), (SELECT count(*) FROM catalog.listing_holds)",
    )
    .fetch_one(pool)
    .await?;
    println!(
        "  seeded {listings} listings, {calendars} calendar entries, {reservations} reservations, {holds} holds in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The five cities with the most published listings, most popular first.
pub async fn popular_cities(pool: &PgPool) -> anyhow::Result<Vec<String>> {
    let cities: Vec<(String, i64)> = sqlx::query_as(
        "SELECT city, count(*) FROM catalog.listings WHERE is_active AND is_published
          GROUP BY city ORDER BY 2 DESC, 1 LIMIT 5",
    )
    .fetch_all(pool)
    .await?;
    println!(
        "  search cities: {}",
        cities
            .iter()
            .map(|(c, n)| format!("{c} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(cities.into_iter().map(|(c, _)| c).collect())
}
