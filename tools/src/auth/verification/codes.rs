//! Secret codes: six random digits, stored only as a salted SHA-256, one live code per user and
//! purpose (per session for 2FA), a resend window, an expiry, and a bounded number of wrong
//! guesses after which the code is dead. Compared in constant time.

use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::Purpose;
use crate::context::Ctx;
use crate::error::ToolError;

/// Wrong guesses a code survives; the next one kills it.
pub const MAX_ATTEMPTS: i32 = 5;

/// A freshly issued code (the plaintext exists only here and in the message that carries it).
#[derive(Debug)]
pub struct Issued {
    /// The six digits.
    pub code: String,
    /// When it was issued.
    pub date: DateTime<Utc>,
    /// Seconds it stays valid.
    pub expire_time: i64,
}

fn digest(id: Uuid, code: &str) -> String {
    Sha256::digest(format!("{id}:{code}").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Issues a code for `(purpose, user, session)`, superseding the live one, unless one was issued
/// within the resend window (403 "too frequent", as the spec says, with the seconds to wait).
pub async fn issue(
    db: &mut PgConnection,
    ctx: &Ctx,
    purpose: Purpose,
    user_id: Uuid,
    session_id: Option<Uuid>,
) -> Result<Issued, ToolError> {
    let settings = &ctx.services.settings.verification;
    // Serialises starts for one user, so two at once cannot both pass the resend check.
    sqlx::query("SELECT 1 FROM auth.users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .execute(&mut *db)
        .await?;
    let waited: Option<f64> = sqlx::query_scalar(
        "SELECT extract(epoch FROM now() - max(created_at))::float8 FROM auth.verification_codes
         WHERE purpose = $1 AND user_id = $2 AND session_id IS NOT DISTINCT FROM $3",
    )
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(session_id)
    .fetch_one(&mut *db)
    .await?;
    let window = settings.resend_window_secs as f64;
    if let Some(waited) = waited.filter(|w| *w < window) {
        return Err(ToolError::forbidden(format!(
            "a code was sent too recently (too frequent): wait {} seconds before asking again",
            (window - waited).ceil() as i64
        )));
    }
    sqlx::query(
        "UPDATE auth.verification_codes SET used_at = now()
         WHERE purpose = $1 AND user_id = $2 AND session_id IS NOT DISTINCT FROM $3 AND used_at IS NULL",
    )
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(session_id)
    .execute(&mut *db)
    .await?;
    let code = format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32));
    let id = Uuid::new_v4();
    let expire_time = purpose.lifetime_secs(settings);
    let date: DateTime<Utc> = sqlx::query_scalar(
        "INSERT INTO auth.verification_codes (id, purpose, user_id, session_id, code_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6)) RETURNING created_at",
    )
    .bind(id)
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(session_id)
    .bind(digest(id, &code))
    .bind(expire_time as f64)
    .fetch_one(&mut *db)
    .await?;
    Ok(Issued {
        code,
        date,
        expire_time,
    })
}

/// Redeems `code` for `(purpose, user, session)`: the live code must exist, be unexpired and
/// match; it is then used up. A wrong guess counts against the code on a connection of its own
/// (it must stick although the call fails), and the fifth kills it.
pub async fn redeem(
    db: &mut PgConnection,
    ctx: &Ctx,
    purpose: Purpose,
    user_id: Uuid,
    session_id: Option<Uuid>,
    code: &str,
) -> Result<(), ToolError> {
    let row: Option<(Uuid, String, bool)> = sqlx::query_as(
        "SELECT id, code_hash, expires_at <= now() FROM auth.verification_codes
         WHERE purpose = $1 AND user_id = $2 AND session_id IS NOT DISTINCT FROM $3 AND used_at IS NULL",
    )
    .bind(purpose.as_str())
    .bind(user_id)
    .bind(session_id)
    .fetch_optional(&mut *db)
    .await?;
    let Some((id, stored, expired)) = row else {
        return Err(ToolError::forbidden(format!(
            "there is no ongoing {} for this account: start it first",
            purpose.words()
        )));
    };
    if expired {
        return Err(ToolError::forbidden(
            "the code has expired: start again to get a new one",
        ));
    }
    let matches: bool = digest(id, code).as_bytes().ct_eq(stored.as_bytes()).into();
    if !matches {
        let attempts: i32 = sqlx::query_scalar(
            "UPDATE auth.verification_codes SET attempts = attempts + 1,
                 used_at = CASE WHEN attempts + 1 >= $2 THEN now() END
             WHERE id = $1 RETURNING attempts",
        )
        .bind(id)
        .bind(MAX_ATTEMPTS)
        .fetch_one(&ctx.services.db)
        .await?;
        return Err(ToolError::forbidden(if attempts >= MAX_ATTEMPTS {
            "the code does not match, and too many wrong codes were tried: start again to get a new one"
                .to_string()
        } else {
            format!(
                "the code does not match ({} tries left)",
                MAX_ATTEMPTS - attempts
            )
        }));
    }
    // Single use even against a concurrent redeem: only one of them finds it unused. (The row
    // is not locked before this point, so the wrong-guess count above never waits on us.)
    let used: Option<Uuid> = sqlx::query_scalar(
        "UPDATE auth.verification_codes SET used_at = now() WHERE id = $1 AND used_at IS NULL RETURNING id",
    )
    .bind(id)
    .fetch_optional(&mut *db)
    .await?;
    used.map(|_| ()).ok_or_else(|| {
        ToolError::forbidden("the code was already used: start again to get a new one")
    })
}

/// Kills the live 2FA codes of a session (an attempt naming the wrong session invalidates it).
pub async fn invalidate_session_codes(ctx: &Ctx, session_id: Uuid) -> Result<(), ToolError> {
    sqlx::query(
        "UPDATE auth.verification_codes SET used_at = now() WHERE session_id = $1 AND used_at IS NULL",
    )
    .bind(session_id)
    .execute(&ctx.services.db)
    .await?;
    Ok(())
}
