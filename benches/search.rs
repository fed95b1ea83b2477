//! Search benchmark: seeds 10,000 listings, 100,000 reservations, 20,000 message threads and
//! 200,000 messages, then measures over REST (real router, real HTTP) typical BFF searches and
//! counts — free text plus filters on listings, a guest's and a host's reservations, an admin
//! count, a booking-list view page, one reservation detail; a guest's and an admin's messages by
//! words, an inbox page (MessageThreadView), one chatContext — as p50/p99, and prints each
//! search's plan as PostgreSQL executed it (auto_explain), to show the full-text, trigram and
//! b-tree indexes at work.
//!
//! Run with `cargo bench --bench search` (`SEARCH_READS` calls per case, default 200;
//! `SEARCH_MESSAGES` messages seeded, default 200,000, ten per thread). Uses
//! `DATABASE_URL` when set (plans are then not shown), otherwise a private cluster under
//! `target/bench-pg`. Nothing here asserts a timing.

use std::time::{Duration, Instant};

use anyhow::Context;
use haven::app::AppState;
use haven::config::Config;
use haven::db::PrivateCluster;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Executor, PgPool};

mod common;
use common::{ms, percentile, sorted, Database, Server};

/// Listings seeded.
const LISTINGS: i64 = 10_000;
/// Reservations per listing (10 × 10,000 = 100,000).
const STAYS_PER_LISTING: i64 = 10;
/// Hosts (100 listings each).
const HOSTS: i64 = 100;
/// Guests (500 reservations each).
const GUESTS: i64 = 200;
/// Messages seeded unless `SEARCH_MESSAGES` says otherwise (ten per thread, one thread per
/// reservation picked).
const MESSAGES: i64 = 200_000;
/// Messages per thread.
const MESSAGES_PER_THREAD: i64 = 10;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_as_bench("search") {
        return Ok(());
    }
    let total = Instant::now();
    let database = Database::create().await?;
    let result = run(&database).await;
    database.drop().await?;
    result?;
    println!("total {:.1} s", total.elapsed().as_secs_f64());
    Ok(())
}

async fn run(database: &Database) -> anyhow::Result<()> {
    let options = database.options();
    let config = Config::loopback(10);
    let server = Server::start(&config, options.clone(), 4).await?;
    let outcome = bench(
        &server,
        &options,
        &config,
        database.cluster.as_ref().map(|a| a.cluster()),
    )
    .await;
    server.stop().await;
    outcome
}

/// One measured case: a label, the REST path, who calls, the body.
struct Case {
    label: &'static str,
    path: String,
    who: Option<&'static str>,
    body: Value,
}

