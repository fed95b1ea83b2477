//! SMS through a Twilio-style API: `POST {base}/2010-04-01/Accounts/{sid}/Messages.json` with
//! basic auth (account SID, auth token) and form fields `To`, `From`, `Body`; the answer's `sid`
//! is the provider id. The base URL is configurable (a test double, a compatible gateway).

use async_trait::async_trait;
use serde_json::Value;

use super::{http_failure, network_failure, Outgoing, Provider, SendError};

/// SMS settings.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    /// API base, e.g. `https://api.twilio.com`.
    pub base_url: String,
    /// Account SID (basic-auth user and path segment).
    pub account_sid: String,
    /// Auth token (basic-auth password).
    pub auth_token: String,
    /// The sending number (E.164) or messaging service.
    pub from: String,
}

/// Sends SMS through a Twilio-style API.
pub struct TwilioProvider {
    http: reqwest::Client,
    config: SmsConfig,
}

impl TwilioProvider {
    /// A provider for `config`, with a bounded request time.
    pub fn new(config: SmsConfig, timeout: std::time::Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        TwilioProvider { http, config }
    }
}

#[async_trait]
impl Provider for TwilioProvider {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError> {
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Messages.json",
            self.config.base_url.trim_end_matches('/'),
            self.config.account_sid
        );
        let body = format!("{}: {}", message.subject, message.text);
        let resp = self
            .http
            .post(url)
            .basic_auth(&self.config.account_sid, Some(&self.config.auth_token))
            .header("Idempotency-Key", message.id.to_string())
            .form(&[
                ("To", message.destination.as_str()),
                ("From", self.config.from.as_str()),
                ("Body", body.as_str()),
            ])
            .send()
            .await
            .map_err(network_failure)?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(http_failure(status, &text));
        }
        let sid = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("sid").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| SendError::Transient("the SMS API answered without a sid".into()))?;
        Ok(sid)
    }
}
