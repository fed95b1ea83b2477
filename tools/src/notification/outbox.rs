//! The delivery worker: drains `notification.deliveries` on any replica.
//!
//! A worker **claims** due rows in one statement (`FOR UPDATE SKIP LOCKED`, so replicas never
//! claim the same row): it takes a lease (`lease_until`, `leased_by`) and counts the attempt. It
//! sends outside any transaction, then **marks** the row in one statement that checks it still
//! holds the lease: `sent` with the provider's message id, or back to `pending` with the next
//! attempt after an exponential backoff (`failed` once the attempts are used up or the provider
//! refused for good). A worker that dies mid-send leaves a lease that expires, and another worker
//! sends again with the same idempotency key (the delivery id, also the email Message-ID). The
//! lease is far longer than a send may take, so a live send is never claimed twice.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::Value;
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::channels::{Outgoing, Providers, SendError};
use crate::announce::OUTBOX_CHANNEL;

/// How the worker paces itself.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The first retry waits this long; each further one twice as long (with jitter).
    pub retry_base: Duration,
    /// The longest wait between attempts.
    pub retry_cap: Duration,
    /// How long a claim holds a row (longer than any send may take).
    pub lease: Duration,
    /// Rows claimed at once.
    pub batch: i64,
    /// Sends in flight at once.
    pub concurrency: usize,
    /// How often to look for due retries when nothing wakes the worker.
    pub poll: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(3600),
            lease: Duration::from_secs(300),
            batch: 32,
            concurrency: 8,
            poll: Duration::from_secs(2),
        }
    }
}

/// A claimed delivery.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: Uuid,
    channel: String,
    destination: String,
    subject: String,
    body_text: String,
    body_html: Option<String>,
    payload: Value,
    attempts: i32,
}

/// One worker: a pool, the providers and a name for its leases.
#[derive(Clone)]
pub struct Outbox {
    db: PgPool,
    providers: Arc<Providers>,
    settings: WorkerSettings,
    name: String,
}

/// The wait before attempt `attempts + 1`: `base · 2^(attempts-1)`, capped, with ±25 % jitter.
pub fn backoff(settings: &WorkerSettings, attempts: i32) -> Duration {
    use rand::Rng;
    let exp = attempts.clamp(1, 30) as u32 - 1;
    let wait = settings
        .retry_base
        .saturating_mul(1u32.checked_shl(exp).unwrap_or(u32::MAX))
        .min(settings.retry_cap);
    let jitter = rand::thread_rng().gen_range(0.75..=1.25);
    wait.mul_f64(jitter).min(settings.retry_cap)
}

impl Outbox {
    /// A worker over `db` sending through `providers`.
    pub fn new(db: PgPool, providers: Arc<Providers>, settings: WorkerSettings) -> Self {
        Outbox {
            db,
            providers,
            settings,
            name: format!("worker-{}", Uuid::new_v4().simple()),
        }
    }

    /// Claims and sends one batch of due deliveries; returns how many it handled.
    pub async fn drain_once(&self) -> Result<usize, sqlx::Error> {
        let claimed: Vec<Claimed> = sqlx::query_as(
            "UPDATE notification.deliveries d
                SET attempts = d.attempts + 1, lease_until = now() + make_interval(secs => $2),
                    leased_by = $3, updated_at = now()
              WHERE d.id IN (
                    SELECT id FROM notification.deliveries
                     WHERE status = 'pending' AND next_attempt_at <= now()
                       AND (lease_until IS NULL OR lease_until < now())
                     ORDER BY next_attempt_at LIMIT $1
                     FOR UPDATE SKIP LOCKED)
             RETURNING d.id, d.channel, d.destination, d.subject, d.body_text, d.body_html, d.payload, d.attempts",
        )
        .bind(self.settings.batch)
        .bind(self.settings.lease.as_secs_f64())
        .bind(&self.name)
        .fetch_all(&self.db)
        .await?;
        let n = claimed.len();
        futures::stream::iter(claimed)
            .for_each_concurrent(self.settings.concurrency.max(1), |row| async move {
                self.deliver(row).await;
            })
            .await;
        Ok(n)
    }

