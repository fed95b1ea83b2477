//! The server side of notifications: the channel settings (env vars / flags), the providers they
//! configure, and the outbox worker every `serve` process runs (any replica drains the outbox).

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use haven_tools::notification::channels::email::{SmtpConfig, SmtpProvider};
use haven_tools::notification::channels::push::{FcmProvider, PushConfig};
use haven_tools::notification::channels::sms::{SmsConfig, TwilioProvider};
use haven_tools::notification::channels::Providers;
use haven_tools::notification::outbox::{Outbox, WorkerSettings};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;

/// Notification channels and delivery pacing. A channel is on when its settings are present.
#[derive(Debug, Clone, Args)]
pub struct NotifyConfig {
    /// SMTP server for email notifications: `smtp://[user:pass@]host[:port]` (add `?tls=required`
    /// for STARTTLS) or `smtps://…`; unset = no email.
    #[arg(long, env = "HAVEN_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// The sender of notification emails.
    #[arg(
        long,
        env = "HAVEN_EMAIL_FROM",
        default_value = "Haven <no-reply@haven.local>",
        global = true
    )]
    pub email_from: String,
    /// Base URL of the Twilio-style SMS API.
    #[arg(
        long,
        env = "HAVEN_SMS_BASE_URL",
        default_value = "https://api.twilio.com",
        global = true
    )]
    pub sms_base_url: String,
    /// SMS account SID (with the token and sender: SMS on).
    #[arg(long, env = "HAVEN_SMS_ACCOUNT_SID", global = true)]
    pub sms_account_sid: Option<String>,
    /// SMS auth token.
    #[arg(
        long,
        env = "HAVEN_SMS_AUTH_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub sms_auth_token: Option<String>,
    /// The sending number (E.164).
    #[arg(long, env = "HAVEN_SMS_FROM", global = true)]
    pub sms_from: Option<String>,
    /// Base URL of the FCM-style push API.
    #[arg(
        long,
        env = "HAVEN_PUSH_BASE_URL",
        default_value = "https://fcm.googleapis.com",
        global = true
    )]
    pub push_base_url: String,
    /// FCM project id (with the token: push on).
    #[arg(long, env = "HAVEN_PUSH_PROJECT_ID", global = true)]
    pub push_project_id: Option<String>,
    /// Bearer token for the push API.
    #[arg(
        long,
        env = "HAVEN_PUSH_ACCESS_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub push_access_token: Option<String>,
    /// Attempts per delivery before it is marked failed.
    #[arg(
        long,
        env = "HAVEN_NOTIFY_MAX_ATTEMPTS",
        default_value_t = 8,
        global = true
    )]
    pub notify_max_attempts: u32,
    /// The first retry's wait in milliseconds (each further one doubles, up to an hour).
    #[arg(
        long,
        env = "HAVEN_NOTIFY_RETRY_BASE_MS",
        default_value_t = 5000,
        global = true
    )]
    pub notify_retry_base_ms: u64,
    /// How often an idle worker looks for due retries, in milliseconds.
    #[arg(
        long,
        env = "HAVEN_NOTIFY_POLL_MS",
        default_value_t = 2000,
        global = true
    )]
    pub notify_poll_ms: u64,
    /// How long one send (an SMTP conversation, an HTTP request) may take, in seconds.
    #[arg(
        long,
        env = "HAVEN_NOTIFY_SEND_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub notify_send_timeout_secs: u64,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_url: None,
            email_from: "Haven <no-reply@haven.local>".into(),
            sms_base_url: "https://api.twilio.com".into(),
            sms_account_sid: None,
            sms_auth_token: None,
            sms_from: None,
            push_base_url: "https://fcm.googleapis.com".into(),
            push_project_id: None,
            push_access_token: None,
            notify_max_attempts: 8,
            notify_retry_base_ms: 5000,
            notify_poll_ms: 2000,
            notify_send_timeout_secs: 30,
        }
    }
}

impl NotifyConfig {
    /// The providers these settings configure; a half-configured channel is an error naming what
    /// is missing.
    pub fn providers(&self) -> anyhow::Result<Providers> {
        let timeout = Duration::from_secs(self.notify_send_timeout_secs.max(1));
        let mut providers = Providers::default();
        if let Some(url) = &self.smtp_url {
            let smtp = SmtpProvider::new(&SmtpConfig {
                url: url.clone(),
                from: self.email_from.clone(),
                timeout,
            })
            .map_err(anyhow::Error::msg)?;
            providers.email = Some(Arc::new(smtp));
        }
        match (&self.sms_account_sid, &self.sms_auth_token, &self.sms_from) {
            (None, None, None) => {}
            (Some(sid), Some(token), Some(from)) => {
                providers.sms = Some(Arc::new(TwilioProvider::new(
                    SmsConfig {
                        base_url: self.sms_base_url.clone(),
                        account_sid: sid.clone(),
                        auth_token: token.clone(),
                        from: from.clone(),
                    },
                    timeout,
                )))
            }
            _ => anyhow::bail!(
                "SMS needs all of HAVEN_SMS_ACCOUNT_SID, HAVEN_SMS_AUTH_TOKEN and HAVEN_SMS_FROM"
            ),
        }
        match (&self.push_project_id, &self.push_access_token) {
            (None, None) => {}
            (Some(project), Some(token)) => {
                providers.push = Some(Arc::new(FcmProvider::new(
                    PushConfig {
                        base_url: self.push_base_url.clone(),
                        project_id: project.clone(),
                        access_token: token.clone(),
                    },
                    timeout,
                )))
            }
            _ => anyhow::bail!("push needs both HAVEN_PUSH_PROJECT_ID and HAVEN_PUSH_ACCESS_TOKEN"),
        }
        Ok(providers)
    }

    /// The worker's pacing.
    pub fn worker_settings(&self) -> WorkerSettings {
        let send = Duration::from_secs(self.notify_send_timeout_secs.max(1));
        WorkerSettings {
            retry_base: Duration::from_millis(self.notify_retry_base_ms.max(1)),
            poll: Duration::from_millis(self.notify_poll_ms.max(10)),
            // A lease outlives any send many times over, so a live send is never claimed twice.
            lease: (send * 4).max(Duration::from_secs(60)),
            ..WorkerSettings::default()
        }
    }
}

/// Starts this process's outbox worker (when any external channel is configured); it stops with
/// `shutdown`.
pub fn spawn_worker(
    db: PgPool,
    providers: Arc<Providers>,
    config: &NotifyConfig,
    shutdown: CancellationToken,
) {
    if providers.channels().names().is_empty() {
        return;
    }
    let worker = Outbox::new(db, providers, config.worker_settings());
    tokio::spawn(worker.run(shutdown));
}
