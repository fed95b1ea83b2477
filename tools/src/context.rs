//! What an operation's handler gets: the caller, the shared services, and one database
//! transaction that the dispatcher commits (with the audit row) only when the handler succeeds.

use std::any::Any;
use std::sync::Arc;

use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::{Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::announce::{Announcer, Pending};
use crate::auth::tokens::TokenService;
use crate::booking::payments::provider::PaymentProvider;
use crate::error::ToolError;
use crate::limits::Limits;
use crate::principal::Principal;
use crate::types::Page;

/// Process-wide services every handler may use. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    /// The database pool.
    pub db: PgPool,
    /// Signs and verifies access tokens.
    pub tokens: Arc<TokenService>,
    /// Settings handlers need.
    pub settings: Arc<Settings>,
    /// The payment provider (`local` unless Stripe is configured).
    pub payments: Arc<dyn PaymentProvider>,
    /// A slot for services of crates built on top of this one (the agent hub's registry and LLM
    /// client for `runAgent`): haven-tools cannot name their types (they depend on it), so the
    /// server stores them here and their handlers downcast. `None` outside the full server.
    pub extension: Option<Arc<dyn Any + Send + Sync>>,
    /// Request rates, login lockout, hashing and database-call bounds.
    pub limits: Arc<Limits>,
    /// Sends the `NOTIFY`s of committed calls ([`Ctx::commit`]).
    pub announcer: Announcer,
}

/// Operation-level settings (the server's config passes these down).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest accepted avatar file, in bytes.
    pub max_avatar_bytes: usize,
    /// Upper bound for `pageRowCount`.
    pub max_page_rows: u32,
    /// The guest service fee, in hundredths of a percent (1000 = 10 %).
    pub guest_fee_hundredths: i64,
    /// The host commission taken from the payout, in hundredths of a percent (300 = 3 %).
    pub host_fee_hundredths: i64,
    /// How long an unpaid pending reservation holds its nights once payment is due.
    pub payment_window: chrono::Duration,
    /// How long a request to book a manual-approval listing waits for the host.
    pub approval_window: chrono::Duration,
    /// After this long a lone review is released even if the other side never wrote one.
    pub review_blind_window: chrono::Duration,
    /// Messages one user may post per minute (0 = unlimited): the flood limit.
    pub messages_per_minute: u32,
    /// Inquiry threads (no reservation) one user may open per hour (0 = unlimited).
    pub inquiries_per_hour: u32,
    /// Largest uploaded message attachment, in bytes.
    pub max_attachment_bytes: usize,
    /// Verification codes, login verification and 2FA rules.
    pub verification: crate::auth::verification::VerificationSettings,
    /// Which notification channels are configured and how often a delivery is tried.
    pub notifications: crate::notification::enqueue::NotificationSettings,
}

impl Transport {
    /// The face's name as the audit log stores it.
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Rest => "rest",
            Transport::Mcp => "mcp",
            Transport::Agent => "agent",
            Transport::Internal => "internal",
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            max_avatar_bytes: 1024 * 1024,
            max_page_rows: 100,
            guest_fee_hundredths: 1000,
            host_fee_hundredths: 300,
            payment_window: chrono::Duration::minutes(30),
            approval_window: chrono::Duration::hours(24),
            review_blind_window: chrono::Duration::days(14),
            messages_per_minute: 30,
            inquiries_per_hour: 10,
            max_attachment_bytes: 1024 * 1024,
            verification: Default::default(),
            notifications: Default::default(),
        }
    }
}

/// Which face of the registry a call arrived through (the agent hub logs it as a run's source).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// A REST route.
    Rest,
    /// An MCP `tools/call` (Streamable HTTP, legacy SSE or stdio).
    Mcp,
    /// A tool call made by an agent during a run.
    Agent,
    /// The server itself (sweepers, maintenance, tests).
    #[default]
    Internal,
}

/// How far a long call has got, for clients that asked to be told (MCP `notifications/progress`).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Work done so far; grows with every report.
    pub progress: f64,
    /// The total, when known.
    pub total: Option<f64>,
    /// What is happening, in words.
    pub message: String,
}

/// Where a call's progress reports go (the transport that can carry them).
pub type ProgressSink = Arc<dyn Fn(Progress) + Send + Sync>;

