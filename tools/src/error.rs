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
//! | `RateLimited`   | 429  | too many calls                                               |
//! | `Internal`      | 500  | our fault; the message never carries internals               |
//! | `Unavailable`   | 503  | a provider we depend on (payments) is down; retry later      |
//!
//! Over MCP every kind becomes a tool result with `isError: true` and the same message, so an LLM
//! can read it and correct itself.

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
    /// Too many calls (429).
    RateLimited,
    /// A server fault (500).
    Internal,
    /// An upstream provider is unreachable (503); retrying later is safe.
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
}

impl ToolError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
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
        }
    }
    /// A 400 about one input field whose `sentence` already names it ("`checkIn` must be a date
    /// like 2027-03-10").
    pub fn field_said(field: impl Into<String>, sentence: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::BadInput,
            message: sentence.into(),
            field: Some(field.into()),
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
/// kind and message (so a duplicate email is a clean 409), a deadlock or serialization failure
/// [`ToolError::transient`], anything else a logged 500.
pub fn on_constraint(err: sqlx::Error, map: ConstraintMap<'_>) -> ToolError {
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
