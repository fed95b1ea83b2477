//! Messaging benchmark: end-to-end latency from `createMessage` to the other participant's
//! `/events` frame, across two server processes on one database. Process A is the real router in
//! this process; process B is a child `haven serve`. 100 hosts keep an `/events` stream open on B;
//! 10 guests post 1,000 messages (100 each, 10 at once) through A, into one thread per host. Each
//! message's latency is from just before its `POST /messaging-api/v1/messages` to the moment its
//! frame (matched by `objectId`) is read from the host's stream; p50/p99 are printed with the
//! plain `createMessage` response time for comparison.
//!
//! Run with `cargo bench --bench messaging`. Uses `DATABASE_URL` when set, otherwise a private
//! cluster under `target/bench-pg`. Nothing here asserts a timing.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::StreamExt;
use haven::config::Config;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

mod common;
use common::{ms, percentile, sorted, Database, Server};

/// Hosts, each with an open `/events` stream on process B and one thread.
const HOSTS: usize = 100;
/// Guests posting through process A, each to HOSTS / GUESTS threads.
const GUESTS: usize = 10;
/// Messages posted in all.
const MESSAGES: usize = 1_000;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_as_bench("messaging") {
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

/// When each message's frame arrived, by message id.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

async fn run(database: &Database) -> anyhow::Result<()> {
    let mut config = Config::loopback(20);
    config.messages_per_minute = 0;
    config.inquiries_per_hour = 0;
    let a = Server::start(&config, database.options(), GUESTS * 2).await?;
    let b = ChildServe::start(&database.url()?).await?;
    let outcome = bench(&a, &b.base, &a.pool).await;
    a.stop().await;
    drop(b);
    outcome
}

async fn bench(a: &Server, b: &str, pool: &PgPool) -> anyhow::Result<()> {
    println!("\n== seed");
    let t = Instant::now();
    let mut hosts = Vec::new();
    for i in 0..HOSTS {
        hosts.push(
            a.register(&format!("host{i}@bench.test"), "Bench Host")
                .await?,
        );
    }
    let mut guests: HashMap<String, String> = HashMap::new();
    for i in 0..GUESTS {
        let email = format!("guest{i}@bench.test");
        let token = a.register(&email, "Bench Guest").await?;
        guests.insert(email, token);
    }
    println!(
        "  {} users registered + logged in over REST  {:.2} s",
        HOSTS + GUESTS,
        t.elapsed().as_secs_f64()
    );
    // One thread per host, with guest h % GUESTS, inserted directly (thread creation is not
    // what is measured).
    let threads: Vec<String> = sqlx::query_scalar(
        "WITH h AS (SELECT id, row_number() OVER (ORDER BY email) - 1 AS n FROM auth.users WHERE email LIKE 'host%@bench.test'),
              g AS (SELECT id, row_number() OVER (ORDER BY email) - 1 AS n FROM auth.users WHERE email LIKE 'guest%@bench.test')
         INSERT INTO messaging.message_threads (guest_id, host_id, owner_id)
         SELECT g.id, h.id, g.id FROM h JOIN g ON g.n = h.n % $1
         RETURNING id::text",
    )
    .bind(GUESTS as i64)
    .fetch_all(pool)
    .await?;
    if threads.len() != HOSTS {
        bail!("seeded {} threads, wanted {HOSTS}", threads.len());
    }
    // Each guest's threads.
    let owners: Vec<(String, String)> = sqlx::query_as(
        "SELECT t.id::text, u.email FROM messaging.message_threads t JOIN auth.users u ON u.id = t.guest_id",
    )
    .fetch_all(pool)
    .await?;
    let mut by_guest: HashMap<String, Vec<String>> = HashMap::new();
    for (thread, email) in owners {
        by_guest.entry(email).or_default().push(thread);
    }

    println!("\n== open {HOSTS} /events streams on process B");
    let arrivals: Arrivals = Arc::default();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(HOSTS)
        .build()?;
    let mut readers = Vec::new();
    for token in &hosts {
        let resp = http
            .get(format!("{b}/events?kinds=createMessage"))
            .bearer_auth(token)
            .send()
            .await?;
        if !resp.status().is_success() {
            bail!("GET /events answered {}", resp.status());
        }
        readers.push(tokio::spawn(read_frames(resp, arrivals.clone())));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    println!("\n== post {MESSAGES} messages through process A ({GUESTS} guests at once)");
    let per_guest = MESSAGES / GUESTS;
    let started = Instant::now();
    let mut senders = Vec::new();
    for (email, token) in guests {
        let threads = by_guest.get(&email).cloned().unwrap_or_default();
        if threads.is_empty() {
            bail!("{email} has no thread");
        }
        let server = a.base.clone();
        let http = a.http.clone();
        senders.push(tokio::spawn(async move {
            let mut sent = Vec::new();
            for n in 0..per_guest {
                let thread = &threads[n % threads.len()];
                let t0 = Instant::now();
                let resp = http
                    .post(format!("{server}/messaging-api/v1/messages"))
                    .bearer_auth(&token)
                    .json(&json!({ "threadId": thread, "content": format!("bench message {n}") }))
                    .send()
                    .await?;
                let status = resp.status();
                let body: Value = resp.json().await.unwrap_or(Value::Null);
                let answered = t0.elapsed();
                let id = body["message"]["id"]
                    .as_str()
                    .with_context(|| format!("createMessage answered {status}: {body}"))?
                    .to_string();
                sent.push((id, t0, answered));
            }
            anyhow::Ok(sent)
        }));
    }
    let mut sent = Vec::new();
    for s in senders {
        sent.extend(s.await??);
    }
    let posting = started.elapsed();
    // Wait (up to 10 s) for the last frames.
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrivals.lock().map(|a| a.len()).unwrap_or(0) < sent.len() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for r in &readers {
        r.abort();
    }
    let arrived = arrivals.lock().map(|a| a.clone()).unwrap_or_default();
    let mut latencies = Vec::new();
    let mut answers = Vec::new();
    let mut lost = 0;
    for (id, t0, answered) in &sent {
        answers.push(*answered);
        match arrived.get(id) {
            Some(at) => latencies.push(at.saturating_duration_since(*t0)),
            None => lost += 1,
        }
    }
    let latencies = sorted(&latencies);
    let answers = sorted(&answers);
    println!(
        "  posted {} in {:.2} s ({:.0} messages/s), frames received {}, missing {lost}",
        sent.len(),
        posting.as_secs_f64(),
        sent.len() as f64 / posting.as_secs_f64(),
        latencies.len()
    );
    println!(
        "  createMessage → other process's /events frame: p50 {}  p99 {}  max {}",
        ms(percentile(&latencies, 50.0)),
        ms(percentile(&latencies, 99.0)),
        ms(percentile(&latencies, 100.0))
    );
    println!(
        "  createMessage REST answer alone:                p50 {}  p99 {}",
        ms(percentile(&answers, 50.0)),
        ms(percentile(&answers, 99.0))
    );
    Ok(())
}

/// Reads SSE frames from `resp`, recording when each `createMessage` frame's `objectId` arrived.
async fn read_frames(resp: reqwest::Response, arrivals: Arrivals) {
    let mut body = resp.bytes_stream();
    let mut buf = String::new();
    while let Some(Ok(chunk)) = body.next().await {
        buf.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let now = Instant::now();
            let data: String = block
                .lines()
                .filter_map(|l| l.strip_prefix("data:"))
                .map(str::trim)
                .collect();
            if let Ok(event) = serde_json::from_str::<Value>(&data) {
                if let Some(id) = event["objectId"].as_str() {
                    if let Ok(mut seen) = arrivals.lock() {
                        seen.entry(id.to_string()).or_insert(now);
                    }
                }
            }
        }
    }
}

/// Process B: a child `haven serve` on the benchmark's database.
struct ChildServe {
    child: tokio::process::Child,
    base: String,
}

impl ChildServe {
    async fn start(db_url: &str) -> anyhow::Result<ChildServe> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let dir = std::env::temp_dir().join(format!("haven-bench-serve-{}", Uuid::new_v4()));
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_haven"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", db_url)
            .env("HAVEN_DATA_DIR", &dir)
            .env("HAVEN_DB_MAX_CONNECTIONS", "20")
            .env("HAVEN_RATE_LIMIT_PER_MINUTE", "0")
            .env("HAVEN_MESSAGES_PER_MINUTE", "0")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("spawning haven serve")?;
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let start = Instant::now();
        while !http
            .get(format!("{base}/ready"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if start.elapsed() > Duration::from_secs(60) {
                bail!("haven serve was not ready within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        println!("process B: haven serve on {base}");
        Ok(ChildServe { child, base })
    }
}

impl Drop for ChildServe {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}
