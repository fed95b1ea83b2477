//! Push through an FCM-style HTTP v1 API: `POST {base}/v1/projects/{project}/messages:send` with a
//! bearer token and `{"message": {"token", "notification": {"title", "body"}, "data"}}`; the
//! answer's `name` is the provider id. The base URL is configurable.

use async_trait::async_trait;
use serde_json::{json, Map, Value};

use super::{http_failure, network_failure, Outgoing, Provider, SendError};

/// Push settings.
#[derive(Debug, Clone)]
pub struct PushConfig {
    /// API base, e.g. `https://fcm.googleapis.com`.
    pub base_url: String,
    /// The FCM project id.
    pub project_id: String,
    /// The OAuth bearer token sent as `Authorization: Bearer …`.
    pub access_token: String,
}

/// Sends push notifications through an FCM-style API.
pub struct FcmProvider {
    http: reqwest::Client,
    config: PushConfig,
}

impl FcmProvider {
    /// A provider for `config`, with a bounded request time.
    pub fn new(config: PushConfig, timeout: std::time::Duration) -> Self {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        FcmProvider { http, config }
    }
}

/// FCM `data` values must be strings.
fn string_data(data: &Value, id: &str) -> Map<String, Value> {
    let mut out = Map::new();
    if let Value::Object(map) = data {
        for (k, v) in map {
            let text = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.insert(k.clone(), Value::String(text));
        }
    }
    out.insert("deliveryId".into(), Value::String(id.to_string()));
    out
}

#[async_trait]
impl Provider for FcmProvider {
    async fn send(&self, message: &Outgoing) -> Result<String, SendError> {
        let url = format!(
            "{}/v1/projects/{}/messages:send",
            self.config.base_url.trim_end_matches('/'),
            self.config.project_id
        );
        let id = message.id.to_string();
        let body = json!({
            "message": {
                "token": message.destination,
                "notification": { "title": message.subject, "body": message.text },
                "data": string_data(&message.data, &id),
            }
        });
        let resp = self
            .http
            .post(url)
            .bearer_auth(&self.config.access_token)
            .header("Idempotency-Key", &id)
            .json(&body)
            .send()
            .await
            .map_err(network_failure)?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if !status.is_success() {
            return Err(http_failure(status, &text));
        }
        serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| {
                SendError::Transient("the push API answered without a message name".into())
            })
    }
}