async fn bench(
    server: &Server,
    options: &PgConnectOptions,
    config: &Config,
    cluster: Option<&PrivateCluster>,
) -> anyhow::Result<()> {
    println!("\n== seed");
    let guest = server
        .register("guest000@bench.haven", "Bench Guest 0")
        .await?;
    let host = server
        .register("host000@bench.haven", "Bench Host 0")
        .await?;
    let admin = server.register("admin@bench.haven", "Bench Admin").await?;
    sqlx::query("UPDATE auth.users SET role_id = 'admin' WHERE email = 'admin@bench.haven'")
        .execute(&server.pool)
        .await?;
    let admin = {
        // The role is read at login: log in again.
        let _ = admin;
        let (_, body) = server
            .post(
                "/auth-api/login",
                None,
                json!({"username": "admin@bench.haven", "password": "bench-password-123"}),
            )
            .await?;
        body["accessToken"]
            .as_str()
            .context("admin login")?
            .to_string()
    };
    seed(&server.pool).await?;
    let thread: (uuid::Uuid,) = sqlx::query_as(
        "SELECT t.id FROM messaging.message_threads t JOIN auth.users u ON u.id = t.guest_id
          WHERE u.email = 'guest000@bench.haven' ORDER BY t.last_message_at DESC LIMIT 1",
    )
    .fetch_one(&server.pool)
    .await
    .context("guest000 has no thread: seed more messages")?;
    let reservation: (uuid::Uuid,) = sqlx::query_as(
        "SELECT r.id FROM booking.reservations r JOIN auth.users u ON u.id = r.guest_id
          WHERE u.email = 'guest000@bench.haven' ORDER BY r.check_in LIMIT 1",
    )
    .fetch_one(&server.pool)
    .await?;

    let cases = vec![
        Case {
            label: "listing list: q + city + price (anonymous)",
            path: "/bff-api/v1/listing/list?limit=20&q=comfortable%20lisbon".into(),
            who: None,
            body: json!({"filters": {"pricePerNight": {"$lte": 250}, "maxGuests": {"$gte": 2}}}),
        },
        Case {
            label: "listing count: same",
            path: "/bff-api/v1/listing/count?q=comfortable%20lisbon".into(),
            who: None,
            body: json!({"filters": {"pricePerNight": {"$lte": 250}, "maxGuests": {"$gte": 2}}}),
        },
        Case {
            label: "listing list: fuzzy place (typo 'barcelna')",
            path: "/bff-api/v1/listing/list?limit=20&q=barcelna".into(),
            who: None,
            body: json!({}),
        },
        Case {
            label: "reservation list: guest, confirmed, by checkIn",
            path: "/bff-api/v1/reservation/list?limit=20&sortBy=checkIn&sortOrder=desc".into(),
            who: Some("guest"),
            body: json!({"filters": {"bookingStatus": "confirmed"}}),
        },
        Case {
            label: "reservation count: guest, checkIn range",
            path: "/bff-api/v1/reservation/count".into(),
            who: Some("guest"),
            body: json!({"filters": {"checkIn": "$btw-2000-01-01-2999-12-31"}}),
        },
        Case {
            label: "BookingListView page: host, q on listing title",
            path: "/bff-api/v1/BookingListView/list?limit=20&q=stay".into(),
            who: Some("host"),
            body: json!({"filters": {"bookingStatus": ["confirmed", "pending"]}}),
        },
        Case {
            label: "reservation count: admin, cancelled (100k rows)",
            path: "/bff-api/v1/reservation/count".into(),
            who: Some("admin"),
            body: json!({"filters": {"bookingStatus": "cancelled"}}),
        },
        Case {
            label: "ReservationDetailView get one: guest",
            path: "/bff-api/v1/ReservationDetailView/list?limit=1".into(),
            who: Some("guest"),
            body: json!({"filters": {"id": reservation.0}}),
        },
        Case {
            label: "message list: guest, q 'parking' + unread",
            path: "/bff-api/v1/message/list?limit=20&q=parking".into(),
            who: Some("guest"),
            body: json!({"filters": {"isRead": false}}),
        },
        Case {
            label: "message count: guest, q 'parking'",
            path: "/bff-api/v1/message/count?q=parking".into(),
            who: Some("guest"),
            body: json!({}),
        },
        Case {
            label: "message list: guest, newest first (no q)",
            path: "/bff-api/v1/message/list?limit=20".into(),
            who: Some("guest"),
            body: json!({}),
        },
        Case {
            label: "message list: admin, newest first (200k)",
            path: "/bff-api/v1/message/list?limit=20".into(),
            who: Some("admin"),
            body: json!({}),
        },
        Case {
            label: "message list: admin, q 'refund late' + text",
            path: "/bff-api/v1/message/list?limit=20&q=refund%20late".into(),
            who: Some("admin"),
            body: json!({"filters": {"messageType": "text"}}),
        },
        Case {
            label: "message count: admin, q 'refund late' (200k)",
            path: "/bff-api/v1/message/count?q=refund%20late".into(),
            who: Some("admin"),
            body: json!({}),
        },
        Case {
            label: "MessageThreadView page: host inbox",
            path: "/bff-api/v1/MessageThreadView/list?limit=20".into(),
            who: Some("host"),
            body: json!({}),
        },
        Case {
            label: "MessageThreadView page: guest, unread only",
            path: "/bff-api/v1/MessageThreadView/list?limit=20".into(),
            who: Some("guest"),
            body: json!({"filters": {"unreadCount": {"$gt": 0}}}),
        },
        Case {
            label: "chatContext get one: guest",
            path: "/bff-api/v1/chatContext/list?limit=1".into(),
            who: Some("guest"),
            body: json!({"filters": {"id": thread.0}}),
        },
    ];
    let reads: usize = std::env::var("SEARCH_READS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    println!("\n== measure over REST, {reads} sequential calls per case");
    println!("  {:<52} {:>10} {:>10} {:>8}", "case", "p50", "p99", "rows");
    for case in &cases {
        let token = match case.who {
            Some("guest") => Some(guest.as_str()),
            Some("host") => Some(host.as_str()),
            Some(_) => Some(admin.as_str()),
            None => None,
        };
        let mut latencies = Vec::with_capacity(reads);
        let mut rows = String::new();
        for _ in 0..reads {
            let t = Instant::now();
            let (status, body) = server.post(&case.path, token, case.body.clone()).await?;
            latencies.push(t.elapsed());
            if !status.is_success() {
                anyhow::bail!("{}: {status} {body}", case.label);
            }
            rows = match body.get("count") {
                Some(count) => format!("n={count}"),
                None => format!(
                    "{}/{}",
                    body["records"].as_array().map_or(0, Vec::len),
                    body["paging"]["totalRowCount"]
                ),
            };
        }
        let s = sorted(&latencies);
        println!(
            "  {:<52} {:>10} {:>10} {:>8}",
            case.label,
            ms(percentile(&s, 50.0)),
            ms(percentile(&s, 99.0)),
            rows
        );
    }
    println!("\n== plans (auto_explain, EXPLAIN ANALYZE of the statements each case ran)");
    explain(options, config, cluster, &cases).await
}

async fn step(pool: &PgPool, label: &str, sql: &str) -> anyhow::Result<()> {
    let t = Instant::now();
    let done = sqlx::query(sql)
        .execute(pool)
        .await
        .with_context(|| format!("seeding {label}"))?;
    println!(
        "  {label:<40} {:>7.2} s  ({} rows)",
        t.elapsed().as_secs_f64(),
        done.rows_affected()
    );
    Ok(())
}

/// Set-based seed: hosts and guests (the registered ones first), listings in 50 cities,
/// reservations that never overlap, a payment record per paid reservation, a thread about each
/// of the first confirmed reservations with ten messages each; then ANALYZE.
async fn seed(pool: &PgPool) -> anyhow::Result<()> {
    step(pool, "hosts and guests", &format!(
        "INSERT INTO auth.users (email, password_hash, fullname)
         SELECT format('host%s@bench.haven', lpad(g::text, 3, '0')), '!', format('Bench Host %s', g)
           FROM generate_series(1, {HOSTS} - 1) g
         UNION ALL
         SELECT format('guest%s@bench.haven', lpad(g::text, 3, '0')), '!', format('Bench Guest %s', g)
           FROM generate_series(1, {GUESTS} - 1) g")).await?;
    step(pool, "listings", &format!(
        "WITH hosts AS (SELECT array_agg(id ORDER BY email) AS ids FROM auth.users WHERE email LIKE 'host%@bench.haven'),
              cities AS (SELECT ARRAY['Lisbon','Barcelona','Paris','Rome','Berlin','Amsterdam','Prague','Vienna',
                  'Madrid','Porto','Budapest','Florence','Seville','Munich','Dublin','Athens','Krakow','Milan',
                  'Copenhagen','Stockholm','Oslo','Helsinki','Brussels','Zurich','Geneva','Lyon','Nice','Marseille',
                  'Valencia','Bologna','Naples','Venice','Salzburg','Ljubljana','Zagreb','Split','Dubrovnik',
                  'Tallinn','Riga','Vilnius','Warsaw','Gdansk','Bratislava','Bucharest','Sofia','Belgrade',
                  'Edinburgh','London','Bristol','Cork'] AS names)
         INSERT INTO catalog.listings (host_id, owner_id, title, description, address, city, country,
             property_type, approval_type, price_per_night, cleaning_fee, currency, max_guests, is_published, created_at)
         SELECT h.ids[1 + (g - 1) % {HOSTS}], h.ids[1 + (g - 1) % {HOSTS}],
             format('Bench stay %s in %s', g, c.names[1 + g % 50]),
             format('A comfortable bench stay number %s, close to everything.', g), format('%s Bench Street', g),
             c.names[1 + g % 50], 'EU', (ARRAY['apartment','house','villa','room'])[1 + g % 4],
             CASE WHEN g % 4 = 0 THEN 'manual' ELSE 'instant' END, 4000 + (g * 104729) % 36001, 1000, 'EUR',
             1 + (g * 31) % 8, g % 20 <> 0, now() - make_interval(mins => g)
           FROM generate_series(1, {LISTINGS}) g, hosts h, cities c")).await?;
    step(pool, "reservations", &format!(
        "WITH guests AS (SELECT array_agg(id ORDER BY email) AS ids FROM auth.users WHERE email LIKE 'guest%@bench.haven'),
              ls AS (SELECT id, host_id, approval_type, price_per_night, row_number() OVER (ORDER BY id) AS n FROM catalog.listings)
         INSERT INTO booking.reservations (listing_id, guest_id, host_id, approval_type, booking_status,
             payment_confirmation, check_in, check_out, guest_count, currency, total_price, price_breakdown,
             booking_policies_snapshot, cancellation_policy_snapshot, owner_id, created_at)
         SELECT l.id, gs.ids[1 + (l.n * 7 + i * 13) % {GUESTS}], l.host_id, l.approval_type,
                CASE WHEN i = 9 THEN 'cancelled' ELSE 'confirmed' END,
                CASE WHEN i = 9 THEN 'canceled' ELSE 'paid' END,
                current_date + 30 * i + 1, current_date + 30 * i + 4, 1, 'EUR', l.price_per_night * 3,
                '{{}}', '{{}}', '{{}}', gs.ids[1 + (l.n * 7 + i * 13) % {GUESTS}], now() - make_interval(mins => (l.n * 10 + i)::int)
           FROM ls l CROSS JOIN generate_series(0, {STAYS_PER_LISTING} - 1) i CROSS JOIN guests gs")).await?;
    step(pool, "payment records", "INSERT INTO booking.payment_records (reservation_id, payment_intent_id,
             currency, amount_paid, payment_status, owner_id)
         SELECT id, 'pi_bench_' || id, 'EUR', total_price, 'paid', guest_id FROM booking.reservations
          WHERE payment_confirmation = 'paid'").await?;
    let messages: i64 = std::env::var("SEARCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(MESSAGES);
    let threads = (messages / MESSAGES_PER_THREAD).max(1);
    step(pool, "message threads", &format!(
        "INSERT INTO messaging.message_threads (guest_id, host_id, listing_id, reservation_id,
             message_count, last_message_at, owner_id, created_at)
         SELECT r.guest_id, r.host_id, r.listing_id, r.id, {MESSAGES_PER_THREAD},
                now() - make_interval(mins => (n * {MESSAGES_PER_THREAD})::int), r.guest_id,
                now() - make_interval(mins => (n * {MESSAGES_PER_THREAD} + {MESSAGES_PER_THREAD})::int)
           FROM (SELECT r.*, row_number() OVER (ORDER BY r.id) AS n FROM booking.reservations r
                  WHERE r.booking_status = 'confirmed') r
          WHERE n <= {threads}")).await?;
    // Five words a message from forty (one word matches about one message in eight); the last two
    // of every thread are unread; one message in 500 is moderated, one in 700 deleted.
    step(pool, "messages", &format!(
        "WITH words AS (SELECT ARRAY['parking','wifi','checkin','checkout','key','code','late','early',
                  'towels','breakfast','pool','garden','heating','noise','refund','cancel','deposit',
                  'airport','taxi','train','beach','kitchen','laundry','pets','baby','crib','balcony',
                  'view','quiet','clean','thanks','question','door','lockbox','address','directions',
                  'luggage','shower','coffee','bikes'] AS w),
              ts AS (SELECT t.*, row_number() OVER (ORDER BY t.id) AS n FROM messaging.message_threads t)
         INSERT INTO messaging.messages (thread_id, sender_id, recipient_id, content, message_type,
             sent_at, is_read, is_moderated, is_active, owner_id, created_at)
         SELECT t.id, CASE WHEN i % 2 = 0 THEN t.guest_id ELSE t.host_id END,
                CASE WHEN i % 2 = 0 THEN t.host_id ELSE t.guest_id END,
                format('Hello, about the %s and the %s: %s %s, %s?', w.w[1 + (k * 7) % 40],
                    w.w[1 + (k * 13) % 40], w.w[1 + (k * 17) % 40], w.w[1 + (k * 29) % 40],
                    w.w[1 + (k * 31) % 40]),
                'text', t.last_message_at - make_interval(mins => ({MESSAGES_PER_THREAD} - 1 - i)::int),
                i < {MESSAGES_PER_THREAD} - 2, k % 500 = 0, k % 700 <> 0,
                CASE WHEN i % 2 = 0 THEN t.guest_id ELSE t.host_id END,
                t.last_message_at - make_interval(mins => ({MESSAGES_PER_THREAD} - 1 - i)::int)
           FROM ts t CROSS JOIN generate_series(0, {MESSAGES_PER_THREAD} - 1) i CROSS JOIN words w
          CROSS JOIN LATERAL (SELECT (t.n * {MESSAGES_PER_THREAD} + i) * 2654435761 % 1000003 AS k) h")).await?;
    let t = Instant::now();
    sqlx::query("ANALYZE").execute(pool).await?;
    println!("  {:<40} {:>7.2} s", "ANALYZE", t.elapsed().as_secs_f64());
    Ok(())
}

/// Runs each case once more through the registry on a pool with auto_explain on, and prints the
/// plans the server log received.
async fn explain(
    options: &PgConnectOptions,
    config: &Config,
    cluster: Option<&PrivateCluster>,
    cases: &[Case],
) -> anyhow::Result<()> {
    let Some(log) = cluster.map(PrivateCluster::log_file) else {
        println!("  (DATABASE_URL is set: the server log is not ours to read; plans not shown)");
        return Ok(());
    };
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;
                     SET auto_explain.log_analyze = on; SET auto_explain.log_format = text;",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await?;
    let state = AppState::with_pool(config.clone(), pool.clone(), None).await?;
    for case in cases {
        let principal = match case.who {
            Some("guest") => Some(state.principal_for("guest000@bench.haven").await?),
            Some("host") => Some(state.principal_for("host000@bench.haven").await?),
            Some(_) => Some(state.principal_for("admin@bench.haven").await?),
            None => None,
        };
        let (path, query) = case.path.split_once('?').unwrap_or((&case.path, ""));
        let mut parts: Vec<&str> = path.trim_start_matches("/bff-api/v1/").split('/').collect();
        let verb = parts.pop().unwrap_or("list");
        let mut args = case.body.as_object().cloned().unwrap_or_default();
        args.insert("indexName".into(), json!(parts.join("/")));
        for (k, v) in form_urlencoded::parse(query.as_bytes()) {
            let v: Value = v
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or(Value::String(v.into_owned()));
            args.insert(k.into_owned(), v);
        }
        let op = if verb == "count" {
            "countIndex"
        } else {
            "searchIndex"
        };
        let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        state
            .call(op, principal, Value::Object(args))
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", case.label))?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = std::fs::read(&log)?;
        let text = String::from_utf8_lossy(&text[(offset as usize).min(text.len())..]).into_owned();
        println!("\n-- {}", case.label);
        for chunk in text
            .split("LOG:  duration: ")
            .filter(|c| c.contains(" d WHERE true"))
        {
            let plan: Vec<&str> = chunk
                .lines()
                .skip_while(|l| !l.contains("(cost="))
                .take_while(|l| l.starts_with('\t') || l.starts_with(' ') || l.contains("(cost="))
                .collect();
            for line in plan {
                println!("  {}", line.trim_end());
            }
        }
    }
    pool.close().await;
    Ok(())
}