/// Per-call context handed to a handler.
#[derive(Clone)]
pub struct Ctx {
    /// Shared services.
    pub services: Services,
    /// The caller, if authenticated.
    pub principal: Option<Principal>,
    /// The request id for log correlation.
    pub request_id: String,
    /// The caller's IP address, when known (for the audit log).
    pub ip: Option<String>,
    /// The caller's preferred languages from `Accept-Language`, best first (e.g. `["de", "en"]`).
    pub languages: Vec<String>,
    /// The face the call arrived through.
    pub transport: Transport,
    /// The agent run making this call, when an agent calls the operation (for the audit row).
    pub agent_execution: Option<Uuid>,
    /// Cancelled when the client gives up on the call (MCP `notifications/cancelled`, a closed
    /// response stream); [`crate::Operation::invoke`] then stops the handler and rolls back.
    cancel: CancellationToken,
    /// Where progress reports go, when the client asked for them.
    progress: Option<ProgressSink>,
    /// The call runs without a transaction (a read-only operation): plain statements on one
    /// pooled connection, no `BEGIN`/`COMMIT` round trips. Set by [`crate::Operation::invoke`].
    plain: bool,
    tx: Arc<Mutex<Option<CallConn>>>,
    /// Users whose principals this call's committed writes changed (read by
    /// [`crate::audit::record`] before the commit; the principal cache forgets them after it).
    pub(crate) principals_changed: Arc<std::sync::Mutex<Vec<Uuid>>>,
    /// What the call's transaction will announce once committed (events written, outbox
    /// deliveries queued): sent by [`Ctx::commit`], forgotten by [`Ctx::rollback`].
    pending: Arc<std::sync::Mutex<Pending>>,
    db_slot: Arc<std::sync::OnceLock<tokio::sync::OwnedSemaphorePermit>>,
}

/// A borrowed connection inside the call's transaction.
pub type Db<'a> = tokio::sync::MappedMutexGuard<'a, PgConnection>;

/// The one connection a call holds from its first statement to its end: a transaction for calls
/// that may write, a plain pooled connection for read-only ones.
pub(crate) enum CallConn {
    /// Begun on first use; the dispatcher commits it (dropping it rolls back).
    Tx(Transaction<'static, Postgres>),
    /// Statements run one by one (each its own snapshot), for read-only operations.
    Plain(PoolConnection<Postgres>),
}

/// A pooled connection known to answer: one that fails a ping is closed and another taken (at
/// most once per pooled connection, then a fresh one), so a call retried after its connection
/// broke (the database restarted) does not land on another dead one.
pub async fn acquire_checked(pool: &PgPool) -> Result<PoolConnection<Postgres>, sqlx::Error> {
    for _ in 0..=pool.size() {
        let mut conn = pool.acquire().await?;
        if conn.ping().await.is_ok() {
            return Ok(conn);
        }
        conn.close_on_drop();
    }
    pool.acquire().await
}

/// Whether `err` says the connection broke under a statement (not that none could be had): the
/// case worth one more try on a checked connection.
fn connection_broke(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
        || matches!(err, sqlx::Error::Database(db) if db.code().is_some_and(|c| c.starts_with("57P0")))
}

impl Ctx {
    /// The page a list input asks for (`pageNumber`, `pageRowCount`), checked against the
    /// configured maximum page size.
    pub fn page(&self, number: Option<u32>, rows: Option<u32>) -> Result<Page, ToolError> {
        Page::new(number, rows, self.services.settings.max_page_rows)
    }

    /// A context for one call.
    pub fn new(
        services: Services,
        principal: Option<Principal>,
        request_id: String,
        ip: Option<String>,
    ) -> Self {
        Self {
            services,
            principal,
            request_id,
            ip,
            languages: Vec::new(),
            transport: Transport::Internal,
            agent_execution: None,
            cancel: CancellationToken::new(),
            progress: None,
            plain: false,
            tx: Arc::new(Mutex::new(None)),
            principals_changed: Arc::default(),
            pending: Arc::default(),
            db_slot: Arc::default(),
        }
    }

    /// The same context with the caller's preferred languages (from `Accept-Language`).
    pub fn with_languages(mut self, languages: Vec<String>) -> Self {
        self.languages = languages;
        self
    }

