//! Every setting, from flags or environment variables, with defaults that work on a fresh machine.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

/// Whether `/mcp` serves requests that carry no credential (see [`Config::mcp_anonymous`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AnonymousMcp {
    /// Only requests that ask for it (`?anonymous=true`, `X-MCP-Anonymous: true`); the rest get
    /// 401 with `WWW-Authenticate: Bearer resource_metadata=…`.
    Explicit,
    /// Every request without a credential is served anonymously.
    Allow,
}

/// Server configuration (flags override environment variables).
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on.
    #[arg(
        long,
        env = "HAVEN_BIND",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub bind: SocketAddr,
    /// Postgres to use; when unset a private cluster is started under `--data-dir`.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// Where the private Postgres cluster lives when `DATABASE_URL` is unset.
    #[arg(long, env = "HAVEN_DATA_DIR", default_value = ".haven", global = true)]
    pub data_dir: PathBuf,
    /// Host names accepted on MCP endpoints (DNS-rebinding guard), comma-separated; add your public host.
    #[arg(
        long,
        env = "HAVEN_ALLOWED_HOSTS",
        value_delimiter = ',',
        default_value = "localhost,127.0.0.1,::1",
        global = true
    )]
    pub allowed_hosts: Vec<String>,
    /// Browser origins accepted on MCP endpoints, comma-separated (empty: only origins on allowed hosts).
    #[arg(
        long,
        env = "HAVEN_ALLOWED_ORIGINS",
        value_delimiter = ',',
        global = true
    )]
    pub allowed_origins: Vec<String>,
    /// The URL clients reach this server at (used in printed `mcp.json` snippets).
    #[arg(long, env = "HAVEN_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,
    /// `iss` of access tokens.
    #[arg(long, env = "HAVEN_JWT_ISSUER", default_value = "haven", global = true)]
    pub jwt_issuer: String,
    /// `aud` of access tokens; tokens for any other audience are refused.
    #[arg(
        long,
        env = "HAVEN_JWT_AUDIENCE",
        default_value = "haven-api",
        global = true
    )]
    pub jwt_audience: String,
    /// Access-token lifetime in minutes.
    #[arg(
        long,
        env = "HAVEN_TOKEN_TTL_MINUTES",
        default_value_t = 1440,
        global = true
    )]
    pub token_ttl_minutes: u64,
    /// Largest accepted request body in bytes (larger → 413).
    #[arg(long, env = "HAVEN_MAX_BODY_BYTES", default_value_t = 2 * 1024 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Refuse anonymous MCP connections (by default anonymous callers see only public tools).
    #[arg(
        long,
        env = "HAVEN_MCP_REQUIRE_AUTH",
        default_value_t = false,
        global = true
    )]
    pub mcp_require_auth: bool,
    /// Anonymous MCP on `/mcp` and `/mcp/sse`: `explicit` (the default) answers a request without
    /// a credential 401 with the OAuth challenge, so remote connectors sign in, unless it asks for
    /// anonymous access with `?anonymous=true` or `X-MCP-Anonymous: true`; `allow` serves every
    /// request without a credential anonymously (public tools only). `HAVEN_MCP_REQUIRE_AUTH`
    /// refuses anonymous MCP whatever this says.
    #[arg(
        long,
        env = "HAVEN_MCP_ANONYMOUS",
        value_enum,
        default_value = "explicit",
        global = true
    )]
    pub mcp_anonymous: AnonymousMcp,
    /// Lifetime of OAuth access tokens in minutes (refresh tokens last 30 days, rotated on use).
    #[arg(
        long,
        env = "HAVEN_OAUTH_TOKEN_TTL_MINUTES",
        default_value_t = 60,
        global = true
    )]
    pub oauth_token_ttl_minutes: u64,
    /// Development only: verification starts answer with the code itself (never in production).
    #[arg(long, env = "HAVEN_VERIFICATION_CODES_IN_RESPONSES", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub verification_codes_in_responses: bool,
    /// Login refuses accounts whose email is not verified (the spec's
    /// `emailVerificationRequiredForLogin`).
    #[arg(long, env = "HAVEN_EMAIL_VERIFICATION_REQUIRED_FOR_LOGIN", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub email_verification_required_for_login: bool,
    /// Login refuses accounts whose mobile number is not verified.
    #[arg(long, env = "HAVEN_MOBILE_VERIFICATION_REQUIRED_FOR_LOGIN", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub mobile_verification_required_for_login: bool,
    /// Every login owes an emailed code (email 2FA) before the session can do anything else.
    #[arg(long, env = "HAVEN_EMAIL_2FA", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub email_2fa: bool,
    /// Every login of a user with a verified mobile owes an SMS code (mobile 2FA).
    #[arg(long, env = "HAVEN_MOBILE_2FA", default_value_t = false, action = clap::ArgAction::Set, global = true)]
    pub mobile_2fa: bool,
    /// Accept Client ID Metadata Documents: an app may use an `https` URL as its OAuth
    /// `client_id` instead of registering, and Haven fetches the document there (public hosts
    /// only, bounded; see `http::oauth::client_metadata`).
    #[arg(
        long,
        env = "HAVEN_OAUTH_CLIENT_METADATA",
        default_value_t = true,
        action = clap::ArgAction::Set,
        global = true
    )]
    pub oauth_client_metadata: bool,
    /// An extra root certificate (PEM) trusted when fetching client metadata documents, for a
    /// private CA or a test server; the public web roots are always trusted.
    #[arg(long, env = "HAVEN_OAUTH_CLIENT_METADATA_CA_FILE", global = true)]
    pub oauth_client_metadata_ca_file: Option<std::path::PathBuf>,
    /// Hosts whose metadata documents may be fetched although they resolve to loopback or
    /// private addresses, comma-separated (empty by default: only public addresses).
    #[arg(
        long,
        env = "HAVEN_OAUTH_CLIENT_METADATA_PRIVATE_HOSTS",
        value_delimiter = ',',
        global = true
    )]
    pub oauth_client_metadata_private_hosts: Vec<String>,
    /// Database pool size.
    #[arg(
        long,
        env = "HAVEN_DB_MAX_CONNECTIONS",
        default_value_t = 20,
        global = true
    )]
    pub db_max_connections: u32,
    /// Email of the superAdmin created on first start.
    #[arg(
        long,
        env = "HAVEN_ADMIN_EMAIL",
        default_value = "admin@haven.local",
        global = true
    )]
    pub admin_email: String,
    /// Payment provider: `local` (settles Stripe test payment methods such as `pm_card_visa`
    /// in-process) or `stripe`. Defaults to `stripe` when `STRIPE_SECRET_KEY` is set.
    #[arg(long, env = "HAVEN_PAYMENT_PROVIDER", global = true)]
    pub payment_provider: Option<String>,
    /// Stripe API base URL (point it at a test double if you like).
    #[arg(
        long,
        env = "STRIPE_API_BASE",
        default_value = "https://api.stripe.com",
        global = true
    )]
    pub stripe_api_base: String,
    /// Stripe secret key.
    #[arg(long, env = "STRIPE_SECRET_KEY", global = true, hide_env_values = true)]
    pub stripe_secret_key: Option<String>,
    /// Stripe webhook signing secret (`whsec_…`) for `POST /bookingmanagement-api/v1/webhooks/stripe`.
    #[arg(
        long,
        env = "STRIPE_WEBHOOK_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub stripe_webhook_secret: Option<String>,
    /// One base URL (with `/v1`) for every agent-hub LLM provider, replacing each provider's own
    /// (`HAVEN_LLM_<PROVIDER>_BASE_URL` sets a single provider's).
    #[arg(long, env = "HAVEN_LLM_BASE_URL", global = true)]
    pub llm_base_url: Option<String>,
    /// How long the MCP tool `runAgent` waits for a run before answering `running` with its id
    /// (the run goes on; poll it with `getAgentExecution`), in milliseconds.
    #[arg(
        long,
        env = "HAVEN_AGENT_RUN_WAIT_MS",
        default_value_t = 45_000,
        global = true
    )]
    pub agent_run_wait_ms: u64,
    /// Seconds a client has to send a request's headers (also how long an idle HTTP/1 keep-alive
    /// connection waits for its next request).
    #[arg(
        long,
        env = "HAVEN_HEADER_READ_TIMEOUT_SECS",
        default_value_t = 10,
        global = true
    )]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection may send and receive nothing, with no request in progress, before it
    /// is closed (SSE streams stay open: their pings count as traffic).
    #[arg(
        long,
        env = "HAVEN_IDLE_TIMEOUT_SECS",
        default_value_t = 60,
        global = true
    )]
    pub idle_timeout_secs: u64,
    /// Seconds a request (reading its body and running its handler) may take before it is answered
    /// 503 (never less than `HAVEN_AGENT_RUN_WAIT_MS` plus 5 s); streamed answers
    /// (`text/event-stream`) are not cut once they have started, and agent run routes are exempt.
    #[arg(
        long,
        env = "HAVEN_REQUEST_TIMEOUT_SECS",
        default_value_t = 60,
        global = true
    )]
    pub request_timeout_secs: u64,
    /// Open client connections at most; more are answered 503 and closed (lowered at startup to
    /// what the open-files limit allows).
    #[arg(
        long,
        env = "HAVEN_MAX_CONNECTIONS",
        default_value_t = 1024,
        global = true
    )]
    pub max_connections: usize,
    /// Milliseconds a call waits for a pooled database connection before answering 503.
    #[arg(
        long,
        env = "HAVEN_DB_ACQUIRE_TIMEOUT_MS",
        default_value_t = 2000,
        global = true
    )]
    pub db_acquire_timeout_ms: u64,
    /// REST/MCP calls using the database at once; more are answered 503 at once (0 = no cap).
    #[arg(long, env = "HAVEN_MAX_DB_CALLS", default_value_t = 256, global = true)]
    pub max_db_calls: usize,
    /// Password hashes computed at once (0 = the number of cores).
    #[arg(long, env = "HAVEN_HASH_WORKERS", default_value_t = 0, global = true)]
    pub hash_workers: usize,
    /// Logins, registrations and password changes waiting for a hashing worker; more answer 503.
    #[arg(long, env = "HAVEN_HASH_QUEUE", default_value_t = 64, global = true)]
    pub hash_queue: usize,
    /// Calls per minute per signed-in user or API key, REST and MCP together (0 = unlimited).
    #[arg(
        long,
        env = "HAVEN_RATE_LIMIT_PER_MINUTE",
        default_value_t = 600,
        global = true
    )]
    pub rate_limit_per_minute: u32,
    /// Calls a signed-in user or API key may make at once before the per-minute rate applies.
    #[arg(
        long,
        env = "HAVEN_RATE_LIMIT_BURST",
        default_value_t = 100,
        global = true
    )]
    pub rate_limit_burst: u32,
    /// Calls per minute per IP address for anonymous callers (0 = unlimited).
    #[arg(
        long,
        env = "HAVEN_ANON_RATE_LIMIT_PER_MINUTE",
        default_value_t = 300,
        global = true
    )]
    pub anon_rate_limit_per_minute: u32,
    /// Anonymous calls one IP address may make at once before its per-minute rate applies.
    #[arg(
        long,
        env = "HAVEN_ANON_RATE_LIMIT_BURST",
        default_value_t = 60,
        global = true
    )]
    pub anon_rate_limit_burst: u32,
    /// `registerUser` calls per hour per IP address (0 = unlimited); five may come at once.
    #[arg(
        long,
        env = "HAVEN_REGISTRATIONS_PER_IP_PER_HOUR",
        default_value_t = 20,
        global = true
    )]
    pub registrations_per_ip_per_hour: u32,
    /// Failed logins for one email before it is locked (0 = never).
    #[arg(
        long,
        env = "HAVEN_LOGIN_MAX_FAILURES",
        default_value_t = 5,
        global = true
    )]
    pub login_max_failures: u32,
    /// Failed logins from one IP address before it is locked (0 = never).
    #[arg(
        long,
        env = "HAVEN_LOGIN_MAX_FAILURES_PER_IP",
        default_value_t = 50,
        global = true
    )]
    pub login_max_failures_per_ip: u32,
    /// Seconds failed logins are counted over, and the first lockout's length (each further
    /// lockout of the same email or address doubles it, up to 16 times).
    #[arg(
        long,
        env = "HAVEN_LOGIN_LOCKOUT_SECS",
        default_value_t = 900,
        global = true
    )]
    pub login_lockout_secs: u64,
    /// Notification channels (SMTP, SMS, push) and delivery pacing.
    #[command(flatten)]
    pub notify: crate::notifications::NotifyConfig,
}

