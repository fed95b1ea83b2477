//! What keeps one caller or one burst from taking the service down: per-caller request rates,
//! registration per IP, login lockout policy, bounded password hashing, and a cap on calls using
//! the database at once (calls past it answer 503 at once instead of queueing on the pool).

pub mod hashing;
pub mod rate;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::context::{Ctx, Transport};
use crate::error::{BurstLog, ToolError};
use crate::principal::Credential;
pub use hashing::HashGate;
pub use rate::{Rate, RateLimiter};

/// When failed logins lock an account (by email, existing or not) or an IP address.
#[derive(Debug, Clone, Copy)]
pub struct LoginPolicy {
    /// Failed logins for one email within `window` before it is locked (0 = never).
    pub max_failures_per_account: u32,
    /// Failed logins from one IP address within `window` before it is locked (0 = never).
    pub max_failures_per_ip: u32,
    /// How long failures are counted, and the first lockout's length; each further lockout of the
    /// same key doubles it (up to 16 times), until a successful login clears the account.
    pub window: Duration,
}

impl Default for LoginPolicy {
    fn default() -> Self {
        Self {
            max_failures_per_account: 5,
            max_failures_per_ip: 50,
            window: Duration::from_secs(900),
        }
    }
}

/// The settings [`Limits::new`] builds from.
#[derive(Debug, Clone, Copy)]
pub struct LimitSettings {
    /// Per signed-in user or API key, on REST and MCP calls.
    pub principal: Rate,
    /// Per IP address for anonymous REST and MCP calls.
    pub anonymous: Rate,
    /// `registerUser` per IP address.
    pub registrations: Rate,
    /// Failed-login lockout.
    pub login: LoginPolicy,
    /// Concurrent Argon2 computations (0 = number of cores).
    pub hash_workers: usize,
    /// Logins waiting for a hashing worker before more are refused with 503.
    pub hash_queue: usize,
    /// REST/MCP calls using the database at once (0 = only the pool bounds them).
    pub max_db_calls: usize,
}

impl Default for LimitSettings {
    /// No request-rate limits, default lockout and hashing bounds (in-process callers and tests
    /// that build `Services` themselves; the server passes its configuration).
    fn default() -> Self {
        Self {
            principal: Rate::UNLIMITED,
            anonymous: Rate::UNLIMITED,
            registrations: Rate::UNLIMITED,
            login: LoginPolicy::default(),
            hash_workers: 0,
            hash_queue: 64,
            max_db_calls: 0,
        }
    }
}

/// The live limits, shared by every call of one server process.
#[derive(Debug)]
pub struct Limits {
    /// Per signed-in user or API key.
    pub principal: RateLimiter,
    /// Per IP address, anonymous callers.
    pub anonymous: RateLimiter,
    /// `registerUser` per IP address.
    pub registrations: RateLimiter,
    /// Failed-login lockout policy.
    pub login: LoginPolicy,
    /// The password-hashing gate.
    pub hashing: HashGate,
    db_calls: Option<Arc<Semaphore>>,
}

impl Limits {
    /// Limits from `settings`.
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            principal: RateLimiter::new(settings.principal),
            anonymous: RateLimiter::new(settings.anonymous),
            registrations: RateLimiter::new(settings.registrations),
            login: settings.login,
            hashing: HashGate::new(settings.hash_workers, settings.hash_queue),
            db_calls: (settings.max_db_calls > 0)
                .then(|| Arc::new(Semaphore::new(settings.max_db_calls))),
        }
    }

    /// Counts a REST or MCP call against its caller's rate: the user (access token), the API key,
    /// or the IP address when anonymous. Other transports (agent runs, the server itself) pass.
    pub fn admit(&self, ctx: &Ctx) -> Result<(), ToolError> {
        if !matches!(ctx.transport, Transport::Rest | Transport::Mcp) {
            return Ok(());
        }
        let checked = match (&ctx.principal, &ctx.ip) {
            (Some(p), _) => match p.credential {
                Credential::ApiKey(key) => self.principal.check(&format!("key:{key}")),
                Credential::Session(_) | Credential::SecondFactorPending(_) => {
                    self.principal.check(&format!("user:{}", p.user_id))
                }
            },
            (None, Some(ip)) => self.anonymous.check(ip),
            (None, None) => Ok(()),
        };
        checked.map_err(|wait| {
            ToolError::rate_limited(
                format!("too many calls from this caller; retry in {wait} s"),
                wait,
            )
        })
    }

    /// Counts a registration from the caller's IP address.
    pub fn admit_registration(&self, ctx: &Ctx) -> Result<(), ToolError> {
        let Some(ip) = ctx.ip.as_deref() else {
            return Ok(());
        };
        self.registrations.check(ip).map_err(|wait| {
            ToolError::rate_limited(
                format!("too many accounts registered from this address; retry in {wait} s"),
                wait,
            )
        })
    }

    /// A slot for one REST/MCP call that is about to use the database, or `Unavailable` when all
    /// are taken: the server sheds load here before requests queue up on the pool.
    pub(crate) fn db_slot(&self, ctx: &Ctx) -> Result<Option<OwnedSemaphorePermit>, ToolError> {
        static LOG: BurstLog = BurstLog::new();
        let Some(slots) = &self.db_calls else {
            return Ok(None);
        };
        if !matches!(ctx.transport, Transport::Rest | Transport::Mcp) {
            return Ok(None);
        }
        match slots.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                LOG.warn(
                    "all database call slots taken; answering 503",
                    &"HAVEN_MAX_DB_CALLS",
                );
                Err(ToolError::unavailable(
                    "the server is busy right now; retry in a second",
                    1,
                ))
            }
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self::new(LimitSettings::default())
    }
}
