//! Notification outbox drain rate for email: how many queued email deliveries per second the
//! outbox workers send to a real local SMTP server (aiosmtpd, `tests/api/smtp_sink.py`, under
//! `.ci/venv`) and mark sent, through the real claim/lease/mark path.
//!
//! Seeds `DELIVERIES` pending email deliveries straight into the outbox, then drains them with one
//! worker (batch 32, 8 sends in flight), and again with two workers racing on the same table (as
//! two replicas would); after each round it checks that the SMTP server received every message
//! exactly once. Run with `cargo bench --bench notify`. Uses `DATABASE_URL` when set, otherwise a
//! private cluster under `target/bench-pg`. Nothing here asserts a timing.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use haven::config::Config;
use haven_tools::notification::channels::email::{SmtpConfig, SmtpProvider};
use haven_tools::notification::channels::Providers;
use haven_tools::notification::outbox::{Outbox, WorkerSettings};
use serde_json::json;
use sqlx::PgPool;
use tokio::io::AsyncBufReadExt;
use uuid::Uuid;

// Shared with the other benches; this one uses only the server and seeding parts.
#[allow(dead_code)]
mod common;
use common::{Database, Server};

/// Deliveries per round.
const DELIVERIES: usize = 1000;

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    if !common::invoked_as_bench("notify") {
        return Ok(());
    }
    let database = Database::create().await?;
    let result = run(&database).await;
    database.drop().await?;
    result
}

async fn run(database: &Database) -> anyhow::Result<()> {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/smtp_sink.py");
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dir = std::env::temp_dir().join(format!("haven-bench-smtp-{}", Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let mut sink = tokio::process::Command::new(&python)
        .arg(&script)
        .arg("127.0.0.1")
        .arg(port.to_string())
        .arg(&dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the SMTP sink (.ci/venv/bin/python with aiosmtpd)")?;
    let mut lines = tokio::io::BufReader::new(sink.stdout.take().context("sink stdout")?).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await??;
    ensure!(
        ready.as_deref() == Some("ready"),
        "the SMTP sink did not start"
    );

    // The real server (no SMTP configured, so its own worker stays off: this bench drives them).
    let server = Server::start(&Config::loopback(10), database.options(), 2).await?;
    let user = register(&server).await?;
    let provider = SmtpProvider::new(&SmtpConfig {
        url: format!("smtp://127.0.0.1:{port}"),
        from: "Haven <no-reply@haven.bench>".into(),
        timeout: Duration::from_secs(10),
    })
    .map_err(anyhow::Error::msg)?;
    let providers = Arc::new(Providers {
        email: Some(Arc::new(provider)),
        ..Providers::default()
    });
    for workers in [1usize, 2] {
        let before = count(&dir);
        seed(&server.pool, user, DELIVERIES).await?;
        let started = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..workers {
            let outbox = Outbox::new(
                server.pool.clone(),
                providers.clone(),
                WorkerSettings::default(),
            );
            handles.push(tokio::spawn(async move {
                loop {
                    match outbox.drain_once().await {
                        Ok(0) => return Ok::<_, sqlx::Error>(()),
                        Ok(_) => {}
                        Err(e) => return Err(e),
                    }
                }
            }));
        }
        for h in handles {
            h.await??;
        }
        let elapsed = started.elapsed();
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notification.deliveries WHERE status = 'sent'",
        )
        .fetch_one(&server.pool)
        .await?;
        // Let the sink finish writing its last files.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let received = count(&dir) - before;
        println!(
            "workers {workers}: {DELIVERIES} emails in {:.2} s = {:.0} emails/s (sent {sent} in total, SMTP server received {received} this round)",
            elapsed.as_secs_f64(),
            DELIVERIES as f64 / elapsed.as_secs_f64()
        );
        ensure!(
            received == DELIVERIES,
            "expected each email exactly once, got {received}"
        );
    }
    server.stop().await;
    let _ = sink.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Registers the recipient over REST; returns its id.
async fn register(server: &Server) -> anyhow::Result<Uuid> {
    let (status, body) = server
        .post(
            "/auth-api/v1/registeruser",
            None,
            json!({ "email": "bench@haven.bench", "password": "password123", "fullname": "Bench" }),
        )
        .await?;
    ensure!(status.is_success(), "registering: {body}");
    Ok(Uuid::parse_str(
        body["user"]["id"].as_str().context("user id")?,
    )?)
}

/// Queues `n` pending email deliveries (each with its in-app notification).
async fn seed(pool: &PgPool, user: Uuid, n: usize) -> anyhow::Result<()> {
    sqlx::query(
        "WITH notes AS (
            INSERT INTO notification.notifications (user_id, event_type, title, body)
            SELECT $1, 'announcement', 'Bench ' || g, 'Message number ' || g FROM generate_series(1, $2) g
            RETURNING id, title, body)
         INSERT INTO notification.deliveries (notification_id, user_id, channel, destination, subject, body_text, body_html)
         SELECT id, $1, 'email', 'bench@haven.bench', title, body, '<p>' || body || '</p>' FROM notes",
    )
    .bind(user)
    .bind(n as i32)
    .execute(pool)
    .await?;
    Ok(())
}

fn count(dir: &PathBuf) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
                .count()
        })
        .unwrap_or(0)
}
