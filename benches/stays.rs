//! Stays benchmark: seeds 10,000 listings with calendars and 100,000 reservations, then measures
//! over MCP (real router, real HTTP) a trivial public read as the baseline, the guest search
//! `listListings` (city + dates + guests) and `createReservation` under 32 concurrent clients, and
//! prints the search's plan as PostgreSQL executed it (auto_explain).
//!
//! Run with `cargo bench --bench stays`. Uses `DATABASE_URL` when set, otherwise a private cluster
//! under `target/bench-pg`. Numbers are printed with ratios against the baseline measured in the
//! same run; nothing here asserts a timing.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use chrono::{Days, NaiveDate, Utc};
use futures::stream::{self, StreamExt};
use haven::app::AppState;
use haven::config::Config;
use haven::db::PrivateCluster;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::Executor;
use uuid::Uuid;

mod common;
use common::seed::{popular_cities, seed};
use common::{ms, percentile, sorted, Database, Server};

/// Guests, registered and logged in through the real API.
const GUESTS: usize = 200;
/// Sequential calls per read measurement.
const READS: usize = 500;
/// Bookings attempted in the write measurement.
const BOOKINGS: usize = 1_000;
/// Concurrent booking clients.
const CLIENTS: usize = 32;
/// Every `CONFLICT_EVERY`-th booking repeats the previous one's listing and dates (expected 409).
const CONFLICT_EVERY: usize = 20;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_as_bench("stays") {
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

/// A guest of the benchmark.
struct Guest {
    email: String,
    token: String,
}

async fn run(database: &Database) -> anyhow::Result<()> {
    let options = database.options();
    let config = Config::loopback(20);
    let server = Server::start(&config, options.clone(), CLIENTS).await?;
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

async fn bench(
    server: &Server,
    options: &PgConnectOptions,
    config: &Config,
    cluster: Option<&PrivateCluster>,
) -> anyhow::Result<()> {
    println!("\n== seed");
    let t = Instant::now();
    let guests = register_guests(server).await?;
    println!(
        "  {GUESTS} guests registered + logged in over REST  {:>7.2} s",
        t.elapsed().as_secs_f64()
    );
    seed(&server.pool).await?;

    let tools = tool_names(server, &guests[0].token).await?;
    let baseline_tool = ["listListingAmenities", "listUserGroups"]
        .into_iter()
        .find(|t| tools.iter().any(|n| n == t))
        .context("no trivial public read to use as the baseline")?;

    println!("\n== measure (over MCP, POST /mcp tools/call)");
    let token = guests[0].token.clone();
    let baseline = sequential(server, &token, READS, |_| {
        (baseline_tool, json!({ "pageRowCount": 20 }))
    })
    .await?;
    let mut rows = vec![Row::new(
        format!("baseline {baseline_tool}"),
        &baseline.latencies,
        None,
        format!("{} errors", baseline.errors),
    )];
    let base_p50 = percentile(&sorted(&baseline.latencies), 50.0);

    let search = if tools.iter().any(|n| n == "listListings") {
        let cities = popular_cities(&server.pool).await?;
        let today = Utc::now().date_naive();
        let mut rng = StdRng::seed_from_u64(7);
        let queries: Vec<Value> = (0..READS + 20)
            .map(|_| {
                let city = &cities[rng.gen_range(0..cities.len())];
                let check_in = today + Days::new(rng.gen_range(1..360));
                json!({
                    "city": city,
                    "checkIn": check_in,
                    "checkOut": check_in + Days::new(3),
                    "guestCount": 2,
                    "pageRowCount": 20,
                })
            })
            .collect();
        let measured = sequential(server, &token, READS, |i| {
            ("listListings", queries[i].clone())
        })
        .await?;
        rows.push(Row::new(
            "listListings city+dates+guests".into(),
            &measured.latencies,
            Some(base_p50),
            format!(
                "{} errors, {:.1} rows/page avg",
                measured.errors,
                measured.rows as f64 / READS as f64
            ),
        ));
        Some(queries[0].clone())
    } else {
        println!("  listListings is not in the registry yet: search not measured");
        None
    };

    let booking = bookings(server, &guests).await?;
    rows.push(Row::new(
        format!("createReservation x{CLIENTS} clients"),
        &booking.latencies,
        Some(base_p50),
        format!(
            "{:.0} req/s; created {}, 409 conflict {}, other errors {}",
            BOOKINGS as f64 / booking.wall.as_secs_f64(),
            booking.created,
            booking.conflicts,
            booking.errors
        ),
    ));
    print_table(&rows);
    if let Some(first) = &booking.first_error {
        println!("  first unexpected booking error: {first}");
    }

    if let Some(args) = search {
        println!("\n== plan of one listListings search (auto_explain, EXPLAIN ANALYZE)");
        explain_search(options, config, cluster, &guests[0].email, args).await?;
    }
    Ok(())
}

/// Registers and logs in the guests over REST, 8 at a time.
async fn register_guests(server: &Server) -> anyhow::Result<Vec<Guest>> {
    stream::iter(0..GUESTS)
        .map(|i| async move {
            let email = format!("guest{i}@bench.haven");
            let token = server.register(&email, &format!("Bench Guest {i}")).await?;
            Ok(Guest { email, token })
        })
        .buffered(8)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// The answer of one `tools/call`.
struct Called {
    elapsed: Duration,
    is_error: bool,
    payload: Value,
}

/// One JSON-RPC `tools/call` to `/mcp` (stateless, protocol 2025-06-18).
async fn call_tool(
    server: &Server,
    token: &str,
    name: &str,
    args: Value,
) -> anyhow::Result<Called> {
    let started = Instant::now();
    let resp = server
        .http
        .post(format!("{}/mcp", server.base))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(token)
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": { "name": name, "arguments": args } }))
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    let elapsed = started.elapsed();
    let body: Value =
        serde_json::from_str(&text).with_context(|| format!("MCP answered {status}: {text}"))?;
    let result = &body["result"];
    if !result.is_object() {
        bail!("tools/call {name} gave no result: {body}");
    }
    let is_error = result["isError"].as_bool().unwrap_or(false);
    let payload = if is_error {
        result["content"][0]["text"].clone()
    } else {
        result["structuredContent"].clone()
    };
    Ok(Called {
        elapsed,
        is_error,
        payload,
    })
}

/// The tool names `tools/list` gives the caller with `?tools=all` (its role's full list, not the
/// default core set, which leaves the baseline reads out).
async fn tool_names(server: &Server, token: &str) -> anyhow::Result<Vec<String>> {
    let body: Value = server
        .http
        .post(format!("{}/mcp?tools=all", server.base))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(token)
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} }))
        .send()
        .await?
        .json()
        .await?;
    Ok(body["result"]["tools"]
        .as_array()
        .context("tools/list gave no tools")?
        .iter()
        .filter_map(|t| t["name"].as_str().map(str::to_string))
        .collect())
}

