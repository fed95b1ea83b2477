//! Failed-login lockout, kept in Postgres so every replica enforces the same lock.
//!
//! Failures are counted per email (whether or not an account has it, so a lockout says nothing
//! about which emails exist) and per IP address. Once a key reaches its limit within the window it
//! is locked for the window, doubling with each further lockout; while locked every login for it is
//! refused with `RateLimited` and `Retry-After`, the right password included, without spending a
//! hash on it. A successful login clears the account's record (not the IP's). Every statement runs
//! on the pool outside the call's transaction: a failed login rolls that back, the count must stay.

use crate::context::Ctx;
use crate::error::ToolError;

/// The keys one login attempt is counted under, with their limits.
fn keys<'a>(ctx: &'a Ctx, email: &'a str) -> Vec<(&'static str, &'a str, u32)> {
    let policy = ctx.services.limits.login;
    let mut keys = vec![("account", email, policy.max_failures_per_account)];
    if let Some(ip) = ctx.ip.as_deref() {
        keys.push(("ip", ip, policy.max_failures_per_ip));
    }
    keys.into_iter().filter(|(_, _, max)| *max > 0).collect()
}

/// Refuses the attempt with `RateLimited` while the email or the caller's address is locked.
pub async fn check(ctx: &Ctx, email: &str) -> Result<(), ToolError> {
    for (scope, key, _) in keys(ctx, email) {
        let wait: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM locked_until - now())::float8 FROM auth.login_throttle
             WHERE scope = $1 AND key = $2 AND locked_until > now()",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&ctx.services.db)
        .await?;
        if let Some(wait) = wait {
            let wait = wait.ceil().max(1.0) as u64;
            return Err(ToolError::rate_limited(
                format!("too many failed logins; try again in {wait} s"),
                wait,
            ));
        }
    }
    Ok(())
}

/// Counts a failed attempt for the email and the caller's address, locking whichever reached its
/// limit.
pub async fn record_failure(ctx: &Ctx, email: &str) -> Result<(), ToolError> {
    let window = ctx.services.limits.login.window.as_secs_f64();
    for (scope, key, max) in keys(ctx, email) {
        sqlx::query(
            "INSERT INTO auth.login_throttle AS t (scope, key, failures, window_started_at)
             VALUES ($1, $2, 1, now())
             ON CONFLICT (scope, key) DO UPDATE SET
               failures = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                               THEN 1 ELSE t.failures + 1 END,
               window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                                        THEN now() ELSE t.window_started_at END",
        )
        .bind(scope)
        .bind(key)
        .bind(window)
        .execute(&ctx.services.db)
        .await?;
        sqlx::query(
            "UPDATE auth.login_throttle
             SET locked_until = now() + make_interval(secs => $3 * power(2, least(lockouts, 4))),
                 lockouts = lockouts + 1, failures = 0, window_started_at = now()
             WHERE scope = $1 AND key = $2 AND failures >= $4",
        )
        .bind(scope)
        .bind(key)
        .bind(window)
        .bind(max as i32)
        .execute(&ctx.services.db)
        .await?;
    }
    Ok(())
}

/// Forgets the email's failures after a successful login.
pub async fn clear(ctx: &Ctx, email: &str) -> Result<(), ToolError> {
    sqlx::query("DELETE FROM auth.login_throttle WHERE scope = 'account' AND key = $1")
        .bind(email)
        .execute(&ctx.services.db)
        .await?;
    Ok(())
}
