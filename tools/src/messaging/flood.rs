//! Spam limits: how many messages one user may post a minute and how many inquiry threads (threads
//! without a reservation) they may open an hour. Counted from the stored rows themselves, under a
//! per-user transaction lock, so the limit holds across every replica and concurrent calls of one
//! user cannot slip past it together; past it the call answers 429 with `Retry-After`.

use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;

/// One limit: at most `max` rows of `what` per `window_secs`, counted by `sql` (which takes the
/// user as `$1` and the limit as `$2`, and selects the row times of the user's newest rows).
struct Limit {
    max: u32,
    window_secs: i64,
    key: &'static str,
    times: &'static str,
    what: &'static str,
}

async fn admit(ctx: &Ctx, user: Uuid, limit: Limit) -> Result<(), ToolError> {
    if limit.max == 0 {
        return Ok(());
    }
    let mut db = ctx.db().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
        .bind(format!("{}:{user}", limit.key))
        .execute(&mut *db)
        .await?;
    let sql = format!(
        "SELECT count(*), COALESCE(EXTRACT(EPOCH FROM (min(at) + make_interval(secs => $3) - now()))::float8, 0)
           FROM ({} ORDER BY at DESC LIMIT $2) recent
          WHERE at > now() - make_interval(secs => $3)",
        limit.times
    );
    let (count, wait): (i64, f64) = sqlx::query_as(&sql)
        .bind(user)
        .bind(limit.max as i64)
        .bind(limit.window_secs as f64)
        .fetch_one(&mut *db)
        .await?;
    if count >= limit.max as i64 {
        let wait = wait.ceil().max(1.0) as u64;
        return Err(ToolError::rate_limited(
            format!(
                "too many {}: at most {} per {}; retry in {wait} s",
                limit.what,
                limit.max,
                if limit.window_secs == 60 {
                    "minute"
                } else {
                    "hour"
                }
            ),
            wait,
        ));
    }
    Ok(())
}

/// Refuses `sender`'s next message when they posted the configured number within the last minute.
pub async fn admit_message(ctx: &Ctx, sender: Uuid) -> Result<(), ToolError> {
    admit(
        ctx,
        sender,
        Limit {
            max: ctx.services.settings.messages_per_minute,
            window_secs: 60,
            key: "messaging.messages",
            times: "SELECT sent_at AS at FROM messaging.messages WHERE sender_id = $1",
            what: "messages",
        },
    )
    .await
}

/// Refuses `user`'s next inquiry thread when they opened the configured number within the hour.
pub async fn admit_inquiry(ctx: &Ctx, user: Uuid) -> Result<(), ToolError> {
    admit(
        ctx,
        user,
        Limit {
            max: ctx.services.settings.inquiries_per_hour,
            window_secs: 3600,
            key: "messaging.inquiries",
            times: "SELECT created_at AS at FROM messaging.message_threads WHERE owner_id = $1 AND is_inquiry",
            what: "new inquiry threads",
        },
    )
    .await
}
