//! Floors benchmark (issue 15): Haven measured against the two floors a Rust server on this stack
//! cannot beat, in one run, interleaved, at 32 concurrent clients:
//! - a bare axum handler and a bare rmcp tool, built here (no Haven code on their path), running
//!   Haven's very `getListing` SELECT through the same pool;
//! - Haven MCP `tools/call getListing` (API key, and anonymous) and REST `GET …/listings/{id}`;
//! - Haven `listListings` city + dates + guests, a page of the BFF `ListingDetailView` for a city
//!   (REST), `createReservation`, `tools/list` per role;
//! - a `haven serve` child process's RSS idle and under load.
//!
//! Every case runs `ROUNDS` times for `SECONDS` s each, cases interleaved round by round, so a
//! noisy neighbour hits all of them alike; the table prints medians over rounds and the ratios to
//! the floors. The database is a durable private cluster (fsync on, `target/bench-pg-durable`) or
//! `DATABASE_URL`. Run with `cargo bench --bench floors`; `HAVEN_BENCH_SECONDS` and
//! `HAVEN_BENCH_ROUNDS` override the defaults (3 s, 3 rounds); `HAVEN_BENCH_ONLY=<part of a case
//! name>` runs just the matching cases (for a profiler) and prints no ratios.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::Router;
use chrono::{Days, Utc};
use haven::config::Config;
use rand::{Rng, SeedableRng};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

// This benchmark uses part of the shared setup.
#[allow(dead_code)]
mod common;
use common::seed::{popular_cities, seed};
use common::{ms, percentile, sorted, Database, Server};

/// Concurrent clients of every case.
const CLIENTS: usize = 32;
/// The booking case, which starts every round from the seeded calendar ([`fresh_dates`]).
const BOOKING_CASE: &str = "Haven createReservation";
/// Guests holding API keys for the booking case (each may hold 5 unpaid reservations).
const GUESTS: usize = 1000;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_as_bench("floors") {
        return Ok(());
    }
    let database = Database::create_durable().await?;
    let result = run(&database).await;
    database.drop().await?;
    result
}

/// The getListing SELECT wrapped so the floors answer its row as JSON without decoding it into
/// Haven's types: `row_to_json` on the very statement Haven runs.
fn floor_sql() -> String {
    format!(
        "SELECT row_to_json(x)::text FROM ({}) x",
        haven_tools::catalog::listings::get_listing_statement()
    )
}

/// What a floor needs: the pool and the statement.
#[derive(Clone)]
struct Floor {
    pool: PgPool,
    sql: Arc<String>,
    caller: Uuid,
}

impl Floor {
    async fn listing(&self, id: Uuid) -> Option<Value> {
        let text: Option<String> = sqlx::query_scalar(&self.sql)
            .bind(self.caller)
            .bind(false)
            .bind(Vec::<String>::new())
            .bind(self.caller)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .ok()
            .flatten();
        text.and_then(|t| serde_json::from_str(&t).ok())
    }
}

async fn axum_listing(State(floor): State<Floor>, Path(id): Path<Uuid>) -> axum::Json<Value> {
    axum::Json(json!({ "listing": floor.listing(id).await }))
}

/// The bare rmcp server: one tool, the same SELECT.
#[derive(Clone)]
struct FloorMcp {
    floor: Floor,
    tool: Tool,
}

impl ServerHandler for FloorMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(vec![self.tool.clone()]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _ctx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let id = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("listingId"))
            .and_then(Value::as_str)
            .and_then(|s| Uuid::parse_str(s).ok())
            .ok_or_else(|| McpError::invalid_params("listingId", None))?;
        let listing = self.floor.listing(id).await;
        Ok(CallToolResult::structured(json!({ "listing": listing })).into())
    }
}

