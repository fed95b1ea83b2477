//! Agent hub overhead benchmark: the time a run spends in the hub itself, outside the LLM and the
//! tools. The real server (real router, real HTTP, real Postgres) is pointed at the scripted
//! OpenAI-compatible server of the tests; 100 runs of `guest-booking-assistant` over REST
//! (`POST /agenthub-api/v1/agents/guest-booking-assistant/run`) each make two LLM calls (a
//! `listListings` tool call, then a final text) and one tool call.
//!
//! A tracing layer installed here times the hub's own spans (`invoke_agent`, `chat`,
//! `execute_tool`) from their first enter to their last exit, i.e. the instrumented future's wall
//! time. Per run: hub overhead = client total − Σ chat − Σ execute_tool; loop overhead =
//! invoke_agent − Σ chat − Σ execute_tool. The baselines are measured in the same run, interleaved
//! with the agent runs so load from elsewhere hits both alike: the same `listListings` over REST,
//! the scripted provider's own round trip (the hub's two recorded requests replayed with reqwest
//! and read to `[DONE]`), `GET /health`, and the hub's own database work called directly.
//!
//! Run with `cargo bench --bench agents`. Uses `DATABASE_URL` when set, otherwise a private
//! cluster under `target/bench-pg`. Nothing here asserts a timing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use futures::StreamExt;
use haven::config::Config;
use haven_agents::executions::{
    self, AgentType, NewExecution, Outcome, Source, Status, TokenUsage, ToolCallRecord,
};
use haven_agents::run_agent::enabled_agent;
use serde_json::{json, Value};
use tracing::span::{Attributes, Id};
use tracing::Subscriber;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::{Context as LayerContext, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;
use uuid::Uuid;

mod common;
use common::{ms, percentile, sorted, Database, Server};

#[allow(dead_code)]
#[path = "../tests/api/scripted_llm.rs"]
mod scripted_llm;
use scripted_llm::{fake_provider, text_turn, tool_turn, Fake, Turn};

/// Measured runs (and measured samples of every baseline).
const RUNS: usize = 100;
/// Unmeasured rounds first (keep-alive connections, pool connections, prepared statements).
const WARMUP: usize = 5;
/// The agent run.
const AGENT: &str = "guest-booking-assistant";
/// The guest's message.
const INPUT: &str = "Show me a few places to stay";
/// The final answer the scripted provider gives.
const ANSWER: &str = "Here are five places to stay, all free for your dates.";
/// Published listings seeded (every search returns all of them).
const LISTINGS: usize = 5;
/// The spans the layer times.
const SPANS: [&str; 3] = ["invoke_agent", "chat", "execute_tool"];

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_as_bench("agents") {
        return Ok(());
    }
    let total = Instant::now();
    let spans = SpanLog::default();
    let layer = spans.clone().with_filter(filter_fn(|meta| {
        meta.is_span() && meta.target().starts_with("haven_agents") && SPANS.contains(&meta.name())
    }));
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))?;
    let database = Database::create().await?;
    let result = run(&database, &spans).await;
    database.drop().await?;
    result?;
    println!("total {:.1} s", total.elapsed().as_secs_f64());
    Ok(())
}

async fn run(database: &Database, spans: &SpanLog) -> anyhow::Result<()> {
    let (fake, llm_base) = fake_provider(vec![]).await;
    let mut config = Config::loopback(10);
    config.llm_base_url = Some(llm_base.clone());
    let server = Server::start(&config, database.options(), 4).await?;
    let outcome = bench(&server, &fake, &llm_base, spans).await;
    server.stop().await;
    outcome
}

/// One closed span: its name, first enter → last exit, and creation → close.
struct Closed {
    name: &'static str,
    window: Duration,
    lifetime: Duration,
}

/// When a span was created, first entered and last exited (kept in its extensions).
struct Timing {
    created: Instant,
    first_enter: Option<Instant>,
    last_exit: Option<Instant>,
}

