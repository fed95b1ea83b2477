//! Startup: connect (or start) Postgres, migrate, load signing keys, and bootstrap the first
//! superAdmin. The resulting [`AppState`] is what every interface shares.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use haven_agents::run_agent::HubDeps;
use haven_tools::auth::tokens::TokenService;
use haven_tools::booking::payments::local::LocalProvider;
use haven_tools::booking::payments::provider::PaymentProvider;
use haven_tools::booking::payments::stripe::{StripeConfig, StripeProvider};
use haven_tools::{Ctx, Principal, Registry, Role, Services, Settings, ToolError};
use serde_json::{json, Value};
use sqlx::postgres::PgConnectOptions;
use sqlx::PgPool;
use uuid::Uuid;

use crate::config::Config;
use crate::db::{self, Attachment, Durability, PrivateCluster};

/// Everything the HTTP, MCP and stdio faces share.
pub struct AppState {
    /// Handler services (pool, tokens, settings).
    pub services: Services,
    /// The operation registry.
    pub registry: &'static Registry,
    /// The agent hub's dependencies: LLM providers, the run wait, the runs in flight.
    pub hub: Arc<HubDeps>,
    /// The configuration.
    pub config: Config,
    /// The notification channels' providers (the outbox worker sends through them).
    pub notification_providers: Arc<haven_tools::notification::channels::Providers>,
    cluster: Option<Attachment>,
}

impl AppState {
    /// Connects to `DATABASE_URL` or joins the private cluster (creating it when missing),
    /// migrates and loads keys.
    pub async fn start(config: Config) -> anyhow::Result<Arc<AppState>> {
        Self::start_as(config, "serve", true).await
    }

    /// Like [`AppState::start`], for a process doing `purpose` (shown by `haven db status`).
    /// Without `create` a data dir without a Haven database is refused with a message naming it,
    /// and nothing is created (`haven stdio`, `haven keys`).
    pub async fn start_as(
        config: Config,
        purpose: &'static str,
        create: bool,
    ) -> anyhow::Result<Arc<AppState>> {
        let (options, cluster) = match &config.database_url {
            Some(url) => (
                url.parse::<PgConnectOptions>()
                    .context("DATABASE_URL is not a Postgres URL")?,
                None,
            ),
            None => {
                let dir = config.data_dir.clone();
                let cluster = tokio::task::spawn_blocking(move || {
                    PrivateCluster::locate(&dir, Durability::Durable, create)
                })
                .await??;
                let attached = Attachment::join(cluster, purpose, create).await?;
                let cluster = attached.cluster();
                tracing::info!(
                    "private Postgres cluster in {} (data dir {}, log {})",
                    cluster.home().display(),
                    cluster.data_dir().display(),
                    cluster.log_file().display()
                );
                let admin = cluster.options("postgres");
                if create {
                    db::create_database(admin, "haven", None).await?;
                } else if !db::database_exists(admin, "haven").await? {
                    anyhow::bail!("{}", db::cluster::no_database(cluster.data_dir()));
                }
                (cluster.options("haven"), Some(attached))
            }
        };
        // On an error below, dropping the attachment leaves the cluster.
        let pool = db::pool_with(
            options,
            config.db_max_connections,
            Duration::from_millis(config.db_acquire_timeout_ms),
        )
        .await?;
        if cluster.is_some() {
            db::warn_unless_durable(&pool).await;
        }
        db::migrate(&pool).await?;
        Self::with_pool(config, pool, cluster).await
    }