/// Serves the two floors on loopback ports; returns (axum base, rmcp base).
async fn start_floors(floor: Floor, stop: CancellationToken) -> anyhow::Result<(String, String)> {
    let axum_app = Router::new()
        .route("/listings/{id}", get(axum_listing))
        .with_state(floor.clone());
    let l1 = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let axum_base = format!("http://{}", l1.local_addr()?);
    let s1 = stop.clone();
    tokio::spawn(async move {
        axum::serve(l1, axum_app)
            .with_graceful_shutdown(s1.cancelled_owned())
            .await
    });
    let schema = json!({ "type": "object", "properties": { "listingId": { "type": "string" } } });
    let tool = Tool::new(
        "getListing",
        "Reads one listing",
        Arc::new(schema.as_object().cloned().unwrap_or_default()),
    );
    let server = FloorMcp { floor, tool };
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        .with_cancellation_token(stop.clone());
    let service = StreamableHttpService::new(
        move || Ok(server.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    let mcp_app = Router::new().route_service("/mcp", service);
    let l2 = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rmcp_base = format!("http://{}", l2.local_addr()?);
    let s2 = stop.clone();
    tokio::spawn(async move {
        axum::serve(l2, mcp_app)
            .with_graceful_shutdown(s2.cancelled_owned())
            .await
    });
    Ok((axum_base, rmcp_base))
}

/// One case's result in one round.
#[derive(Debug, Clone, Default)]
struct Sample {
    rps: f64,
    /// Postgres CPU per request, in ms.
    pg_ms: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
    count: usize,
}

/// Numbers every call of the whole run, so no two calls (warm-up, rounds) share an `i`: a
/// booking case that derived its dates from a per-load counter repeated the warm-up's bookings
/// and measured conflicts.
static CALLS: AtomicUsize = AtomicUsize::new(0);

/// `CLIENTS` closed-loop clients calling `call(i)` for `seconds`; `call` answers whether the
/// request succeeded.
async fn load<F, Fut>(seconds: f64, call: F) -> Sample
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let counter = &CALLS;
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut handles = Vec::new();
    for _ in 0..CLIENTS {
        let call = call.clone();
        handles.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0;
            while Instant::now() < deadline {
                let i = counter.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let ok = call(i).await;
                latencies.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            (latencies, errors)
        }));
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        if let Ok((l, e)) = h.await {
            all.extend(l);
            errors += e;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let s = sorted(&all);
    Sample {
        rps: all.len() as f64 / wall,
        pg_ms: 0.0,
        p50: percentile(&s, 50.0),
        p99: percentile(&s, 99.0),
        errors,
        count: all.len(),
    }
}

/// A JSON-RPC `tools/call` or `tools/list` body.
fn rpc(method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params })
}

/// The first failure of the run, printed once (so a broken case shows why).
static FIRST_FAILURE: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Notes a failure's answer for [`FIRST_FAILURE`]; always false.
fn failed(what: String) -> bool {
    if FIRST_FAILURE.set(what.clone()).is_ok() {
        println!("  first failure: {}", &what[..what.len().min(400)]);
    }
    false
}

/// The part of a JSON-RPC answer the load clients check. Everything else is skipped unparsed:
/// the clients share the machine with the servers, and building a full JSON tree of every answer
/// (20 listings are ~180 KB with the text copy) took CPU from the server under test.
#[derive(serde::Deserialize)]
struct Answer {
    result: Option<AnswerResult>,
}

#[derive(serde::Deserialize)]
struct AnswerResult {
    #[serde(rename = "isError", default)]
    is_error: bool,
}

/// POSTs an MCP request; true when it answered a result that is not an error.
async fn mcp(http: &reqwest::Client, url: &str, token: Option<&str>, body: &Value) -> bool {
    let mut req = http
        .post(url)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let bytes = match req.send().await {
        Ok(r) => match r.bytes().await {
            Ok(b) => b,
            Err(e) => return failed(e.to_string()),
        },
        Err(e) => return failed(e.to_string()),
    };
    match serde_json::from_slice::<Answer>(&bytes) {
        Ok(Answer {
            result: Some(AnswerResult { is_error: false }),
        }) => true,
        _ => failed(format!(
            "{} {}",
            body["params"]["name"],
            String::from_utf8_lossy(&bytes)
        )),
    }
}

/// GETs `url`; true on a 2xx.
async fn get_ok(http: &reqwest::Client, url: &str, token: Option<&str>) -> bool {
    send_ok(http.get(url), token).await
}

/// POSTs `body` as JSON to `url`; true on a 2xx.
async fn post_ok(http: &reqwest::Client, url: &str, token: Option<&str>, body: &Value) -> bool {
    send_ok(http.post(url).json(body), token).await
}

