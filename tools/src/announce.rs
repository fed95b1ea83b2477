//! Announcements of committed changes: the `NOTIFY`s that wake the live-event listeners
//! (`haven_events`, with event ids) and the outbox workers (`haven_outbox`).
//!
//! A `NOTIFY` inside a write's transaction takes Postgres' cluster-wide notify lock at commit and
//! holds it across the commit's WAL flush, so every concurrent write that announces anything
//! queues behind the others' flushes. Instead, a call collects what it would announce
//! ([`Pending`], in its [`crate::Ctx`]), commits, and hands the lot to this process's
//! [`Announcer`]: one task that sends whatever has piled up in one statement, in a transaction
//! of its own that skips the flush (`synchronous_commit` off: losing a wake-up in a crash costs
//! nothing, the rows it points at are already durable). Under load many calls share one
//! `NOTIFY`; a call that rolls back announces nothing, as before.
//!
//! A viewer that missed an announcement (this process died between commit and send) loses no
//! event: `/events` resumes from the table with `Last-Event-ID`, and the outbox workers also poll.

use std::time::Duration;

use sqlx::PgPool;
use tokio::sync::mpsc;

/// The channel domain-event ids are announced on (a comma-separated list per `NOTIFY`).
pub const EVENTS_CHANNEL: &str = "haven_events";
/// The channel that wakes the notification outbox workers.
pub const OUTBOX_CHANNEL: &str = "haven_outbox";
/// The longest payload sent in one `NOTIFY` (Postgres refuses 8000 bytes and more).
const MAX_PAYLOAD: usize = 7_000;

/// What one call (or one batch of calls) has to announce once its transaction committed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Domain events written, in the order written.
    pub events: Vec<i64>,
    /// Whether outbox deliveries were queued.
    pub outbox: bool,
}

impl Pending {
    /// Whether there is nothing to announce.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && !self.outbox
    }

    /// Adds `other`'s announcements to these.
    fn absorb(&mut self, other: Pending) {
        self.events.extend(other.events);
        self.outbox |= other.outbox;
    }

    /// The `(channel, payload)` pairs that announce everything here: event ids comma-separated,
    /// split so no payload passes [`MAX_PAYLOAD`].
    pub fn notifications(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let mut payload = String::new();
        for id in &self.events {
            let id = id.to_string();
            if !payload.is_empty() && payload.len() + 1 + id.len() > MAX_PAYLOAD {
                out.push((EVENTS_CHANNEL, std::mem::take(&mut payload)));
            }
            if !payload.is_empty() {
                payload.push(',');
            }
            payload.push_str(&id);
        }
        if !payload.is_empty() {
            out.push((EVENTS_CHANNEL, payload));
        }
        if self.outbox {
            out.push((OUTBOX_CHANNEL, String::new()));
        }
        out
    }
}

/// Reads an [`EVENTS_CHANNEL`] payload: the event ids it lists (anything unreadable is skipped).
pub fn event_ids(payload: &str) -> Vec<i64> {
    payload
        .split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect()
}

/// This process's sender of announcements (cheap to clone; one task behind all clones).
#[derive(Debug, Clone)]
pub struct Announcer {
    tx: mpsc::UnboundedSender<Pending>,
}

impl Announcer {
    /// Starts the sending task on a connection of its own (outside `pool`'s limit, so a busy
    /// request pool never delays a wake-up). Must be called inside a Tokio runtime; the task
    /// ends when the last clone is dropped.
    pub fn start(pool: &PgPool) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(send_all(crate::pools::own_connection_pool(pool), rx));
        Announcer { tx }
    }

    /// Queues `pending` (of a committed transaction) for sending; returns at once.
    pub fn send(&self, pending: Pending) {
        if !pending.is_empty() {
            // The task only stops when every sender is gone, so this cannot fail while `self`
            // lives.
            let _ = self.tx.send(pending);
        }
    }
}

/// The statement that sends one batch: `$1` channels and `$2` payloads, pairwise.
const SEND_SQL: &str = "SELECT set_config('synchronous_commit', 'off', true), pg_notify(c, p)
                          FROM unnest($1::text[], $2::text[]) AS t(c, p)";

/// Sends everything queued, batching what arrived while the previous batch was on its way.
async fn send_all(pool: PgPool, mut rx: mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = rx.recv().await {
        let mut batch = first;
        while let Ok(more) = rx.try_recv() {
            batch.absorb(more);
        }
        let (channels, payloads): (Vec<&str>, Vec<String>) =
            batch.notifications().into_iter().unzip();
        // Two tries: a connection that broke (the database restarted) is replaced once.
        for attempt in 0..2 {
            match sqlx::query(SEND_SQL)
                .bind(&channels)
                .bind(&payloads)
                .execute(&pool)
                .await
            {
                Ok(_) => break,
                Err(err) if attempt == 0 => {
                    tracing::debug!(%err, "announcing committed changes failed; trying again");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(err) => tracing::warn!(
                    %err,
                    events = batch.events.len(),
                    "committed changes not announced: live viewers resume them from the table"
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_payloads_that_stay_under_the_limit() {
        let pending = Pending {
            events: (1_000_000_000_000..1_000_000_002_000).collect(),
            outbox: true,
        };
        let sent = pending.notifications();
        assert!(sent.len() > 2, "2,000 ids need more than one payload");
        assert!(sent.iter().all(|(_, p)| p.len() <= MAX_PAYLOAD));
        assert_eq!(sent.last().unwrap(), &(OUTBOX_CHANNEL, String::new()));
        let back: Vec<i64> = sent
            .iter()
            .filter(|(c, _)| *c == EVENTS_CHANNEL)
            .flat_map(|(_, p)| event_ids(p))
            .collect();
        assert_eq!(back, pending.events);
    }

    #[test]
    fn nothing_to_announce_sends_nothing() {
        assert!(Pending::default().notifications().is_empty());
        assert_eq!(event_ids("7"), vec![7]);
        assert_eq!(event_ids("x,8,"), vec![8]);
    }
}
