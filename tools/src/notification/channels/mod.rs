//! The external channels behind one trait: email over SMTP ([`email`], `lettre`), SMS through a
//! Twilio-style form API ([`sms`]) and push through an FCM-style JSON API ([`push`]). The outbox
//! worker hands each claimed delivery to its channel's provider; in-app needs no provider (the
//! inbox row is the notification).

pub mod email;
pub mod push;
pub mod sms;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;
use uuid::Uuid;

/// One message to send, as read from the outbox.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// The delivery's id: the idempotency key (email Message-ID, `Idempotency-Key` header), so a
    /// provider or receiver can drop a second copy after a crash between sending and marking.
    pub id: Uuid,
    /// Address, phone number or push token.
    pub destination: String,
    /// Subject or title.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body (email).
    pub html: Option<String>,
    /// Ids the message concerns (push `data`).
    pub data: Value,
}

/// Why a send failed, and whether trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendError {
    /// The provider was unreachable, overloaded or said "try later": retry with backoff.
    Transient(String),
    /// The provider refused the message for good (bad address, unknown token): give up.
    Permanent(String),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendError::Transient(m) => write!(f, "temporary failure: {m}"),
            SendError::Permanent(m) => write!(f, "permanent failure: {m}"),
        }
    }
}

/// A provider for one channel.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Sends `message`; answers the provider's id for it.
    async fn send(&self, message: &Outgoing) -> Result<String, SendError>;
}

/// Which external channels are configured (deliveries are queued only for these).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelSet {
    /// SMTP is configured.
    pub email: bool,
    /// The SMS API is configured.
    pub sms: bool,
    /// The push API is configured.
    pub push: bool,
}

impl ChannelSet {
    /// Whether `channel` (`email`, `sms`, `push`) is configured.
    pub fn has(&self, channel: &str) -> bool {
        match channel {
            "email" => self.email,
            "sms" => self.sms,
            "push" => self.push,
            _ => false,
        }
    }
    /// The configured channels' names.
    pub fn names(&self) -> Vec<&'static str> {
        ["email", "sms", "push"]
            .into_iter()
            .filter(|c| self.has(c))
            .collect()
    }
}

/// The configured providers, one per channel at most.
#[derive(Clone, Default)]
pub struct Providers {
    /// Email (SMTP).
    pub email: Option<Arc<dyn Provider>>,
    /// SMS.
    pub sms: Option<Arc<dyn Provider>>,
    /// Push.
    pub push: Option<Arc<dyn Provider>>,
}

impl Providers {
    /// The provider of `channel`.
    pub fn get(&self, channel: &str) -> Option<&Arc<dyn Provider>> {
        match channel {
            "email" => self.email.as_ref(),
            "sms" => self.sms.as_ref(),
            "push" => self.push.as_ref(),
            _ => None,
        }
    }
    /// Which channels have a provider.
    pub fn channels(&self) -> ChannelSet {
        ChannelSet {
            email: self.email.is_some(),
            sms: self.sms.is_some(),
            push: self.push.is_some(),
        }
    }
}

/// Classifies an HTTP provider's answer: 2xx is success, 408/429/5xx are worth retrying, other
/// 4xx are permanent.
pub(crate) fn http_failure(status: reqwest::StatusCode, body: &str) -> SendError {
    let text = format!(
        "HTTP {}: {}",
        status.as_u16(),
        body.chars().take(300).collect::<String>()
    );
    if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
        SendError::Transient(text)
    } else {
        SendError::Permanent(text)
    }
}

/// A network failure reaching an HTTP provider (always worth retrying).
pub(crate) fn network_failure(err: reqwest::Error) -> SendError {
    SendError::Transient(format!("could not reach the provider: {err}"))
}