    /// Builds the state over an already migrated pool (the test harness uses this).
    pub async fn with_pool(
        config: Config,
        pool: PgPool,
        cluster: Option<Attachment>,
    ) -> anyhow::Result<Arc<AppState>> {
        let registry = crate::registry();
        // A bad agent definition stops startup here, naming its file and field.
        let agents = haven_agents::definitions::init(registry)?;
        haven_agents::catalog::refresh(&pool, registry, agents)
            .await
            .context("refreshing the agent hub's tool catalog")?;
        let ttl = Duration::from_secs(config.token_ttl_minutes * 60);
        let tokens =
            TokenService::load_or_create(&pool, &config.jwt_issuer, &config.jwt_audience, ttl)
                .await?;
        // Principals are cached while this listener hears every change to them (see
        // `haven_tools::auth::principal_cache`).
        tokens.listen(&pool);
        let payments: Arc<dyn PaymentProvider> = match config.payment_provider()? {
            "stripe" => Arc::new(StripeProvider::new(StripeConfig {
                api_base: config.stripe_api_base.clone(),
                secret_key: config.stripe_secret_key.clone().unwrap_or_default(),
                webhook_secret: config.stripe_webhook_secret.clone().unwrap_or_default(),
            })),
            _ => Arc::new(LocalProvider::new(pool.clone())),
        };
        let llm = haven_agents::llm::LlmSettings::new(config.llm_base_url.clone());
        // The agent hub's own dependencies ride in the services' extension slot rather than a
        // process-wide `OnceLock`: each state (each test app) has its own LLM base URL and wait.
        let hub = Arc::new(HubDeps {
            registry,
            llm,
            mcp_wait: Duration::from_millis(config.agent_run_wait_ms),
            runs: Arc::default(),
        });
        // Cancels of runs in this process arrive by NOTIFY, wherever the request landed.
        tokio::spawn(hub.runs.clone().listen(pool.clone()));
        let notification_providers = Arc::new(config.notify.providers()?);
        let mut settings = Settings {
            messages_per_minute: config.messages_per_minute,
            inquiries_per_hour: config.inquiries_per_hour,
            verification: config.verification_settings(),
            ..Settings::default()
        };
        settings.notifications.channels = notification_providers.channels();
        settings.notifications.max_attempts =
            config.notify.notify_max_attempts.clamp(1, 100) as i32;
        let services = Services {
            announcer: haven_tools::announce::Announcer::start(&pool),
            db: pool,
            tokens: Arc::new(tokens),
            settings: Arc::new(settings),
            payments,
            extension: Some(hub.clone()),
            limits: Arc::new(haven_tools::limits::Limits::new(config.limit_settings())),
        };
        Ok(Arc::new(AppState {
            services,
            registry,
            hub,
            config,
            notification_providers,
            cluster,
        }))
    }

    /// Runs operation `name` as `principal` (used by bootstrap, the demo loader and the CLI).
    pub async fn call(
        &self,
        name: &str,
        principal: Option<Principal>,
        args: Value,
    ) -> Result<Value, ToolError> {
        let op = self
            .registry
            .get(name)
            .ok_or_else(|| ToolError::not_found("operation"))?;
        let ctx = Ctx::new(
            self.services.clone(),
            principal,
            format!("cli-{}", Uuid::new_v4().simple()),
            None,
        );
        op.invoke(ctx, args).await
    }

    /// A principal for a stored user (for CLI actions taken on a user's behalf).
    pub async fn principal_for(&self, email: &str) -> anyhow::Result<Principal> {
        let (user_id, role, fullname): (Uuid, String, String) =
            sqlx::query_as("SELECT id, role_id, fullname FROM auth.users WHERE lower(email) = lower($1) AND is_active")
                .bind(email)
                .fetch_optional(&self.services.db)
                .await?
                .with_context(|| format!("no active user with email {email}"))?;
        Ok(Principal {
            user_id,
            role: Role::parse(&role).unwrap_or(Role::User),
            email: email.to_lowercase(),
            fullname,
            credential: haven_tools::principal::Credential::ApiKey(Uuid::nil()),
        })
    }