/// Latencies of a sequential read run.
struct Reads {
    latencies: Vec<Duration>,
    errors: usize,
    rows: usize,
}

/// `n` sequential calls (after 20 unmeasured warm-up calls); `args(i)` gives call `i`'s tool and
/// arguments (warm-up calls use indexes `n..n+20`).
async fn sequential(
    server: &Server,
    token: &str,
    n: usize,
    args: impl Fn(usize) -> (&'static str, Value),
) -> anyhow::Result<Reads> {
    for i in n..n + 20 {
        let (name, a) = args(i);
        let c = call_tool(server, token, name, a).await?;
        if c.is_error {
            bail!("{name} failed: {}", c.payload);
        }
    }
    let mut out = Reads {
        latencies: Vec::with_capacity(n),
        errors: 0,
        rows: 0,
    };
    for i in 0..n {
        let (name, a) = args(i);
        let c = call_tool(server, token, name, a).await?;
        out.latencies.push(c.elapsed);
        if c.is_error {
            out.errors += 1;
        } else if let Some(list) = c.payload.as_object().and_then(|o| {
            o.iter()
                .find(|(k, _)| *k != "paging")
                .and_then(|(_, v)| v.as_array())
        }) {
            out.rows += list.len();
        }
    }
    Ok(out)
}

/// The outcome of the booking run.
struct Bookings {
    latencies: Vec<Duration>,
    wall: Duration,
    created: usize,
    conflicts: usize,
    errors: usize,
    first_error: Option<String>,
}

/// `BOOKINGS` createReservation calls from `CLIENTS` concurrent clients over free dates: each
/// guest books five distinct (listing, 30-day slot) pairs in the free second half of the slot;
/// every `CONFLICT_EVERY`-th booking repeats the previous one's stay, so one of the two gets 409.
async fn bookings(server: &Server, guests: &[Guest]) -> anyhow::Result<Bookings> {
    let listings: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM catalog.listings WHERE is_active AND is_published AND min_stay <= 3
          ORDER BY id LIMIT $1",
    )
    .bind(BOOKINGS as i64)
    .fetch_all(&server.pool)
    .await?;
    let today = Utc::now().date_naive();
    let plan: Vec<(usize, Value)> = (0..BOOKINGS)
        .map(|j| {
            let k = if j % CONFLICT_EVERY == CONFLICT_EVERY - 1 {
                j - 1
            } else {
                j
            };
            let listing = listings[k % listings.len()];
            let slot = (k / listings.len()) as u64 % 10;
            let check_in: NaiveDate = today + Days::new(30 * slot + 16 + (k as u64 % 3) * 3);
            (
                j / 5 % guests.len(),
                json!({ "listingId": listing, "checkIn": check_in,
                        "checkOut": check_in + Days::new(3), "guestCount": 1 }),
            )
        })
        .collect();
    let plan = Arc::new(plan);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers = (0..CLIENTS).map(|_| {
        let plan = plan.clone();
        let next = next.clone();
        async move {
            let mut mine = Vec::new();
            loop {
                let j = next.fetch_add(1, Ordering::Relaxed);
                let Some((guest, args)) = plan.get(j) else {
                    break;
                };
                let c = call_tool(
                    server,
                    &guests[*guest].token,
                    "createReservation",
                    args.clone(),
                )
                .await;
                mine.push(c);
            }
            mine
        }
    });
    let results: Vec<anyhow::Result<Called>> = futures::future::join_all(workers)
        .await
        .into_iter()
        .flatten()
        .collect();
    let wall = started.elapsed();
    let mut out = Bookings {
        latencies: Vec::with_capacity(BOOKINGS),
        wall,
        created: 0,
        conflicts: 0,
        errors: 0,
        first_error: None,
    };
    for c in results {
        let c = c?;
        out.latencies.push(c.elapsed);
        if !c.is_error {
            out.created += 1;
        } else if c
            .payload
            .as_str()
            .is_some_and(|m| m.contains("no longer available"))
        {
            out.conflicts += 1;
        } else {
            out.errors += 1;
            out.first_error.get_or_insert_with(|| c.payload.to_string());
        }
    }
    Ok(out)
}