impl Config {
    /// A configuration for an in-process server on loopback (tests and benchmarks): port 0, the
    /// private cluster, no Stripe, no LLM override, and a pool of `db_max_connections`. Request
    /// rates and registrations are unlimited here (tests make many quick calls from 127.0.0.1);
    /// login lockout, timeouts and caps keep their server defaults. Tests of the limits set them.
    pub fn loopback(db_max_connections: u32) -> Config {
        Config {
            bind: "127.0.0.1:0".parse().expect("a loopback address"),
            database_url: None,
            data_dir: ".haven".into(),
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "::1".into()],
            allowed_origins: vec![],
            public_url: None,
            jwt_issuer: "haven".into(),
            jwt_audience: "haven-api".into(),
            token_ttl_minutes: 60,
            max_body_bytes: 64 * 1024,
            mcp_require_auth: false,
            mcp_anonymous: AnonymousMcp::Allow,
            oauth_token_ttl_minutes: 60,
            verification_codes_in_responses: false,
            email_verification_required_for_login: false,
            mobile_verification_required_for_login: false,
            email_2fa: false,
            mobile_2fa: false,
            oauth_client_metadata: true,
            oauth_client_metadata_ca_file: None,
            oauth_client_metadata_private_hosts: vec![],
            db_max_connections,
            admin_email: "admin@haven.local".into(),
            payment_provider: None,
            stripe_api_base: "https://api.stripe.com".into(),
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            llm_base_url: None,
            agent_run_wait_ms: 45_000,
            header_read_timeout_secs: 10,
            idle_timeout_secs: 60,
            request_timeout_secs: 60,
            max_connections: 1024,
            db_acquire_timeout_ms: 5000,
            max_db_calls: 256,
            hash_workers: 0,
            hash_queue: 64,
            rate_limit_per_minute: 0,
            rate_limit_burst: 100,
            anon_rate_limit_per_minute: 0,
            anon_rate_limit_burst: 60,
            registrations_per_ip_per_hour: 0,
            login_max_failures: 5,
            login_max_failures_per_ip: 50,
            login_lockout_secs: 900,
            notify: Default::default(),
        }
    }

    /// The payment provider to use, after defaults: `stripe` when a secret key is set, else `local`.
    pub fn payment_provider(&self) -> anyhow::Result<&str> {
        match self.payment_provider.as_deref() {
            Some("local") => Ok("local"),
            Some("stripe") | None if self.stripe_secret_key.is_some() => Ok("stripe"),
            Some("stripe") => {
                anyhow::bail!("HAVEN_PAYMENT_PROVIDER=stripe needs STRIPE_SECRET_KEY")
            }
            None => Ok("local"),
            Some(other) => {
                anyhow::bail!("HAVEN_PAYMENT_PROVIDER must be local or stripe, not {other}")
            }
        }
    }

    /// The verification rules handlers enforce, from these settings.
    pub fn verification_settings(&self) -> haven_tools::auth::verification::VerificationSettings {
        haven_tools::auth::verification::VerificationSettings {
            codes_in_responses: self.verification_codes_in_responses,
            email_verification_required_for_login: self.email_verification_required_for_login,
            mobile_verification_required_for_login: self.mobile_verification_required_for_login,
            email_2fa: self.email_2fa,
            mobile_2fa: self.mobile_2fa,
            ..Default::default()
        }
    }

    /// The limits handlers enforce, from these settings.
    pub fn limit_settings(&self) -> haven_tools::limits::LimitSettings {
        use haven_tools::limits::{LimitSettings, LoginPolicy, Rate};
        LimitSettings {
            principal: Rate::per_minute(self.rate_limit_per_minute, self.rate_limit_burst),
            anonymous: Rate::per_minute(
                self.anon_rate_limit_per_minute,
                self.anon_rate_limit_burst,
            ),
            registrations: Rate::per_hour(
                self.registrations_per_ip_per_hour,
                self.registrations_per_ip_per_hour.min(5),
            ),
            login: LoginPolicy {
                max_failures_per_account: self.login_max_failures,
                max_failures_per_ip: self.login_max_failures_per_ip,
                window: std::time::Duration::from_secs(self.login_lockout_secs.max(1)),
            },
            hash_workers: self.hash_workers,
            hash_queue: self.hash_queue,
            max_db_calls: self.max_db_calls,
        }
    }

    /// The public URL without a trailing slash: the OAuth issuer.
    pub fn issuer(&self) -> String {
        self.public_url().trim_end_matches('/').to_string()
    }

    /// The MCP endpoint's URL: the OAuth protected resource (RFC 9728) tokens are minted for.
    pub fn mcp_resource(&self) -> String {
        format!("{}/mcp", self.issuer())
    }

    /// The base URL to show users.
    pub fn public_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind))
    }
}

#[cfg(test)]
mod tests {
    use super::{AnonymousMcp, Config};
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: Config,
    }

    #[test]
    fn haven_serve_challenges_credential_less_mcp_by_default() {
        let cli = Cli::try_parse_from(["haven"]).unwrap();
        assert_eq!(cli.config.mcp_anonymous, AnonymousMcp::Explicit);
        assert!(!cli.config.mcp_require_auth);
        let cli = Cli::try_parse_from(["haven", "--mcp-anonymous", "allow"]).unwrap();
        assert_eq!(cli.config.mcp_anonymous, AnonymousMcp::Allow);
        assert_eq!(Config::loopback(1).mcp_anonymous, AnonymousMcp::Allow);
    }
}
