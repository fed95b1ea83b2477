//! Email over SMTP with `lettre`: a multipart/alternative message (plain text and HTML) whose
//! Message-ID is the delivery id, so a copy re-sent after a crash is recognisably the same mail.

use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::AsyncSmtpTransport;
use lettre::{AsyncTransport, Message, Tokio1Executor};

use super::{Outgoing, Provider, SendError};

/// SMTP settings.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    /// `smtp://[user:pass@]host[:port]` (plain, or `?tls=required` for STARTTLS) or
    /// `smtps://…` (TLS from the start), as `lettre` reads it.
    pub url: String,
    /// The sender, e.g. `Haven <no-reply@haven.example>`.
    pub from: String,
    /// How long one SMTP conversation may take.
    pub timeout: std::time::Duration,
}

/// Sends email through one SMTP server.
pub struct SmtpProvider {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    domain: String,
}

impl SmtpProvider {
    /// A provider for `config`; a bad URL or sender is an error naming the setting.
    pub fn new(config: &SmtpConfig) -> Result<Self, String> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&config.url)
            .map_err(|e| format!("HAVEN_SMTP_URL is not a usable SMTP URL: {e}"))?
            .timeout(Some(config.timeout))
            .build();
        let from: Mailbox = config
            .from
            .parse()
            .map_err(|e| format!("HAVEN_EMAIL_FROM is not an email address: {e}"))?;
        let domain = from.email.domain().to_string();
        Ok(SmtpProvider {
            transport,
            from,
            domain,
        })
    }
}

#[async_trait]
impl Provider for SmtpProvider {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError> {
        let to: Mailbox = message
            .destination
            .parse()
            .map_err(|e| SendError::Permanent(format!("not an email address: {e}")))?;
        let message_id = format!("<{}@{}>", message.id, self.domain);
        let html = message.html.clone().unwrap_or_else(|| {
            super::super::texts::email_html("en", &message.subject, &message.text)
        });
        let email = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(message.subject.clone())
            .message_id(Some(message_id.clone()))
            .multipart(MultiPart::alternative_plain_html(
                message.text.clone(),
                html,
            ))
            .map_err(|e| SendError::Permanent(format!("could not build the email: {e}")))?;
        match self.transport.send(email).await {
            Ok(_) => Ok(message_id),
            Err(err) if err.is_permanent() => Err(SendError::Permanent(err.to_string())),
            Err(err) => Err(SendError::Transient(err.to_string())),
        }
    }
}
