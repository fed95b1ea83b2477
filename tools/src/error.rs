//! One error type for every operation, with a documented mapping to HTTP statuses and MCP results.
//!
//! | kind            | HTTP | when                                                         |
//! |-----------------|------|--------------------------------------------------------------|
//! | `BadInput`      | 400  | unknown/missing/ill-typed/out-of-range or server-owned field |
//! | `Unauthenticated` | 401 | no or invalid credentials where the operation needs them    |
//! | `Forbidden`     | 403  | authenticated, but the role may not do this                  |
//! | `NotFound`      | 404  | absent, or present but hidden from this caller (no leaks)    |
//! | `Conflict`      | 409  | uniqueness or stale `recordVersion`                          |
//! | `Unprocessable` | 422  | well-formed but violates a business rule                     |
//! | `RateLimited`   | 429  | too many calls, or logins locked after failures (Retry-After) |
//! | `Internal`      | 500  | our fault; the message never carries internals               |
//! | `Unavailable`   | 503  | the database or a provider is down, or the server is full (Retry-After) |
//!
//! Over MCP every kind becomes a tool result with `isError: true` and the text `Kind: message`
//! (e.g. `Unavailable: …`, `RateLimited: …`), so an LLM can read it and correct itself.
//! `RateLimited` and `Unavailable` carry [`ToolError::retry_after`], which REST sends as the
//! `Retry-After` header.

use serde::Serialize;

/// What went wrong, coarse enough to map onto HTTP and precise enough for a client to branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ErrorKind {
    /// The request itself is wrong (400).
    BadInput,
    /// Credentials are missing or invalid (401).
    Unauthenticated,
    /// The caller's role may not do this (403).
    Forbidden,
    /// Not there, or not visible to this caller (404).
    NotFound,
    /// Clashes with existing state (409).
    Conflict,
    /// Violates a business rule (422).
    Unprocessable,
    /// Too many calls, or logins locked after repeated failures (429); retry after the delay.
    RateLimited,
    /// A server fault (500).
    Internal,
    /// The database or an upstream provider is unreachable, or the server is at capacity (503);
    /// retrying later is safe.
    Unavailable,
}

impl ErrorKind {
    /// The HTTP status for this kind (see the module table).
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadInput => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::Conflict => 409,
            ErrorKind::Unprocessable => 422,
            ErrorKind::RateLimited => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Unavailable => 503,
        }
    }
}

/// An operation's failure: a kind, a message written for the caller (human or LLM), and the input
/// field at fault when there is one.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ToolError {
    /// What went wrong.
    pub kind: ErrorKind,
    /// A sentence the caller can act on.
    pub message: String,
    /// The input field at fault, when one is.
    pub field: Option<String>,
    /// Seconds the caller should wait before retrying (`RateLimited`, `Unavailable`).
    pub retry_after: Option<u64>,
}

impl ToolError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }
    /// A 400 about one input field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            kind: ErrorKind::BadInput,
            message: format!("invalid `{field}`: {message}"),
            field: Some(field),
            retry_after: None,
        }
    }
    /// A 400 about one input field whose `sentence` already names it ("`checkIn` must be a date
    /// like 2027-03-10").
    pub fn field_said(field: impl Into<String>, sentence: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadInput,
            message: sentence.into(),
            field: Some(field.into()),
            retry_after: None,
        }
    }
    /// A 400 without a single field to blame.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadInput, message)
    }
    /// A 401.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, message)
    }
    /// A 403.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }
    /// A 404 naming what was looked for, e.g. `not_found("user")`.
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} not found"))
    }
    /// A 409.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// A 422.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unprocessable, message)
    }
    /// A 429 telling the caller to wait `retry_after` seconds (at least one).
    pub fn rate_limited(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(ErrorKind::RateLimited, message)
        }
    }
    /// A 503 telling the caller to retry in `retry_after` seconds (at least one).
    pub fn unavailable(message: impl Into<String>, retry_after: u64) -> Self {
        Self {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(ErrorKind::Unavailable, message)
        }
    }
    /// The 503 for a database that cannot be reached or has no free connection. Logged as one
    /// warning per burst (see [`BurstLog`]), not once per request.
    pub fn database_unavailable(cause: impl std::fmt::Display) -> Self {
        static LOG: BurstLog = BurstLog::new();
        LOG.warn("database unavailable; answering 503", &cause);
        Self::unavailable(
            "the database is unavailable or busy right now; retry in a few seconds",
            2,
        )
    }
    /// The delay to send as `Retry-After`: the error's own, else one second for the kinds that
    /// are worth retrying.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self.kind {
            ErrorKind::RateLimited | ErrorKind::Unavailable => Some(self.retry_after.unwrap_or(1)),
            _ => None,
        }
    }
    /// A 500 whose cause is logged, never shown.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(ErrorKind::Internal, "internal error; it has been logged")
    }
    /// The 409 for an update that carried an outdated `recordVersion`.
    pub fn stale_version(what: &str) -> Self {
        Self::conflict(format!(
            "{what} was changed by someone else (recordVersion is stale); read it again and retry"
        ))
    }
    /// Refuses an update whose `recordVersion` (`sent`, when given) is not the row's `current`
    /// one, with [`ToolError::stale_version`].
    pub fn check_version(sent: Option<i32>, current: i32, what: &str) -> Result<(), Self> {
        if sent.is_some_and(|v| v != current) {
            return Err(Self::stale_version(what));
        }
        Ok(())
    }
}