    /// Sends one claimed delivery and records the outcome.
    async fn deliver(&self, row: Claimed) {
        let outcome = match self.providers.get(&row.channel) {
            Some(provider) => {
                let message = Outgoing {
                    id: row.id,
                    destination: row.destination.clone(),
                    subject: row.subject.clone(),
                    text: row.body_text.clone(),
                    html: row.body_html.clone(),
                    data: row.payload.clone(),
                };
                provider.send(&message).await
            }
            None => Err(SendError::Transient(format!(
                "no {} provider is configured on this server",
                row.channel
            ))),
        };
        let marked = match &outcome {
            Ok(provider_id) => {
                sqlx::query(
                    "UPDATE notification.deliveries
                        SET status = 'sent', provider_message_id = $3, sent_at = now(),
                            lease_until = NULL, last_error = NULL, updated_at = now(),
                            body_text = CASE WHEN sensitive THEN '' ELSE body_text END,
                            body_html = CASE WHEN sensitive THEN NULL ELSE body_html END
                      WHERE id = $1 AND leased_by = $2 AND attempts = $4 AND status = 'pending'",
                )
                .bind(row.id)
                .bind(&self.name)
                .bind(provider_id)
                .bind(row.attempts)
                .execute(&self.db)
                .await
            }
            Err(err) => {
                let permanent = matches!(err, SendError::Permanent(_));
                let wait = backoff(&self.settings, row.attempts);
                sqlx::query(
                    "UPDATE notification.deliveries
                        SET status = CASE WHEN $3 OR attempts >= max_attempts THEN 'failed' ELSE 'pending' END,
                            next_attempt_at = now() + make_interval(secs => $4),
                            lease_until = NULL, last_error = $5, updated_at = now(),
                            body_text = CASE WHEN sensitive AND ($3 OR attempts >= max_attempts)
                                             THEN '' ELSE body_text END
                      WHERE id = $1 AND leased_by = $2 AND attempts = $6 AND status = 'pending'",
                )
                .bind(row.id)
                .bind(&self.name)
                .bind(permanent)
                .bind(wait.as_secs_f64())
                .bind(err.to_string())
                .bind(row.attempts)
                .execute(&self.db)
                .await
            }
        };
        match marked {
            Ok(done) if done.rows_affected() == 1 => {}
            Ok(_) => tracing::warn!(delivery = %row.id, "delivery lease lost before it was marked"),
            Err(err) => tracing::warn!(delivery = %row.id, %err, "could not mark a delivery"),
        }
        if let Err(err) = outcome {
            tracing::info!(delivery = %row.id, channel = row.channel, %err, "delivery attempt failed");
        }
    }

    /// Drains until `stop`: after each full batch at once, otherwise when woken by
    /// `NOTIFY haven_outbox` or every poll interval (for due retries).
    pub async fn run(self, stop: CancellationToken) {
        let listen_pool = crate::pools::own_connection_pool(&self.db);
        let mut listener = match PgListener::connect_with(&listen_pool).await {
            Ok(mut l) => match l.listen(OUTBOX_CHANNEL).await {
                Ok(()) => Some(l),
                Err(_) => None,
            },
            Err(_) => None,
        };
        while !stop.is_cancelled() {
            let handled = match self.drain_once().await {
                Ok(n) => n,
                Err(err) => {
                    tracing::debug!(%err, "outbox drain failed");
                    0
                }
            };
            if handled as i64 >= self.settings.batch {
                continue;
            }
            let poll = tokio::time::sleep(self.settings.poll);
            match listener.as_mut() {
                Some(l) => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = poll => {}
                        note = l.recv() => if note.is_err() { listener = None; },
                    }
                }
                None => {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = poll => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let s = WorkerSettings {
            retry_base: Duration::from_secs(2),
            retry_cap: Duration::from_secs(60),
            ..WorkerSettings::default()
        };
        let first = backoff(&s, 1);
        assert!(first >= Duration::from_millis(1500) && first <= Duration::from_millis(2500));
        let third = backoff(&s, 3);
        assert!(third >= Duration::from_secs(6) && third <= Duration::from_secs(10));
        assert!(backoff(&s, 30) <= Duration::from_secs(60));
    }
}