/// A tracing layer collecting [`Closed`] spans. The window (enter → exit), not the lifetime, is
/// the time of the instrumented call: a span may live on after it (`execute_tool` lives past the
/// tool-call log write, which is hub bookkeeping).
#[derive(Clone, Default)]
struct SpanLog(Arc<Mutex<Vec<Closed>>>);

impl SpanLog {
    /// Takes every span closed so far.
    fn take(&self) -> Vec<Closed> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl<S> Layer<S> for SpanLog
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, _attrs: &Attributes<'_>, id: &Id, ctx: LayerContext<'_, S>) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(Timing {
                created: Instant::now(),
                first_enter: None,
                last_exit: None,
            });
        }
    }

    fn on_enter(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let now = Instant::now();
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions_mut().get_mut::<Timing>() {
                t.first_enter.get_or_insert(now);
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: LayerContext<'_, S>) {
        let now = Instant::now();
        if let Some(span) = ctx.span(id) {
            if let Some(t) = span.extensions_mut().get_mut::<Timing>() {
                t.last_exit = Some(now);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: LayerContext<'_, S>) {
        let now = Instant::now();
        let Some(span) = ctx.span(&id) else { return };
        let Some(t) = span.extensions_mut().remove::<Timing>() else {
            return;
        };
        let window = match (t.first_enter, t.last_exit) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        };
        self.0.lock().unwrap().push(Closed {
            name: span.metadata().name(),
            window,
            lifetime: now.saturating_duration_since(t.created),
        });
    }
}

/// What one agent run cost, from the client and from the hub's spans.
#[derive(Default)]
struct RunSample {
    /// Request sent → whole JSON answer read, at the client.
    total: Duration,
    /// Σ `chat` windows.
    llm: Duration,
    /// Σ `execute_tool` windows (the operation itself).
    tool: Duration,
    /// Σ `execute_tool` lifetime − window: argument parsing, the tool-call log write, events.
    bookkeeping: Duration,
    /// The `invoke_agent` window (the run loop).
    invoke: Duration,
    /// Σ `chat` lifetimes (creation → close).
    chat_life: Duration,
}

/// The samples of the measured rounds.
#[derive(Default)]
struct Samples {
    runs: Vec<RunSample>,
    plain: Vec<Duration>,
    raw_pair: Vec<Duration>,
    raw_tool_turn: Vec<Duration>,
    health: Vec<Duration>,
    db: Vec<[Duration; 4]>,
}

/// The scripted provider's first turn of a run: search with `listListings`.
fn search_turn() -> Turn {
    tool_turn(
        "call_1",
        "listListings",
        json!({ "pageRowCount": LISTINGS }),
        (900, 20),
    )
}

/// The scripted provider's last turn of a run: the answer.
fn answer_turn() -> Turn {
    text_turn(ANSWER, (1400, 15))
}

async fn bench(
    server: &Server,
    fake: &Fake,
    llm_base: &str,
    spans: &SpanLog,
) -> anyhow::Result<()> {
    println!("\n== seed (over REST)");
    let host = server.register("host@bench.haven", "Bench Host").await?;
    let guest = server.register("guest@bench.haven", "Bench Guest").await?;
    for i in 0..LISTINGS {
        create_listing(server, &host, i).await?;
    }
    let guest_id: Uuid = sqlx::query_scalar("SELECT id FROM auth.users WHERE email = $1")
        .bind("guest@bench.haven")
        .fetch_one(&server.pool)
        .await?;
    println!("  1 host, 1 guest, {LISTINGS} published listings");

    // The first warm-up run records the hub's two provider requests for the raw baseline.
    fake.push([search_turn(), answer_turn()]);
    agent_run(server, &guest, spans).await?;
    let requests = fake.requests();
    ensure!(
        requests.len() == 2,
        "a run made {} LLM calls",
        requests.len()
    );
    let (first, second) = (requests[0].clone(), requests[1].clone());
    let tool_result = plain_list(server, &guest).await?.1;

    println!(
        "\n== {RUNS} rounds after {WARMUP} warm-up rounds; each: 1 agent run, 1 plain listListings, \
         2 raw provider calls, GET /health, the hub's DB work called directly"
    );
    let mut samples = Samples::default();
    let started = Instant::now();
    for round in 0..WARMUP + RUNS {
        fake.push([search_turn(), answer_turn()]);
        let run = agent_run(server, &guest, spans).await?;
        let (plain, _) = plain_list(server, &guest).await?;
        fake.push([search_turn()]);
        let raw_tool = raw_llm(server, llm_base, &first).await?;
        fake.push([answer_turn()]);
        let raw_text = raw_llm(server, llm_base, &second).await?;
        let health = get(server, "/health", None).await?;
        let db = hub_db_work(server, guest_id, &tool_result).await?;
        if round >= WARMUP {
            samples.runs.push(run);
            samples.plain.push(plain);
            samples.raw_pair.push(raw_tool + raw_text);
            samples.raw_tool_turn.push(raw_tool);
            samples.health.push(health);
            samples.db.push(db);
        }
    }
    println!("  {:.1} s", started.elapsed().as_secs_f64());
    report(&samples);
    Ok(())
}

/// Creates published listing `i` in Lisbon as `host` over REST (`createListing`).
async fn create_listing(server: &Server, host: &str, i: usize) -> anyhow::Result<()> {
    let (status, body) = server
        .post(
            "/propertycatalog-api/v1/listings",
            Some(host),
            json!({
                "title": format!("Bench loft {i}"),
                "description": "A bright loft two streets from the beach.",
                "address": format!("{i} Rua do Mar"),
                "location": { "city": "Lisbon", "country": "PT" },
                "propertyType": "loft",
                "approvalType": "instant",
                "pricePerNight": 100 + 10 * i as i64,
                "cleaningFee": 30,
                "currency": "EUR",
                "maxGuests": 4,
                "isPublished": true
            }),
        )
        .await?;
    ensure!(
        status == reqwest::StatusCode::CREATED,
        "createListing: {status} {body}"
    );
    Ok(())
}

/// One agent run over REST, with the hub's spans of that run.
async fn agent_run(server: &Server, token: &str, spans: &SpanLog) -> anyhow::Result<RunSample> {
    spans.take();
    let started = Instant::now();
    let resp = server
        .http
        .post(format!(
            "{}/agenthub-api/v1/agents/{AGENT}/run",
            server.base
        ))
        .bearer_auth(token)
        .json(&json!({ "input": INPUT }))
        .send()
        .await?;
    let status = resp.status();
    let text = resp.text().await?;
    let total = started.elapsed();
    let body: Value = serde_json::from_str(&text).with_context(|| format!("{status}: {text}"))?;
    ensure!(
        status.is_success() && body["status"] == "success" && body["toolCalls"] == 1,
        "the run did not succeed with one tool call: {status} {body}"
    );
    // The runner closes its spans before it returns, so before the answer is written; wait
    // briefly anyway rather than miscount.
    let mut closed = spans.take();
    for _ in 0..100 {
        if closed.iter().any(|c| c.name == "invoke_agent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
        closed.extend(spans.take());
    }
    let count = |name: &str| closed.iter().filter(|c| c.name == name).count();
    let counts = (count("invoke_agent"), count("chat"), count("execute_tool"));
    ensure!(
        counts == (1, 2, 1),
        "expected 1 invoke_agent, 2 chat and 1 execute_tool span, saw {counts:?}"
    );
    let mut sample = RunSample {
        total,
        ..RunSample::default()
    };
    for c in &closed {
        match c.name {
            "chat" => {
                sample.llm += c.window;
                sample.chat_life += c.lifetime;
            }
            "execute_tool" => {
                sample.tool += c.window;
                sample.bookkeeping += c.lifetime.saturating_sub(c.window);
            }
            _ => sample.invoke = c.window,
        }
    }
    Ok(sample)
}

/// `GET path` (optionally as `token`); the time to the whole body, and the body.
async fn timed_get(
    server: &Server,
    path: &str,
    token: Option<&str>,
) -> anyhow::Result<(Duration, Value)> {
    let started = Instant::now();
    let mut req = server.http.get(format!("{}{path}", server.base));
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let resp = req.send().await?;
    let status = resp.status();
    let text = resp.text().await?;
    let elapsed = started.elapsed();
    if !status.is_success() {
        bail!("GET {path}: {status} {text}");
    }
    Ok((elapsed, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

async fn get(server: &Server, path: &str, token: Option<&str>) -> anyhow::Result<Duration> {
    Ok(timed_get(server, path, token).await?.0)
}

/// The agent's tool call made directly: `listListings` over REST as the same guest.
async fn plain_list(server: &Server, token: &str) -> anyhow::Result<(Duration, Value)> {
    let path = format!("/propertycatalog-api/v1/listings?pageRowCount={LISTINGS}");
    let (elapsed, body) = timed_get(server, &path, Some(token)).await?;
    let rows = body["listings"].as_array().map_or(0, Vec::len);
    ensure!(
        rows == LISTINGS,
        "listListings returned {rows} listings: {body}"
    );
    Ok((elapsed, body))
}

/// One streamed POST of `request` to the scripted provider, read to `data: [DONE]`.
async fn raw_llm(server: &Server, base: &str, request: &Value) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let resp = server
        .http
        .post(format!("{base}/chat/completions"))
        .json(request)
        .send()
        .await?;
    ensure!(resp.status().is_success(), "provider: {}", resp.status());
    let mut stream = resp.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        body.extend_from_slice(&chunk?);
    }
    let elapsed = started.elapsed();
    ensure!(
        body.ends_with(b"data: [DONE]\n\n"),
        "the provider's stream did not end with [DONE]"
    );
    Ok(elapsed)
}

/// The hub's own database work of one run, called directly on the server's pool: the agent
/// lookup, then the execution row's start, one tool-call record and its finish.
async fn hub_db_work(
    server: &Server,
    user: Uuid,
    tool_result: &Value,
) -> anyhow::Result<[Duration; 4]> {
    let pool = &server.pool;
    let mut lap = Instant::now();
    let mut split = || {
        let now = Instant::now();
        let d = now - lap;
        lap = now;
        d
    };
    enabled_agent(pool, AGENT)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let lookup = split();
    let input = json!({ "input": INPUT });
    let id = executions::start_execution(
        pool,
        NewExecution {
            agent_name: AGENT,
            agent_type: AgentType::Design,
            source: Source::Rest,
            user_id: Some(user),
            input: &input,
            parent_execution_id: None,
        },
    )
    .await?;
    let start = split();
    executions::record_tool_call(
        pool,
        id,
        ToolCallRecord {
            tool_name: "listListings",
            arguments: &json!({ "pageRowCount": LISTINGS }),
            result: tool_result,
            is_error: false,
            duration_ms: 1,
        },
    )
    .await?;
    let record = split();
    let output = Value::String(ANSWER.into());
    executions::finish_execution(
        pool,
        id,
        Outcome {
            status: Status::Success,
            output: Some(&output),
            error: None,
            token_usage: TokenUsage {
                prompt: 2300,
                completion: 35,
                total: 2335,
            },
            tool_calls: 1,
        },
    )
    .await?;
    Ok([lookup, start, record, split()])
}

/// One line of the table.
struct Row {
    label: &'static str,
    values: Vec<Duration>,
    note: String,
}

fn row(label: &'static str, values: Vec<Duration>, note: impl Into<String>) -> Row {
    Row {
        label,
        values: sorted(&values),
        note: note.into(),
    }
}

fn p50(values: &[Duration]) -> Duration {
    percentile(&sorted(values), 50.0)
}

fn report(s: &Samples) {
    let runs = &s.runs;
    let of = |f: fn(&RunSample) -> Duration| runs.iter().map(f).collect::<Vec<_>>();
    let hub = of(|r| r.total.saturating_sub(r.llm + r.tool));
    let lookups: Vec<Duration> = s.db.iter().map(|d| d[0]).collect();
    let writes: Vec<Duration> = s.db.iter().map(|d| d[1] + d[2] + d[3]).collect();
    let part = |i: usize| ms(p50(&s.db.iter().map(|d| d[i]).collect::<Vec<_>>()));
    let rows = [
        row(
            "baseline: listListings over REST",
            s.plain.clone(),
            format!("GET …/listings?pageRowCount={LISTINGS}, same guest (the base)"),
        ),
        row(
            "baseline: raw provider round trips x2",
            s.raw_pair.clone(),
            format!(
                "the hub's 2 requests replayed with reqwest, read to [DONE] (tool turn p50 {})",
                ms(p50(&s.raw_tool_turn))
            ),
        ),
        row("floor: GET /health", s.health.clone(), "HTTP + router only"),
        row(
            "run: client total",
            of(|r| r.total),
            "POST …/run, whole JSON answer",
        ),
        row("run: LLM (sum of chat)", of(|r| r.llm), "2 calls"),
        row(
            "run: tool (execute_tool)",
            of(|r| r.tool),
            "listListings in-process",
        ),
        row("run: hub overhead", hub.clone(), "total - LLM - tool"),
        row(
            "  in the loop",
            of(|r| r.invoke.saturating_sub(r.llm + r.tool)),
            "invoke_agent - LLM - tool",
        ),
        row(
            "    of which tool-call bookkeeping",
            of(|r| r.bookkeeping),
            "execute_tool life - window: args, log write",
        ),
        row(
            "  outside the loop",
            of(|r| r.total.saturating_sub(r.invoke)),
            "HTTP, auth, agent lookup, start/finish log",
        ),
        row(
            "direct: agent lookup",
            lookups,
            "enabled_agent on the server's pool",
        ),
        row(
            "direct: 3 execution-log writes",
            writes,
            format!(
                "start {}, tool call {}, finish {}",
                part(1),
                part(2),
                part(3)
            ),
        ),
    ];
    let base = p50(&s.plain);
    println!(
        "\n  {:<38} {:>4} {:>9} {:>9} {:>9} {:>9} {:>8}  notes",
        "measurement", "n", "mean", "p50", "p90", "p99", "p50/base"
    );
    for r in &rows {
        let p = |q: f64| percentile(&r.values, q);
        println!(
            "  {:<38} {:>4} {:>9} {:>9} {:>9} {:>9} {:>7.2}x  {}",
            r.label,
            r.values.len(),
            ms(r.values.iter().sum::<Duration>() / r.values.len().max(1) as u32),
            ms(p(50.0)),
            ms(p(90.0)),
            ms(p(99.0)),
            p(50.0).as_secs_f64() / base.as_secs_f64().max(1e-9),
            r.note
        );
    }
    let (llm, raw) = (p50(&of(|r| r.llm)), p50(&s.raw_pair));
    println!(
        "\n  hub overhead per run: p50 {} = {:.2}x a plain listListings call over REST (p50 {})",
        ms(p50(&hub)),
        p50(&hub).as_secs_f64() / base.as_secs_f64().max(1e-9),
        ms(base)
    );
    println!(
        "  the hub's LLM client (request building, stream parsing) over the raw round trips: \
         p50 {} vs {} (+{})",
        ms(llm),
        ms(raw),
        ms(llm.saturating_sub(raw))
    );
    println!(
        "  chat span lifetimes (creation to close) sum to p50 {} vs {} entered: a span that \
         outlived its LLM call would show here (tracing backends report lifetimes)",
        ms(p50(&of(|r| r.chat_life))),
        ms(llm)
    );
}