/// SQLSTATEs of a transaction Postgres aborted only because of concurrent ones: `40P01` (deadlock
/// detected) and `40001` (serialization failure). Running the whole transaction again is safe.
const TRANSIENT_CODES: &[&str] = &["40P01", "40001"];

/// The message of [`ToolError::transient`]; also how [`ToolError::is_transient`] recognises it.
const TRANSIENT_MESSAGE: &str =
    "the change collided with concurrent changes to the same records and was not applied; retry it";

impl ToolError {
    /// The 409 for a transaction Postgres aborted to break a deadlock or a serialization conflict.
    /// [`crate::registry::Operation::invoke`] runs such an operation again a few times before a
    /// caller ever sees it.
    pub fn transient() -> Self {
        Self::conflict(TRANSIENT_MESSAGE)
    }
    /// Whether this is [`ToolError::transient`]: nothing was written and a retry may succeed.
    pub fn is_transient(&self) -> bool {
        self.kind == ErrorKind::Conflict && self.message == TRANSIENT_MESSAGE
    }
}

/// A constraint name and the error its violation means, for [`on_constraint`].
pub type ConstraintMap<'a> = &'a [(&'a str, ErrorKind, &'a str)];

/// Turns a database error into a [`ToolError`]: a violated constraint listed in `map` becomes that
/// kind and message (so a duplicate email is a clean 409), an unreachable or exhausted database a
/// 503 (see [`is_unavailable`]), a deadlock or serialization failure [`ToolError::transient`],
/// anything else a logged 500.
pub fn on_constraint(err: sqlx::Error, map: ConstraintMap<'_>) -> ToolError {
    if is_unavailable(&err) {
        return ToolError::database_unavailable(err);
    }
    if let sqlx::Error::Database(db) = &err {
        if db
            .code()
            .is_some_and(|c| TRANSIENT_CODES.contains(&c.as_ref()))
        {
            tracing::debug!(cause = %db, "transaction aborted by a concurrent one");
            return ToolError::transient();
        }
        if let Some(name) = db.constraint() {
            if let Some((_, kind, msg)) = map.iter().find(|(c, _, _)| *c == name) {
                return ToolError::new(*kind, *msg);
            }
        }
    }
    ToolError::internal(err)
}

impl From<sqlx::Error> for ToolError {
    fn from(err: sqlx::Error) -> Self {
        on_constraint(err, &[])
    }
}

/// Whether `err` means the database is out of reach rather than the query being wrong: no free
/// pooled connection in time, a refused or broken socket, or the server shutting down or refusing
/// connections (SQLSTATE classes 08 and 53, and 57P01–57P03).
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("53") || code.starts_with("57P0")
        }),
        _ => false,
    }
}

/// A warning logged at most once per window for a burst of the same failure, with the number of
/// repeats it stood for, so an outage or overload writes a few lines instead of one per request.
pub struct BurstLog {
    last: std::sync::atomic::AtomicU64,
    suppressed: std::sync::atomic::AtomicU64,
}

impl BurstLog {
    /// How long one logged line covers.
    const WINDOW_SECS: u64 = 10;

    /// A log with nothing logged yet (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            last: std::sync::atomic::AtomicU64::new(0),
            suppressed: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Logs `what` with `cause` unless a line was logged in the current window; counts it then.
    pub fn warn(&self, what: &str, cause: &dyn std::fmt::Display) {
        use std::sync::atomic::Ordering;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= Self::WINDOW_SECS
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let repeats = self.suppressed.swap(0, Ordering::Relaxed);
            tracing::warn!(%cause, repeats_since_last_line = repeats, "{what}");
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Default for BurstLog {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_pool_or_broken_socket_is_unavailable_not_internal() {
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = ToolError::from(sqlx::Error::Io(io));
        assert_eq!(err.kind, ErrorKind::Unavailable);
        assert_eq!(err.retry_after_secs(), Some(2));
        assert!(!is_unavailable(&sqlx::Error::RowNotFound));
        assert_eq!(ToolError::bad_input("x").retry_after_secs(), None);
    }
}
