//! Stripe over its HTTP API: form-encoded POSTs with a Bearer secret key, an `Idempotency-Key` on
//! every POST (derived from our operation, reused on each retry), bounded retries for the failures
//! Stripe documents as safe to retry (network, 409 key-in-use, 429, 5xx), and webhook events
//! verified with [`super::signature`].

use std::time::Duration;

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use super::provider::*;
use super::signature;
use crate::money::Money;

/// Where and how to reach Stripe.
#[derive(Clone)]
pub struct StripeConfig {
    /// API base URL, `https://api.stripe.com` in production.
    pub api_base: String,
    /// Secret key (`sk_test_…` / `sk_live_…`).
    pub secret_key: String,
    /// Webhook endpoint secret (`whsec_…`).
    pub webhook_secret: String,
}

/// Secrets never reach logs, even through `{:?}`.
impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("api_base", &self.api_base)
            .field("secret_key", &"<redacted>")
            .field("webhook_secret", &"<redacted>")
            .finish()
    }
}

/// Pauses before the 2nd and 3rd attempt of a retryable call.
const BACKOFF: [Duration; 2] = [Duration::from_millis(100), Duration::from_millis(400)];

/// Stripe.
pub struct StripeProvider {
    config: StripeConfig,
    http: reqwest::Client,
}

impl StripeProvider {
    /// A client for `config` (connect timeout 5 s, whole request 20 s).
    pub fn new(config: StripeConfig) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap_or_default();
        Self { config, http }
    }

    /// One API call with Stripe's retry rules; POSTs carry `idempotency_key` on every attempt.
    async fn call(
        &self,
        method: Method,
        path: &str,
        form: &[(String, String)],
        idempotency_key: Option<&str>,
    ) -> Result<Value, ProviderError> {
        let url = format!("{}{path}", self.config.api_base.trim_end_matches('/'));
        let mut last = String::new();
        for attempt in 0..=BACKOFF.len() {
            if attempt > 0 {
                tracing::warn!(%method, path, attempt, reason = %last, "retrying Stripe call");
                tokio::time::sleep(BACKOFF[attempt - 1]).await;
            }
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(&self.config.secret_key);
            if method == Method::POST {
                request = request.form(form);
            }
            if let Some(key) = idempotency_key {
                request = request.header("Idempotency-Key", key);
            }
            let (status, text) = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    match response.text().await {
                        Ok(text) => (status, text),
                        Err(e) => {
                            last = format!("reading Stripe's response failed: {e}");
                            continue;
                        }
                    }
                }
                Err(e) => {
                    // reqwest's error text names the URL, never the Authorization header.
                    last = format!("Stripe is unreachable: {e}");
                    continue;
                }
            };
            let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(body);
            }
            match classify(status, &body) {
                Failure::Retry(reason) => last = reason,
                Failure::Final(error) => return Err(error),
            }
        }
        Err(ProviderError::Unavailable(format!(
            "{last} (gave up after {} attempts)",
            BACKOFF.len() + 1
        )))
    }

    async fn post(
        &self,
        path: &str,
        form: &[(String, String)],
        key: &str,
    ) -> Result<Value, ProviderError> {
        self.call(Method::POST, path, form, Some(key)).await
    }

    async fn get(&self, path: &str) -> Result<Value, ProviderError> {
        self.call(Method::GET, path, &[], None).await
    }
}

enum Failure {
    Retry(String),
    Final(ProviderError),
}

/// Maps a non-2xx Stripe answer to a retry or a final error.
fn classify(status: StatusCode, body: &Value) -> Failure {
    let error = &body["error"];
    let kind = error["type"].as_str().unwrap_or("");
    let message = error["message"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| format!("Stripe answered HTTP {}", status.as_u16()));
    if status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS
        || status.is_server_error()
    {
        return Failure::Retry(format!("HTTP {}: {message}", status.as_u16()));
    }
    Failure::Final(
        if status == StatusCode::PAYMENT_REQUIRED || kind == "card_error" {
            ProviderError::Declined(message)
        } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            ProviderError::Unavailable(format!("Stripe refused our API key: {message}"))
        } else {
            ProviderError::Invalid(message)
        },
    )
}

/// Ids are interpolated into URL paths, so only Stripe's id alphabet is allowed.
fn checked_id<'a>(kind: &str, id: &'a str) -> Result<&'a str, ProviderError> {
    if !id.is_empty()
        && id.len() <= 255
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        Ok(id)
    } else {
        Err(ProviderError::Invalid(format!("No such {kind}: '{id}'")))
    }
}

fn pair(key: impl Into<String>, value: impl Into<String>) -> (String, String) {
    (key.into(), value.into())
}

