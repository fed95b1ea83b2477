//! The GDPR worker: drains `platformadmin.gdpr_jobs`. A job is claimed with `FOR UPDATE SKIP
//! LOCKED` and a lease (so replicas never take the same job, and a job whose worker died is taken
//! up again once its lease runs out); an erasure runs one data source per transaction and records
//! its step in the same transaction, so a crash resumes at the source it stopped in. An export is
//! one consistent (repeatable-read) snapshot of every source.

use std::time::Duration;

use serde_json::{json, Map, Value};
use sqlx::{PgPool, Postgres, Transaction};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::sources::SOURCES;

/// Attempts before a job (and its request) is marked failed.
const MAX_ATTEMPTS: i32 = 3;

/// How long a claimed job is reserved for its worker.
const LEASE: &str = "5 minutes";

/// Processes jobs until `stop`: everything claimable, then a short pause.
pub async fn run(pool: PgPool, stop: CancellationToken) {
    loop {
        loop {
            match work_once(&pool).await {
                Ok(true) => continue,
                Ok(false) => break,
                Err(err) => {
                    tracing::warn!(%err, "GDPR worker could not claim a job");
                    break;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

/// A claimed job.
#[derive(sqlx::FromRow)]
struct Job {
    id: Uuid,
    gdpr_action_id: Uuid,
    step: i32,
    attempts: i32,
}

/// Claims and processes one job; `false` when none is claimable.
pub async fn work_once(pool: &PgPool) -> Result<bool, sqlx::Error> {
    let job: Option<Job> = sqlx::query_as(&format!(
        "UPDATE platformadmin.gdpr_jobs SET locked_until = now() + interval '{LEASE}',
            attempts = attempts + 1, updated_at = now()
         WHERE id = (SELECT id FROM platformadmin.gdpr_jobs
                     WHERE state = 'queued' AND (locked_until IS NULL OR locked_until < now())
                     ORDER BY created_at FOR UPDATE SKIP LOCKED LIMIT 1)
         RETURNING id, gdpr_action_id, step, attempts"
    ))
    .fetch_optional(pool)
    .await?;
    let Some(job) = job else {
        return Ok(false);
    };
    if let Err(err) = process(pool, &job).await {
        tracing::warn!(%err, job = %job.id, attempt = job.attempts, "GDPR job failed");
        give_up_or_retry(pool, &job, &err.to_string()).await?;
    }
    Ok(true)
}

async fn give_up_or_retry(pool: &PgPool, job: &Job, error: &str) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    if job.attempts >= MAX_ATTEMPTS {
        finish(
            &mut tx,
            job,
            "failed",
            Some("processing failed repeatedly; an admin may queue it again"),
        )
        .await?;
        sqlx::query(
            "UPDATE platformadmin.gdpr_jobs SET state = 'failed', last_error = $2 WHERE id = $1",
        )
        .bind(job.id)
        .bind(error)
        .execute(&mut *tx)
        .await?;
    } else {
        sqlx::query(
            "UPDATE platformadmin.gdpr_jobs SET last_error = $2,
                locked_until = now() + make_interval(secs => 2 * attempts), updated_at = now()
             WHERE id = $1",
        )
        .bind(job.id)
        .bind(error)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// The personal values other people's records may quote: the user's email, name and mobile
/// number.
async fn needles(
    tx: &mut Transaction<'_, Postgres>,
    user: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    let row: Option<(String, String, Option<String>)> =
        sqlx::query_as("SELECT email, fullname, mobile FROM auth.users WHERE id = $1")
            .bind(user)
            .fetch_optional(&mut **tx)
            .await?;
    Ok(row
        .map(|(e, n, m)| [Some(e), Some(n), m].into_iter().flatten().collect())
        .unwrap_or_default())
}

async fn process(pool: &PgPool, job: &Job) -> Result<(), sqlx::Error> {
    let (user, kind, status, consent): (Uuid, String, String, Option<Value>) = sqlx::query_as(
        "SELECT user_id, action_type, status, consent FROM platformadmin.gdpr_actions WHERE id = $1",
    )
    .bind(job.gdpr_action_id)
    .fetch_one(pool)
    .await?;
    if status != "pending" {
        sqlx::query("UPDATE platformadmin.gdpr_jobs SET state = 'cancelled', locked_until = NULL WHERE id = $1")
            .bind(job.id)
            .execute(pool)
            .await?;
        return Ok(());
    }
    match kind.as_str() {
        "export" => export(pool, job, user).await,
        "consent" => {
            let mut tx = pool.begin().await?;
            let consent = consent.unwrap_or_default();
            sqlx::query(
                "INSERT INTO platformadmin.consents (user_id, gdpr_action_id, purpose, granted)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(user)
            .bind(job.gdpr_action_id)
            .bind(consent["purpose"].as_str().unwrap_or("unspecified"))
            .bind(consent["granted"].as_bool().unwrap_or(false))
            .execute(&mut *tx)
            .await?;
            finish(&mut tx, job, "complete", None).await?;
            tx.commit().await
        }
        _ => erase(pool, job, user).await,
    }
}

/// Builds the export document from every source in one snapshot and stores it.
pub async fn export_document(
    tx: &mut Transaction<'_, Postgres>,
    user: Uuid,
) -> Result<Value, sqlx::Error> {
    let needles = needles(tx, user).await?;
    let mut parts = Map::new();
    for source in SOURCES {
        let value: Option<Value> = sqlx::query_scalar(source.export)
            .bind(user)
            .bind(&needles)
            .fetch_optional(&mut **tx)
            .await?
            .flatten();
        parts.insert(source.name.to_string(), value.unwrap_or(Value::Null));
    }
    Ok(json!({
        "format": "haven-gdpr-export/1",
        "userId": user,
        "generatedAt": chrono::Utc::now(),
        "data": parts,
    }))
}

async fn export(pool: &PgPool, job: &Job, user: Uuid) -> Result<(), sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .execute(&mut *tx)
        .await?;
    let document = export_document(&mut tx, user).await?;
    sqlx::query(
        "INSERT INTO platformadmin.gdpr_exports (gdpr_action_id, user_id, document) VALUES ($1, $2, $3)
         ON CONFLICT (gdpr_action_id) DO NOTHING",
    )
    .bind(job.gdpr_action_id)
    .bind(user)
    .bind(document)
    .execute(&mut *tx)
    .await?;
    finish(&mut tx, job, "complete", None).await?;
    tx.commit().await
}

async fn erase(pool: &PgPool, job: &Job, user: Uuid) -> Result<(), sqlx::Error> {
    for (step, source) in SOURCES.iter().enumerate().skip(job.step.max(0) as usize) {
        let mut tx = pool.begin().await?;
        sqlx::query("SELECT set_config('haven.gdpr_erasure', 'on', true)")
            .execute(&mut *tx)
            .await?;
        let needles = needles(&mut tx, user).await?;
        for statement in source.erase {
            sqlx::query(statement)
                .bind(user)
                .bind(&needles)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query(
            "UPDATE platformadmin.gdpr_jobs SET step = $2, updated_at = now() WHERE id = $1",
        )
        .bind(job.id)
        .bind(step as i32 + 1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    let mut tx = pool.begin().await?;
    finish(&mut tx, job, "complete", None).await?;
    tx.commit().await
}

/// Closes the request and its job, with an audit row (the system acting).
async fn finish(
    tx: &mut Transaction<'_, Postgres>,
    job: &Job,
    status: &str,
    reason: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE platformadmin.gdpr_actions SET status = $2, processed_at = now(), failure_reason = $3,
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(job.gdpr_action_id)
    .bind(status)
    .bind(reason)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "UPDATE platformadmin.gdpr_jobs SET state = CASE WHEN $2 = 'complete' THEN 'done' ELSE 'failed' END,
            locked_until = NULL, updated_at = now() WHERE id = $1",
    )
    .bind(job.id)
    .bind(status)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "INSERT INTO platformadmin.audit_logs (object_id, details, action_object, action_type,
             operation, face, request_id, changes)
         SELECT g.id, jsonb_build_object('userId', g.user_id, 'actionType', g.action_type,
                 'status', g.status, 'attempts', $2::int),
             'gdprAction', 'processGdprAction', 'processGdprAction', 'internal', 'gdpr-worker',
             platformadmin.change_summary(g.id)
         FROM platformadmin.gdpr_actions g WHERE g.id = $1",
    )
    .bind(job.gdpr_action_id)
    .bind(job.attempts)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