/// Sends `req` (with `token` as a bearer credential), reads the whole answer; true on a 2xx.
async fn send_ok(mut req: reqwest::RequestBuilder, token: Option<&str>) -> bool {
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    match req.send().await {
        Ok(r) => {
            let ok = r.status().is_success();
            let _ = r.bytes().await;
            ok
        }
        Err(_) => false,
    }
}

/// Inserts `n` users `guest<i>@bench.haven` (and one admin) with API keys by SQL; returns the
/// guests' keys and the admin's.
async fn users_with_keys(pool: &PgPool, n: usize) -> anyhow::Result<(Vec<String>, String)> {
    let mut keys = Vec::new();
    for i in 0..=n {
        let (email, role) = if i == n {
            ("admin@bench.haven".to_string(), "admin")
        } else {
            (format!("guest{i}@bench.haven"), "user")
        };
        let id: Uuid = sqlx::query_scalar(
            "INSERT INTO auth.users (email, password_hash, fullname, role_id, email_verified)
             VALUES ($1, '!', $1, $2, true) RETURNING id",
        )
        .bind(&email)
        .bind(role)
        .fetch_one(pool)
        .await?;
        let key = format!("sk_haven_bench{}", Uuid::new_v4().simple());
        sqlx::query(
            "INSERT INTO platformadmin.api_keys (key_hash, key_prefix, created_by, description)
             VALUES ($1, $2, $3, 'bench')",
        )
        .bind(haven_tools::auth::tokens::hash_api_key(&key))
        .bind(&key[..12])
        .bind(id)
        .execute(pool)
        .await?;
        keys.push(key);
    }
    let admin = keys.pop().context("no admin key")?;
    Ok((keys, admin))
}

/// What every case's calls use.
struct Env {
    http: reqwest::Client,
    ids: Vec<Uuid>,
    base: String,
    axum_base: String,
    rmcp_base: String,
    key: String,
    guest_keys: Vec<String>,
    admin_key: String,
    cities: Vec<String>,
    today: chrono::NaiveDate,
}

impl Env {
    /// The `i`-th listing id, in turn.
    fn id(&self, i: usize) -> Uuid {
        self.ids[i % self.ids.len()]
    }
    /// A `tools/call getListing` of the `i`-th listing.
    fn get_listing(&self, i: usize) -> Value {
        rpc(
            "tools/call",
            json!({ "name": "getListing", "arguments": { "listingId": self.id(i) } }),
        )
    }
}

/// One case: call `i` with the environment; answers whether it succeeded.
type Call = Arc<dyn Fn(usize, Arc<Env>) -> futures::future::BoxFuture<'static, bool> + Send + Sync>;

/// CPU time (user + system) of every backend of the private cluster whose postmaster is
/// `postmaster`, in seconds; 0 without one (`DATABASE_URL`). Read from `/proc`, so it includes
/// only this cluster's processes, not other users' clusters on the machine.
fn postgres_cpu(postmaster: Option<u32>) -> f64 {
    let Some(root) = postmaster else {
        return 0.0;
    };
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    for entry in dir.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the command name (which is in parentheses and may hold spaces).
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ppid = fields.get(1).and_then(|f| f.parse::<u32>().ok());
        if pid != root && ppid != Some(root) {
            continue;
        }
        let utime: f64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0.0);
        let stime: f64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0.0);
        total += (utime + stime) / ticks;
    }
    total
}

/// The postmaster's pid of the private cluster `database` lives in, if any.
fn postmaster_of(database: &Database) -> Option<u32> {
    database.cluster.as_ref()?.cluster().postmaster()
}

/// The resident set of process `pid`, in MB.
fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