fn text(value: &Value) -> Option<String> {
    value.as_str().map(str::to_string)
}

/// Reads a Stripe PaymentIntent object.
pub fn parse_intent(object: &Value) -> Result<Intent, ProviderError> {
    let malformed = |what: &str| ProviderError::Unavailable(format!("Stripe sent a {what}"));
    let id = text(&object["id"]).ok_or_else(|| malformed("PaymentIntent without an id"))?;
    let status = object["status"]
        .as_str()
        .and_then(IntentStatus::parse)
        .ok_or_else(|| malformed("PaymentIntent with an unknown status"))?;
    let amount = object["amount"]
        .as_i64()
        .ok_or_else(|| malformed("PaymentIntent without an amount"))?;
    let metadata = object["metadata"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                .collect()
        })
        .unwrap_or_default();
    Ok(Intent {
        id,
        status,
        amount: Money::from_cents(amount),
        currency: object["currency"]
            .as_str()
            .unwrap_or_default()
            .to_uppercase(),
        client_secret: text(&object["client_secret"]),
        // Either an id or, when expanded, the Charge object.
        latest_charge: text(&object["latest_charge"])
            .or_else(|| text(&object["latest_charge"]["id"])),
        last_error: text(&object["last_payment_error"]["message"]),
        metadata,
    })
}