    /// Creates an API key acting as `email`'s user.
    pub async fn create_api_key(&self, email: &str, description: &str) -> anyhow::Result<String> {
        let principal = self.principal_for(email).await?;
        let created = self
            .call(
                "createApiKey",
                Some(principal),
                json!({ "description": description }),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(created["key"].as_str().unwrap_or_default().to_string())
    }

    /// On a database without an active superAdmin, makes `HAVEN_ADMIN_EMAIL` one (creating it, or
    /// reactivating or promoting the existing account) and returns an API key for it (shown once).
    pub async fn bootstrap_superadmin(&self) -> anyhow::Result<Option<String>> {
        let email = self.config.admin_email.clone();
        match self.ensure_superadmin(&email).await? {
            None => Ok(None),
            Some(_) => Ok(Some(
                self.create_api_key(&email, "bootstrap key printed on first start")
                    .await?,
            )),
        }
    }

    /// `haven keys`: an API key acting as `email`'s user. When the instance has no active
    /// superAdmin (all archived, deleted or demoted), `email` becomes one first, so an operator
    /// with access to the database can always get back in; the second value then says how
    /// (created, reactivated or promoted as superAdmin).
    pub async fn recovery_key(
        &self,
        email: &str,
        description: &str,
    ) -> anyhow::Result<(String, Option<&'static str>)> {
        let recovered = self.ensure_superadmin(email).await?;
        let key = self.create_api_key(email, description).await?;
        Ok((key, recovered))
    }

    /// When no active superAdmin exists, makes `email` an active superAdmin (creating the account
    /// with a random password when there is none) and says what it did; otherwise does nothing.
    /// Serialised across processes by an advisory lock, so two first starts create one admin.
    async fn ensure_superadmin(&self, email: &str) -> anyhow::Result<Option<&'static str>> {
        let mut tx = self.services.db.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(7212)")
            .execute(&mut *tx)
            .await?;
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM auth.users WHERE role_id = 'superAdmin' AND is_active)",
        )
        .fetch_one(&mut *tx)
        .await?;
        if exists {
            return Ok(None);
        }
        let active: Option<bool> =
            sqlx::query_scalar("SELECT is_active FROM auth.users WHERE lower(email) = lower($1)")
                .bind(email)
                .fetch_optional(&mut *tx)
                .await?;
        let how = match active {
            Some(false) => "reactivated as superAdmin",
            Some(true) => "promoted to superAdmin",
            None => {
                let password: String = {
                    use rand::Rng;
                    rand::rngs::OsRng
                        .sample_iter(&rand::distributions::Alphanumeric)
                        .take(24)
                        .map(char::from)
                        .collect()
                };
                self.call(
                    "registerUser",
                    None,
                    json!({ "email": email, "password": password, "fullname": "Haven superAdmin" }),
                )
                .await
                .map_err(|e| anyhow::anyhow!("creating the superAdmin: {e}"))?;
                "created as superAdmin"
            }
        };
        sqlx::query(
            "UPDATE auth.users SET role_id = 'superAdmin', email_verified = true, is_active = true,
                 record_version = record_version + 1, updated_at = now()
             WHERE lower(email) = lower($1)",
        )
        .bind(email)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(how))
    }

    /// Stops the agent runs still going in this process (each closes its row as interrupted),
    /// waiting up to `grace`; call it before [`AppState::shutdown`] while the database is up.
    pub async fn stop_agent_runs(&self, grace: Duration) {
        let left = self.hub.runs.stop_all(grace).await;
        if left > 0 {
            tracing::warn!(
                left,
                "agent runs still open at shutdown; the sweep will close them"
            );
        }
    }

    /// Leaves the private cluster: the last Haven process using it stops it (unless
    /// `haven db start` pinned it). Call it once the database is no longer needed.
    pub fn shutdown(&self) {
        if let Some(attached) = &self.cluster {
            attached.leave();
        }
    }
}

/// Every minute until `shutdown`: expires unpaid holds, completes past stays and closes agent runs
/// abandoned by a stopped server (safe on every replica at once: each is one idempotent statement
/// or transaction).
pub async fn sweep_periodically(
    state: Arc<AppState>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        match haven_tools::booking::lifecycle::sweep(&state.services).await {
            Ok((0, 0)) => {}
            Ok((expired, completed)) => tracing::info!(expired, completed, "reservation sweep"),
            Err(err) => tracing::warn!(%err, "reservation sweep failed"),
        }
        match haven_tools::notification::reminders::remind_check_ins(&state.services).await {
            Ok(0) => {}
            Ok(sent) => tracing::info!(sent, "check-in reminders"),
            Err(err) => tracing::warn!(%err, "check-in reminder scan failed"),
        }
        match haven_agents::cancel::close_abandoned(&state.services.db).await {
            Ok(0) => {}
            Ok(closed) => tracing::warn!(closed, "closed agent runs abandoned by a stopped server"),
            Err(err) => tracing::warn!(%err, "agent run sweep failed"),
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM: how a process is asked to end and leave cleanly.
pub async fn termination_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = ctrl_c.await;
            return;
        }
    };
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}