async fn run(database: &Database) -> anyhow::Result<()> {
    let seconds: f64 = std::env::var("HAVEN_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let rounds: usize = std::env::var("HAVEN_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    let options = database.options();
    let config = Config::loopback(20);
    let server = Server::start(&config, options.clone(), CLIENTS * 2).await?;
    let pool = server.pool.clone();
    let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&pool).await?;
    println!("fsync = {fsync}; {CLIENTS} clients; {rounds} rounds x {seconds} s per case");
    let (guest_keys, admin_key) = users_with_keys(&pool, GUESTS).await?;
    seed(&pool).await?;
    let seeded_at: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT now()").fetch_one(&pool).await?;
    let cities = popular_cities(&pool).await?;
    let listing_ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT id FROM catalog.listings WHERE is_published AND is_active ORDER BY id LIMIT 2000",
    )
    .fetch_all(&pool)
    .await?;
    let caller: Uuid =
        sqlx::query_scalar("SELECT id FROM auth.users WHERE email = 'guest0@bench.haven'")
            .fetch_one(&pool)
            .await?;
    let stop = CancellationToken::new();
    let floor = Floor {
        pool: pool.clone(),
        sql: Arc::new(floor_sql()),
        caller,
    };
    let (axum_base, rmcp_base) = start_floors(floor, stop.clone()).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS * 2)
        .timeout(Duration::from_secs(30))
        .build()?;
    let env = Arc::new(Env {
        http: http.clone(),
        ids: listing_ids,
        base: server.base.clone(),
        axum_base,
        rmcp_base,
        key: guest_keys[0].clone(),
        guest_keys,
        admin_key,
        cities: cities.clone(),
        today: Utc::now().date_naive(),
    });
    let mut cases: Vec<(&'static str, Call)> = Vec::new();
    cases.push((
        "floor: bare axum getListing",
        Arc::new(|i, e| {
            Box::pin(async move {
                get_ok(
                    &e.http,
                    &format!("{}/listings/{}", e.axum_base, e.id(i)),
                    None,
                )
                .await
            })
        }),
    ));
    cases.push((
        "floor: bare rmcp getListing",
        Arc::new(|i, e| {
            Box::pin(async move {
                mcp(
                    &e.http,
                    &format!("{}/mcp", e.rmcp_base),
                    None,
                    &e.get_listing(i),
                )
                .await
            })
        }),
    ));
    cases.push((
        "Haven MCP getListing (API key)",
        Arc::new(|i, e| {
            Box::pin(async move {
                mcp(
                    &e.http,
                    &format!("{}/mcp", e.base),
                    Some(&e.key),
                    &e.get_listing(i),
                )
                .await
            })
        }),
    ));
    cases.push((
        "Haven MCP getListing (anonymous)",
        Arc::new(|i, e| {
            Box::pin(async move {
                mcp(
                    &e.http,
                    &format!("{}/mcp?anonymous=true", e.base),
                    None,
                    &e.get_listing(i),
                )
                .await
            })
        }),
    ));
    cases.push((
        "Haven REST getListing (API key)",
        Arc::new(|i, e| {
            Box::pin(async move {
                let url = format!("{}/propertycatalog-api/v1/listings/{}", e.base, e.id(i));
                get_ok(&e.http, &url, Some(&e.key)).await
            })
        }),
    ));
    cases.push((
        "Haven listListings city+dates+guests",
        Arc::new(|i, e| {
            Box::pin(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(i as u64);
                let city = &e.cities[rng.gen_range(0..e.cities.len())];
                let check_in = e.today + Days::new(rng.gen_range(1..360));
                let body = rpc(
                    "tools/call",
                    json!({ "name": "listListings", "arguments": {
            "city": city, "checkIn": check_in, "checkOut": check_in + Days::new(3),
            "guestCount": 2, "pageRowCount": 20 } }),
                );
                mcp(&e.http, &format!("{}/mcp", e.base), Some(&e.key), &body).await
            })
        }),
    ));
    cases.push((
        "Haven BFF ListingDetailView city page (REST)",
        Arc::new(|i, e| {
            Box::pin(async move {
                let mut rng = rand::rngs::StdRng::seed_from_u64(2_000_000 + i as u64);
                let city = &e.cities[rng.gen_range(0..e.cities.len())];
                let url = format!("{}/bff-api/v1/ListingDetailView/list?limit=20", e.base);
                let body = json!({ "filters": { "city": city, "maxGuests": { "$gte": 2 } } });
                post_ok(&e.http, &url, Some(&e.key), &body).await
            })
        }),
    ));
    cases.push((
        "Haven tools/list anonymous",
        Arc::new(|_, e| {
            Box::pin(async move {
                mcp(
                    &e.http,
                    &format!("{}/mcp?anonymous=true", e.base),
                    None,
                    &rpc("tools/list", json!({})),
                )
                .await
            })
        }),
    ));
    cases.push((
        "Haven tools/list user",
        Arc::new(|_, e| {
            Box::pin(async move {
                mcp(
                    &e.http,
                    &format!("{}/mcp", e.base),
                    Some(&e.key),
                    &rpc("tools/list", json!({})),
                )
                .await
            })
        }),
    ));
    cases.push((
        "Haven tools/list admin",
        Arc::new(|_, e| {
            Box::pin(async move {
                mcp(
                    &e.http,
                    &format!("{}/mcp", e.base),
                    Some(&e.admin_key),
                    &rpc("tools/list", json!({})),
                )
                .await
            })
        }),
    ));
    cases.push((
        BOOKING_CASE,
        Arc::new(|i, e| {
            Box::pin(async move {
                // Guests in turn (each holds at most 5 unpaid), listings at random, 3 nights in one of
                // the seed's free windows (days 30k+15 … 30k+29, so the stay ends by day 30k+30): conflicts are rare, and count as errors.
                let mut rng = rand::rngs::StdRng::seed_from_u64(1_000_000 + i as u64);
                let listing = e.ids[rng.gen_range(0..e.ids.len())];
                let start = 30 * rng.gen_range(0..9u64) + 15 + rng.gen_range(0..12u64);
                let check_in = e.today + Days::new(start);
                let guest = &e.guest_keys[i % e.guest_keys.len()];
                let body = rpc(
                    "tools/call",
                    json!({ "name": "createReservation", "arguments": {
            "listingId": listing, "checkIn": check_in, "checkOut": check_in + Days::new(3),
            "guestCount": 1 } }),
                );
                mcp(&e.http, &format!("{}/mcp", e.base), Some(guest), &body).await
            })
        }),
    ));
    let postmaster = postmaster_of(database);
    println!(
        "Postgres: postmaster {postmaster:?}, its processes' CPU so far {:.1} s",
        postgres_cpu(postmaster)
    );
    let run = |call: &Call, seconds: f64| {
        let call = call.clone();
        let env = env.clone();
        async move {
            let before = postgres_cpu(postmaster);
            let mut sample = load(seconds, move |i| call(i, env.clone())).await;
            let used = postgres_cpu(postmaster) - before;
            sample.pg_ms = used * 1000.0 / sample.count.max(1) as f64;
            sample
        }
    };

    // Warm-up: every case for a second (plans cached, connections open). Each warm-up ends
    // before the next starts, so no warm-up load overlaps a measured case.
    for (name, call) in &cases {
        if *name == BOOKING_CASE {
            fresh_dates(&pool, seeded_at).await?;
        }
        run(call, seconds.min(1.0)).await;
    }
    // For profiling one case (say `perf record -p <pid>` while it runs): only the cases whose
    // name contains `HAVEN_BENCH_ONLY` run, and no table of ratios is printed.
    let only = std::env::var("HAVEN_BENCH_ONLY").ok();
    if only.is_some() {
        println!("HAVEN_BENCH_ONLY: bench pid {}", std::process::id());
    }
    let mut results: Vec<Vec<Sample>> = vec![Vec::new(); cases.len()];
    for round in 0..rounds {
        for (k, (name, call)) in cases.iter().enumerate() {
            if only.as_deref().is_some_and(|o| !name.contains(o)) {
                continue;
            }
            if *name == BOOKING_CASE {
                fresh_dates(&pool, seeded_at).await?;
            }
            let sample = run(call, seconds).await;
            println!(
                "  round {round} {name:<40} {:>8.0} req/s  p50 {}  p99 {}  pg {:.2} ms/req  errors {}/{}",
                sample.rps,
                ms(sample.p50),
                ms(sample.p99),
                sample.pg_ms,
                sample.errors,
                sample.count
            );
            results[k].push(sample);
        }
    }
    if only.is_some() {
        return Ok(());
    }
    let median = |k: usize| -> Sample {
        let mut v = results[k].clone();
        v.sort_by(|a, b| a.rps.total_cmp(&b.rps));
        v[v.len() / 2].clone()
    };
    println!("\n== medians over {rounds} rounds ({CLIENTS} clients)");
    println!(
        "  {:<40} {:>9} {:>10} {:>10} {:>8} {:>11} {:>7}  ratio",
        "case", "req/s", "p50", "p99", "p99/p50", "pg ms/req", "errors"
    );
    // A ratio is taken within each round (the two cases ran seconds apart, under the same load
    // from elsewhere), and the median of those is printed, beside the ratio of the medians.
    let ratio = |k: usize, base: usize, what: &str| -> String {
        let mut paired: Vec<f64> = results[k]
            .iter()
            .zip(&results[base])
            .map(|(a, b)| a.rps / b.rps.max(1e-9))
            .collect();
        paired.sort_by(f64::total_cmp);
        format!(
            "{:.2}x {what} (paired by round; {:.2}x of medians)",
            paired[paired.len() / 2],
            median(k).rps / median(base).rps.max(1e-9)
        )
    };
    for (k, (name, _)) in cases.iter().enumerate() {
        let m = median(k);
        let ratio = match k {
            2 | 3 => ratio(k, 1, "rmcp floor"),
            4 => ratio(k, 0, "axum floor"),
            5 => ratio(k, 2, "Haven MCP getListing"),
            6 => ratio(k, 4, "Haven REST getListing"),
            _ => String::new(),
        };
        println!(
            "  {name:<40} {:>9.0} {:>10} {:>10} {:>8.2} {:>11.2} {:>6.1}%  {ratio}",
            m.rps,
            ms(m.p50),
            ms(m.p99),
            m.p99.as_secs_f64() / m.p50.as_secs_f64().max(1e-9),
            m.pg_ms,
            100.0 * m.errors as f64 / m.count.max(1) as f64,
        );
    }

    // The city page alone, as Postgres runs it (the index the search's page step uses).
    let city = &cities[0];
    let plan: Vec<String> = sqlx::query_scalar(&format!(
        "EXPLAIN (ANALYZE, BUFFERS OFF, TIMING OFF) SELECT id FROM catalog.listings l
          WHERE l.is_active AND l.is_published AND catalog.fold_text(l.city) = catalog.fold_text('{city}')
          ORDER BY created_at DESC, id LIMIT 20"
    ))
    .fetch_all(&pool)
    .await
    .unwrap_or_default();
    if let Some(last) = plan.last() {
        println!("  city page index scan: {last}");
    }

    // RSS of a `haven serve` child process on the same database, idle and under load.
    let url = match &database.cluster {
        Some(attached) => attached.cluster().url(&database.name),
        None => {
            let mut url = reqwest::Url::parse(&std::env::var("DATABASE_URL")?)?;
            url.set_path(&format!("/{}", database.name));
            url.to_string()
        }
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_haven"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .context("spawning haven serve")?;
    let child_base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while !get_ok(&http, &format!("{child_base}/ready"), None).await {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(60),
            "child not ready"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let pid = child.id().context("child pid")?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_mb(pid);
    let peak = Arc::new(std::sync::Mutex::new(0f64));
    let sampler = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                let now = rss_mb(pid);
                {
                    let mut p = peak.lock().unwrap();
                    if now > *p {
                        *p = now;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let e2 = env.clone();
    let loaded = load(seconds, move |i| {
        let (e, base) = (e2.clone(), child_base.clone());
        async move {
            mcp(
                &e.http,
                &format!("{base}/mcp"),
                Some(&e.key),
                &e.get_listing(i),
            )
            .await
        }
    })
    .await;
    sampler.abort();
    let peak = *peak.lock().unwrap();
    println!(
        "  haven serve RSS: idle {idle:.1} MB, under {CLIENTS}-client getListing load {peak:.1} MB ({:.0} req/s)",
        loaded.rps
    );
    let _ = child.kill().await;
    stop.cancel();
    server.stop().await;
    Ok(())
}

/// Cancels the holds the booking case made since `seeded_at` (the trigger frees their nights), so
/// every round books against the seeded calendar: without it, later rounds meet guests already
/// holding their five unpaid reservations and taken nights, and measure refusals, not bookings.
async fn fresh_dates(pool: &PgPool, seeded_at: chrono::DateTime<Utc>) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE booking.reservations SET booking_status = 'cancelled', payment_confirmation = 'canceled',
                cancelled_at = now(), hold_expires_at = NULL
          WHERE created_at > $1 AND booking_status = 'pending'",
    )
    .bind(seeded_at)
    .execute(pool)
    .await
    .context("resetting the booking case")?;
    Ok(())
}