/// Reads a Stripe Event (`{id, type, created, data.object}`); fills `intent` when the object is a
/// PaymentIntent.
pub fn parse_event(payload: &[u8]) -> Result<WebhookEvent, ProviderError> {
    let bad = |what: &str| ProviderError::BadWebhook(format!("the event {what}"));
    let event: Value = serde_json::from_slice(payload).map_err(|_| bad("is not JSON"))?;
    let id = text(&event["id"]).ok_or_else(|| bad("has no id"))?;
    let kind = text(&event["type"]).ok_or_else(|| bad("has no type"))?;
    let created = event["created"]
        .as_i64()
        .ok_or_else(|| bad("has no created time"))?;
    let object = &event["data"]["object"];
    let intent = if object["object"] == "payment_intent" {
        Some(parse_intent(object).map_err(|e| bad(&format!("carries a bad PaymentIntent: {e}")))?)
    } else {
        None
    };
    Ok(WebhookEvent {
        id,
        kind,
        created,
        intent,
    })
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn platform(&self) -> &'static str {
        "stripe"
    }

    async fn create_customer(&self, user_id: Uuid, email: &str) -> Result<String, ProviderError> {
        let form = [
            pair("email", email),
            pair("metadata[userId]", user_id.to_string()),
        ];
        let customer = self
            .post("/v1/customers", &form, &format!("customer:{user_id}:v1"))
            .await?;
        text(&customer["id"]).ok_or_else(|| {
            ProviderError::Unavailable("Stripe sent a customer without an id".into())
        })
    }

    async fn payment_method(&self, id: &str) -> Result<MethodInfo, ProviderError> {
        let id = checked_id("PaymentMethod", id)?;
        let method = self.get(&format!("/v1/payment_methods/{id}")).await?;
        let card = &method["card"];
        Ok(MethodInfo {
            id: text(&method["id"]).unwrap_or_else(|| id.to_string()),
            card: card.is_object().then(|| {
                serde_json::json!({
                    "brand": card["brand"],
                    "last4": card["last4"],
                    "expMonth": card["exp_month"],
                    "expYear": card["exp_year"],
                })
            }),
            holder_name: text(&method["billing_details"]["name"]),
            holder_zip: text(&method["billing_details"]["address"]["postal_code"]),
        })
    }

    async fn create_intent(&self, request: &IntentRequest) -> Result<Intent, ProviderError> {
        let mut form = vec![
            pair("amount", request.amount.cents().to_string()),
            pair("currency", request.currency.to_lowercase()),
            pair("payment_method", &request.payment_method_id),
            pair("confirm", "true"),
            pair("description", &request.description),
            pair("automatic_payment_methods[enabled]", "true"),
            pair("automatic_payment_methods[allow_redirects]", "never"),
        ];
        if let Some(customer) = &request.customer_id {
            form.push(pair("customer", customer));
        }
        form.extend(
            request
                .metadata
                .iter()
                .map(|(k, v)| pair(format!("metadata[{k}]"), v)),
        );
        let intent = self
            .post("/v1/payment_intents", &form, &request.idempotency_key)
            .await?;
        parse_intent(&intent)
    }

    async fn retrieve_intent(&self, id: &str) -> Result<Intent, ProviderError> {
        let id = checked_id("payment_intent", id)?;
        parse_intent(&self.get(&format!("/v1/payment_intents/{id}")).await?)
    }

    async fn refund(
        &self,
        intent_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<Refund, ProviderError> {
        let form = [
            pair("payment_intent", intent_id),
            pair("amount", amount.cents().to_string()),
        ];
        let refund = self.post("/v1/refunds", &form, idempotency_key).await?;
        Ok(Refund {
            id: text(&refund["id"]).ok_or_else(|| {
                ProviderError::Unavailable("Stripe sent a refund without an id".into())
            })?,
            amount: Money::from_cents(refund["amount"].as_i64().unwrap_or(amount.cents())),
            status: text(&refund["status"]).unwrap_or_else(|| "pending".into()),
        })
    }

    fn verify_webhook(
        &self,
        payload: &[u8],
        signature: Option<&str>,
        now: i64,
    ) -> Result<WebhookEvent, ProviderError> {
        if self.config.webhook_secret.is_empty() {
            return Err(ProviderError::BadWebhook(
                "no Stripe webhook secret is configured".into(),
            ));
        }
        signature::verify(payload, signature, &self.config.webhook_secret, now)?;
        parse_event(payload)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn final_error(status: u16, body: Value) -> ProviderError {
        match classify(StatusCode::from_u16(status).unwrap(), &body) {
            Failure::Final(e) => e,
            Failure::Retry(reason) => panic!("{status} should be final, got retry: {reason}"),
        }
    }

    #[test]
    fn stripe_errors_map_to_provider_errors() {
        let card = json!({"error": {"type": "card_error", "message": "Your card was declined."}});
        assert!(
            matches!(final_error(402, card), ProviderError::Declined(m) if m == "Your card was declined.")
        );
        let invalid = json!({"error": {"type": "invalid_request_error", "message": "No such x"}});
        assert!(
            matches!(final_error(404, invalid.clone()), ProviderError::Invalid(m) if m == "No such x")
        );
        assert!(matches!(
            final_error(400, invalid),
            ProviderError::Invalid(_)
        ));
        assert!(matches!(
            final_error(401, Value::Null),
            ProviderError::Unavailable(_)
        ));
        for status in [409, 429, 500, 502, 503] {
            assert!(matches!(
                classify(StatusCode::from_u16(status).unwrap(), &Value::Null),
                Failure::Retry(_)
            ));
        }
    }

    #[test]
    fn payment_intents_and_events_are_parsed() {
        let object = json!({
            "id": "pi_1", "object": "payment_intent", "status": "requires_payment_method",
            "amount": 12050, "currency": "eur", "client_secret": "pi_1_secret_x",
            "latest_charge": {"id": "ch_1"}, "last_payment_error": {"message": "Declined"},
            "metadata": {"reservationId": "r1", "n": 5}
        });
        let intent = parse_intent(&object).unwrap();
        assert_eq!(intent.status, IntentStatus::RequiresPaymentMethod);
        assert_eq!(intent.amount, Money::from_cents(12050));
        assert_eq!(intent.currency, "EUR");
        assert_eq!(intent.latest_charge.as_deref(), Some("ch_1"));
        assert_eq!(intent.last_error.as_deref(), Some("Declined"));
        assert_eq!(intent.metadata.len(), 1);
        let event = json!({"id": "evt_1", "type": "payment_intent.payment_failed", "created": 5,
            "data": {"object": object}});
        let event = parse_event(event.to_string().as_bytes()).unwrap();
        assert_eq!((event.id.as_str(), event.created), ("evt_1", 5));
        assert_eq!(event.intent.unwrap().id, "pi_1");
        let other = json!({"id": "evt_2", "type": "charge.refunded", "created": 5,
            "data": {"object": {"object": "charge"}}});
        assert!(parse_event(other.to_string().as_bytes())
            .unwrap()
            .intent
            .is_none());
        assert!(matches!(
            parse_event(b"{}"),
            Err(ProviderError::BadWebhook(_))
        ));
    }

    #[test]
    fn ids_cannot_escape_the_url_path() {
        assert!(checked_id("payment_intent", "pi_123abc").is_ok());
        for bad in ["", "pi_1/../x", "pi_1?expand=x", "pi 1"] {
            assert!(matches!(
                checked_id("payment_intent", bad),
                Err(ProviderError::Invalid(_))
            ));
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config = StripeConfig {
            api_base: "https://api.stripe.com".into(),
            secret_key: "sk_test_hidden".into(),
            webhook_secret: "whsec_hidden".into(),
        };
        let text = format!("{config:?}");
        assert!(!text.contains("hidden") && text.contains("api.stripe.com"));
    }
}
