//! Failed-login lockout, kept in Postgres so every replica enforces the same lock.
//!
//! Failures are counted per email (whether or not an account has it, so a lockout says nothing
//! about which emails exist) and per IP address. Once a key reaches its limit within the window it
//! is locked for the window, doubling with each further lockout (up to 16 times); while locked every
//! login for it is refused with `RateLimited` and `Retry-After`, the right password included,
//! without spending a hash on it. A successful login clears the email's failures.
//!
//! Attempts still being checked count too (`pending`): an attempt is refused (not locked) when
//! failures plus attempts in flight would pass the limit, so a burst of concurrent guesses cannot
//! slip past the lockout while earlier ones are still hashing (a count left by a crashed process
//! is dropped when the window rolls over). Every statement runs on the pool
//! outside the call's transaction: a failed login rolls that back, and the count must stay.

use crate::context::Ctx;
use crate::error::ToolError;

/// The keys one login attempt is counted under, with their limits.
fn keys<'a>(ctx: &'a Ctx, email: &'a str) -> Vec<(&'static str, &'a str, i32)> {
    let policy = ctx.services.limits.login;
    let mut keys = vec![("account", email, policy.max_failures_per_account)];
    if let Some(ip) = ctx.ip.as_deref() {
        keys.push(("ip", ip, policy.max_failures_per_ip));
    }
    keys.into_iter()
        .filter(|(_, _, max)| *max > 0)
        .map(|(scope, key, max)| (scope, key, i32::try_from(max).unwrap_or(i32::MAX)))
        .collect()
}

/// How a login attempt ended, for [`settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The password was right: the email's failures are forgotten.
    Succeeded,
    /// The password was wrong: a failure for the email and the address, locking at the limit.
    Failed,
    /// The check did not happen (e.g. 503): the attempt is given back.
    Abandoned,
}

/// Admits one attempt for the email and the caller's address, or refuses it with `RateLimited`:
/// while a key is locked (with the seconds left), or when its failures plus the attempts in flight
/// reach its limit. Admitted attempts must be [`settle`]d.
pub async fn begin(ctx: &Ctx, email: &str) -> Result<(), ToolError> {
    let window = ctx.services.limits.login.window.as_secs_f64();
    let mut admitted: Vec<(&str, &str)> = Vec::new();
    for (scope, key, max) in keys(ctx, email) {
        let (wait, room): (Option<f64>, bool) = sqlx::query_as(
            "INSERT INTO auth.login_throttle AS t (scope, key, pending, window_started_at)
             VALUES ($1, $2, 1, now())
             ON CONFLICT (scope, key) DO UPDATE SET
               pending = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                              THEN 1 ELSE t.pending + 1 END,
               failures = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                               THEN 0 ELSE t.failures END,
               window_started_at = CASE WHEN t.window_started_at < now() - make_interval(secs => $3)
                                        THEN now() ELSE t.window_started_at END
             RETURNING extract(epoch FROM locked_until - now())::float8,
                       failures + pending <= $4",
        )
        .bind(scope)
        .bind(key)
        .bind(window)
        .bind(max)
        .fetch_one(&ctx.services.db)
        .await?;
        let locked = wait.filter(|w| *w > 0.0);
        if locked.is_some() || !room {
            give_back(ctx, scope, key).await?;
            for (scope, key) in admitted {
                give_back(ctx, scope, key).await?;
            }
            return Err(match locked {
                Some(wait) => {
                    let wait = wait.ceil().max(1.0) as u64;
                    ToolError::rate_limited(
                        format!("too many failed logins; try again in {wait} s"),
                        wait,
                    )
                }
                None => {
                    ToolError::rate_limited("too many login attempts at once; retry in a second", 1)
                }
            });
        }
        admitted.push((scope, key));
    }
    Ok(())
}

/// Ends an attempt admitted by [`begin`].
pub async fn settle(ctx: &Ctx, email: &str, outcome: Outcome) -> Result<(), ToolError> {
    let window = ctx.services.limits.login.window.as_secs_f64();
    for (scope, key, max) in keys(ctx, email) {
        match outcome {
            Outcome::Abandoned => give_back(ctx, scope, key).await?,
            Outcome::Succeeded if scope == "account" => {
                sqlx::query(
                    "UPDATE auth.login_throttle
                     SET pending = greatest(pending - 1, 0), failures = 0, lockouts = 0
                     WHERE scope = $1 AND key = $2",
                )
                .bind(scope)
                .bind(key)
                .execute(&ctx.services.db)
                .await?;
            }
            Outcome::Succeeded => give_back(ctx, scope, key).await?,
            Outcome::Failed => {
                sqlx::query(
                    "UPDATE auth.login_throttle
                     SET pending = greatest(pending - 1, 0), failures = failures + 1
                     WHERE scope = $1 AND key = $2",
                )
                .bind(scope)
                .bind(key)
                .execute(&ctx.services.db)
                .await?;
                sqlx::query(
                    "UPDATE auth.login_throttle
                     SET locked_until = now() + make_interval(secs => $3 * power(2, least(lockouts, 4))),
                         lockouts = lockouts + 1, failures = 0, window_started_at = now()
                     WHERE scope = $1 AND key = $2 AND failures >= $4
                       AND (locked_until IS NULL OR locked_until <= now())",
                )
                .bind(scope)
                .bind(key)
                .bind(window)
                .bind(max)
                .execute(&ctx.services.db)
                .await?;
            }
        }
    }
    Ok(())
}

/// Takes an attempt in flight back from `scope`/`key`.
async fn give_back(ctx: &Ctx, scope: &str, key: &str) -> Result<(), ToolError> {
    sqlx::query(
        "UPDATE auth.login_throttle SET pending = greatest(pending - 1, 0)
         WHERE scope = $1 AND key = $2",
    )
    .bind(scope)
    .bind(key)
    .execute(&ctx.services.db)
    .await?;
    Ok(())
}
