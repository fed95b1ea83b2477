//! The database: a pool over `DATABASE_URL`, or over a private PostgreSQL cluster that Haven starts
//! itself from the machine's installed binaries ([`cluster`]), shared by every Haven process on one
//! data dir ([`lease`], [`attach`]).

pub mod attach;
pub mod cluster;
pub mod lease;

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};

pub use attach::Attachment;
pub use cluster::{Durability, PrivateCluster};

/// The embedded migrations (one schema per service).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Creates database `name` in the cluster unless it exists (two processes starting at once on a
/// fresh cluster may race here; the loser finds it made).
pub async fn create_database(
    admin: PgConnectOptions,
    name: &str,
    template: Option<&str>,
) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&admin.database("postgres")).await?;
    if database_exists_on(&mut conn, name).await? {
        return Ok(());
    }
    let sql = match template {
        Some(t) => format!("CREATE DATABASE \"{name}\" TEMPLATE \"{t}\""),
        None => format!("CREATE DATABASE \"{name}\""),
    };
    match sqlx::query(&sql).execute(&mut conn).await {
        Ok(_) => Ok(()),
        Err(_) if database_exists_on(&mut conn, name).await? => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// True when the server behind `admin` has a database `name`.
pub async fn database_exists(admin: PgConnectOptions, name: &str) -> anyhow::Result<bool> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect_with(&admin.database("postgres")).await?;
    database_exists_on(&mut conn, name).await
}

async fn database_exists_on(conn: &mut sqlx::PgConnection, name: &str) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(name)
            .fetch_one(conn)
            .await?,
    )
}

/// A pool over `options`, with short acquire timeouts so an outage fails fast instead of hanging.
pub async fn pool(options: PgConnectOptions, max: u32) -> anyhow::Result<PgPool> {
    pool_with(options, max, Duration::from_secs(5)).await
}

/// A pool of `max` connections whose callers wait at most `acquire_timeout` for one (then the call
/// answers 503 rather than queueing without end); see [`pool_options`].
pub async fn pool_with(
    options: PgConnectOptions,
    max: u32,
    acquire_timeout: Duration,
) -> anyhow::Result<PgPool> {
    let options = options.log_statements(tracing::log::LevelFilter::Trace);
    Ok(pool_options(max, acquire_timeout)
        .connect_with(options)
        .await?)
}

/// A connection idle longer than this is pinged before it is handed out.
pub const PING_IDLE_AFTER: Duration = Duration::from_secs(10);

/// The pool's settings. A busy connection is handed out without the ping sqlx sends by default (a
/// round trip on every checkout); one idle for [`PING_IDLE_AFTER`] is still checked. A connection
/// that broke anyway (the database restarted within that time) fails its statement: the
/// dispatcher then runs a read once more on a checked connection and begins a write's
/// transaction again (`haven_tools::context::acquire_checked`).
pub fn pool_options(max: u32, acquire_timeout: Duration) -> PgPoolOptions {
    PgPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= PING_IDLE_AFTER {
                    use sqlx::Connection;
                    conn.ping().await?;
                }
                Ok(true)
            })
        })
}

/// Warns when the server runs with `fsync` off: a private cluster started by the test harness or a
/// benchmark (which relax durability) and joined by a server would lose acknowledged writes in an
/// OS crash. `haven db stop` lets the next start bring it back with Postgres' defaults.
pub async fn warn_unless_durable(pool: &PgPool) {
    if let Ok(fsync) = sqlx::query_scalar::<_, String>("SHOW fsync")
        .fetch_one(pool)
        .await
    {
        if fsync != "on" {
            tracing::warn!(
                "the private cluster runs with fsync={fsync} (started by a test or benchmark?): \
                 acknowledged writes may be lost in a crash; run `haven db stop` so the next start is durable"
            );
        }
    }
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await.context("running migrations")
}