/// Runs one search in-process on a short-lived pool whose sessions load auto_explain (analyze,
/// buffers, text), then prints the search statement's plan from the cluster's log.
async fn explain_search(
    options: &PgConnectOptions,
    config: &Config,
    cluster: Option<&PrivateCluster>,
    email: &str,
    args: Value,
) -> anyhow::Result<()> {
    let Some(log) = cluster.map(PrivateCluster::log_file) else {
        println!("  (DATABASE_URL is set: the server log is not ours to read; plan not shown)");
        return Ok(());
    };
    let offset = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(
                    "LOAD 'auto_explain';
                     SET auto_explain.log_min_duration = 0;
                     SET auto_explain.log_analyze = on;
                     SET auto_explain.log_buffers = on;
                     SET auto_explain.log_format = text;",
                )
                .await?;
                Ok(())
            })
        })
        .connect_with(options.clone())
        .await?;
    let state = AppState::with_pool(config.clone(), pool.clone(), None).await?;
    let principal = state.principal_for(email).await?;
    println!("  arguments: {args}");
    let answer = state
        .call("listListings", Some(principal), args)
        .await
        .map_err(|e| anyhow::anyhow!("listListings: {e}"))?;
    pool.close().await;
    let rows = answer["listings"].as_array().map_or(0, Vec::len);
    println!("  rows returned: {rows}");
    // The server flushes its log asynchronously to the pg_ctl log file.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let text = std::fs::read(&log).with_context(|| format!("reading {}", log.display()))?;
    let text = String::from_utf8_lossy(&text[(offset as usize).min(text.len())..]).into_owned();
    let plan = text
        .split("LOG:  duration: ")
        .filter(|chunk| chunk.contains("catalog.listings") && chunk.contains("listing_holds"))
        .max_by_key(|chunk| chunk.len());
    match plan {
        Some(chunk) => {
            // The chunk ends where the next log line (with its timestamp prefix) begins. Of the
            // query text only the WHERE clause is kept; the plan starts at the first `(cost=` line.
            let lines: Vec<&str> = chunk
                .lines()
                .enumerate()
                .take_while(|(i, l)| *i == 0 || l.starts_with('\t') || l.starts_with(' '))
                .map(|(_, l)| l)
                .collect();
            let plan_start = lines
                .iter()
                .position(|l| l.contains("(cost="))
                .unwrap_or(lines.len());
            let mut body = format!("  | duration: {}\n", lines[0]);
            for l in &lines[1..plan_start] {
                if l.contains("WHERE") && l.contains("l.city") {
                    body.push_str(&format!("  | Query WHERE: {}\n", l.trim()));
                }
            }
            for l in &lines[plan_start..] {
                body.push_str(&format!("  | {}\n", l.strip_prefix('\t').unwrap_or(l)));
            }
            print!("{body}");
            let index_nodes: Vec<&str> = body
                .lines()
                .filter(|l| l.contains("Index") || l.contains("Bitmap"))
                .map(|l| l.trim_start_matches("  | ").trim())
                .collect();
            println!(
                "  uses an index: {} ({} index/bitmap nodes)",
                if index_nodes.is_empty() { "NO" } else { "yes" },
                index_nodes.len()
            );
            let seq: Vec<&str> = body
                .lines()
                .filter(|l| l.contains("Seq Scan"))
                .map(|l| l.trim_start_matches("  | ").trim())
                .collect();
            for s in seq {
                println!("  sequential scan (seed leaves amenities, texts, reviews empty): {s}");
            }
        }
        None => println!(
            "  no explained search statement found in {} (is auto_explain installed?)",
            log.display()
        ),
    }
    Ok(())
}

/// One line of the result table.
struct Row {
    label: String,
    n: usize,
    p50: Duration,
    p99: Duration,
    ratio: Option<f64>,
    note: String,
}

impl Row {
    fn new(label: String, latencies: &[Duration], baseline: Option<Duration>, note: String) -> Row {
        let s = sorted(latencies);
        let p50 = percentile(&s, 50.0);
        Row {
            label,
            n: s.len(),
            p50,
            p99: percentile(&s, 99.0),
            ratio: baseline.map(|b| p50.as_secs_f64() / b.as_secs_f64().max(1e-9)),
            note,
        }
    }
}

fn print_table(rows: &[Row]) {
    println!(
        "\n  {:<36} {:>5} {:>10} {:>10} {:>12}  notes",
        "measurement", "n", "p50", "p99", "p50/baseline"
    );
    for r in rows {
        println!(
            "  {:<36} {:>5} {:>10} {:>10} {:>12}  {}",
            r.label,
            r.n,
            ms(r.p50),
            ms(r.p99),
            r.ratio.map_or("1.00 (base)".into(), |x| format!("{x:.2}x")),
            r.note
        );
    }
}