    /// The same context marked as arriving through `transport`.
    pub fn via(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The same context marked as a tool call of the agent run `execution` (its audit rows name
    /// the run).
    pub fn in_agent_run(mut self, execution: Uuid) -> Self {
        self.agent_execution = Some(execution);
        self
    }

    /// The same context, cancelled when `token` is (the client gave up on the call).
    pub fn with_cancellation(mut self, token: CancellationToken) -> Self {
        self.cancel = token;
        self
    }

    /// The same context, reporting progress to `sink`.
    pub fn with_progress(mut self, sink: ProgressSink) -> Self {
        self.progress = Some(sink);
        self
    }

    /// The token that says the client gave up on this call.
    pub fn cancellation(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Tells the client how far the call has got, when it asked to be told; otherwise nothing.
    pub fn report_progress(&self, progress: Progress) {
        if let Some(sink) = &self.progress {
            sink(progress);
        }
    }

    /// Whether the client asked for progress reports.
    pub fn wants_progress(&self) -> bool {
        self.progress.is_some()
    }

    /// Whether the caller is an admin or superAdmin.
    pub fn is_admin(&self) -> bool {
        self.principal
            .as_ref()
            .is_some_and(|p| p.role >= crate::principal::Role::Admin)
    }

    /// The same context running without a transaction when `read_only` (see [`CallConn::Plain`]).
    pub(crate) fn plain_when(mut self, read_only: bool) -> Self {
        self.plain = read_only;
        self
    }

    /// The call's connection, taken on first use and kept to the end of the call: a transaction
    /// for operations that may write (everything they write goes through it, so a failed call
    /// leaves the database unchanged), a plain connection for read-only operations. A REST or
    /// MCP call first takes one of the database call slots (held until the call ends), or fails
    /// `Unavailable` when none is free.
    pub async fn db(&self) -> Result<Db<'_>, ToolError> {
        let mut guard: MutexGuard<'_, Option<CallConn>> = self.tx.lock().await;
        if guard.is_none() {
            if self.db_slot.get().is_none() {
                if let Some(slot) = self.services.limits.db_slot(self)? {
                    let _ = self.db_slot.set(slot);
                }
            }
            let pool = &self.services.db;
            *guard = Some(if self.plain {
                CallConn::Plain(pool.acquire().await?)
            } else {
                match pool.begin().await {
                    Ok(tx) => CallConn::Tx(tx),
                    // The pooled connection was dead (the database restarted): nothing was sent
                    // but BEGIN, so begin again on one that answers.
                    Err(err) if connection_broke(&err) => {
                        CallConn::Tx(Transaction::begin(acquire_checked(pool).await?, None).await?)
                    }
                    Err(err) => return Err(err.into()),
                }
            });
        }
        Ok(MutexGuard::map(guard, |slot| match slot {
            Some(CallConn::Tx(tx)) => &mut **tx,
            Some(CallConn::Plain(conn)) => &mut **conn,
            None => unreachable!("the connection was just taken"),
        }))
    }

    /// Takes the transaction out for the dispatcher to finish (commit or drop = rollback); a
    /// read-only call's plain connection goes back to the pool (`None`).
    pub(crate) async fn take_tx(&self) -> Option<Transaction<'static, Postgres>> {
        match self.tx.lock().await.take() {
            Some(CallConn::Tx(tx)) => Some(tx),
            Some(CallConn::Plain(_)) | None => None,
        }
    }

    /// Commits the call's transaction (a read-only call has none), then acts on what it
    /// changed: this process's principal cache forgets the users whose principals changed
    /// (other replicas hear it from the database's own `NOTIFY`), and the events and outbox
    /// deliveries it wrote are announced ([`crate::announce`]).
    pub async fn commit(&self) -> Result<(), ToolError> {
        let Some(tx) = self.take_tx().await else {
            return Ok(());
        };
        tx.commit().await?;
        let changed = std::mem::take(
            &mut *self
                .principals_changed
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        for user in changed {
            self.services.tokens.principals().forget_user(user);
        }
        let pending = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        self.services.announcer.send(pending);
        Ok(())
    }

    /// Rolls the call's transaction back (drops it) and forgets what it would have announced,
    /// for a run that is about to be tried again.
    pub(crate) async fn rollback(&self) {
        drop(self.take_tx().await);
        *self.pending.lock().unwrap_or_else(|e| e.into_inner()) = Pending::default();
        self.principals_changed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }

    /// Notes domain event `id`, written in the call's transaction, for announcing at commit.
    pub(crate) fn announce_event(&self, id: i64) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .events
            .push(id);
    }

    /// Notes that the call's transaction queued outbox deliveries (the workers are woken at
    /// commit).
    pub(crate) fn wake_outbox(&self) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .outbox = true;
    }

    /// Ends the call's use of its connection and says whether it held one: a read-only call
    /// that failed `Unavailable` after taking a connection lost it under a statement.
    pub(crate) async fn release(&self) -> bool {
        self.tx.lock().await.take().is_some()
    }

    /// For a retry after the connection broke: the next connection is a checked one.
    pub(crate) async fn take_checked(&self) -> Result<(), ToolError> {
        let conn = acquire_checked(&self.services.db).await?;
        let mut guard = self.tx.lock().await;
        *guard = Some(if self.plain {
            CallConn::Plain(conn)
        } else {
            CallConn::Tx(Transaction::begin(conn, None).await?)
        });
        Ok(())
    }

    /// The authenticated caller, or a 401.
    pub fn caller(&self) -> Result<&Principal, ToolError> {
        self.principal.as_ref().ok_or_else(|| {
            ToolError::unauthenticated(
                "this operation needs a login: send an access token or API key",
            )
        })
    }

    /// The caller's user id, if any.
    pub fn user_id(&self) -> Option<Uuid> {
        self.principal.as_ref().map(|p| p.user_id)
    }
}
