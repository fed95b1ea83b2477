//! The payment-provider boundary. Booking code talks only to [`PaymentProvider`]; `local` settles
//! test payment methods in-process (the default, so a fresh machine can take payments) and
//! `stripe` speaks Stripe's HTTP API. Both are real implementations of the same contract.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::money::Money;

/// A PaymentIntent's status, with Stripe's names (`succeeded` and `canceled` are terminal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    /// Needs a (new) payment method, e.g. after a decline.
    RequiresPaymentMethod,
    /// Created, not confirmed.
    RequiresConfirmation,
    /// The customer must act (3-D Secure).
    RequiresAction,
    /// The provider is settling it.
    Processing,
    /// Authorised, not captured.
    RequiresCapture,
    /// Cancelled (terminal).
    Canceled,
    /// Paid (terminal).
    Succeeded,
}

impl IntentStatus {
    /// Stripe's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            IntentStatus::RequiresPaymentMethod => "requires_payment_method",
            IntentStatus::RequiresConfirmation => "requires_confirmation",
            IntentStatus::RequiresAction => "requires_action",
            IntentStatus::Processing => "processing",
            IntentStatus::RequiresCapture => "requires_capture",
            IntentStatus::Canceled => "canceled",
            IntentStatus::Succeeded => "succeeded",
        }
    }
    /// Parses Stripe's wire name.
    pub fn parse(s: &str) -> Option<IntentStatus> {
        serde_json::from_value(Value::String(s.to_string())).ok()
    }
    /// No later event may change a terminal status.
    pub fn is_terminal(self) -> bool {
        matches!(self, IntentStatus::Succeeded | IntentStatus::Canceled)
    }
}

/// What to charge.
#[derive(Debug, Clone)]
pub struct IntentRequest {
    /// The amount.
    pub amount: Money,
    /// ISO currency code, upper case.
    pub currency: String,
    /// The provider's customer id.
    pub customer_id: Option<String>,
    /// The payment method to charge (Stripe test ids such as `pm_card_visa` work with `local`).
    pub payment_method_id: String,
    /// Derived from our own operation (e.g. `resv:<id>:pay:v1`), reused on every retry.
    pub idempotency_key: String,
    /// Shown on the provider's dashboard.
    pub description: String,
    /// Echoed back on the intent and its webhooks (we put `reservationId` here).
    pub metadata: BTreeMap<String, String>,
}

/// A provider-side payment.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Intent {
    /// Provider id (`pi_…`).
    pub id: String,
    /// Current status.
    pub status: IntentStatus,
    /// Amount.
    pub amount: Money,
    /// ISO currency code, upper case.
    pub currency: String,
    /// For client-side confirmation (3-D Secure), when the provider gives one.
    pub client_secret: Option<String>,
    /// The charge that settled it, once there is one.
    pub latest_charge: Option<String>,
    /// The decline or error message of the last attempt.
    pub last_error: Option<String>,
    /// The metadata sent at creation.
    pub metadata: BTreeMap<String, String>,
}

/// A payment method's display details.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MethodInfo {
    /// Provider id.
    pub id: String,
    /// Card details without secrets: brand, last4, expMonth, expYear.
    pub card: Option<Value>,
    /// Billing name.
    pub holder_name: Option<String>,
    /// Billing postal code.
    pub holder_zip: Option<String>,
}

/// A refund.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// Provider id (`re_…`).
    pub id: String,
    /// Refunded amount.
    pub amount: Money,
    /// Provider status (`succeeded`, `pending`, `failed`).
    pub status: String,
}

/// A verified webhook event.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// Event id (`evt_…`); duplicates are ignored by id.
    pub id: String,
    /// Event type, e.g. `payment_intent.succeeded`.
    pub kind: String,
    /// Unix seconds when the provider created it.
    pub created: i64,
    /// The PaymentIntent the event carries, if it carries one.
    pub intent: Option<Intent>,
}

/// Why a provider call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The card was declined or the payment refused; the message is for the payer.
    #[error("payment declined: {0}")]
    Declined(String),
    /// We sent something the provider rejects (unknown payment method, bad amount).
    #[error("payment provider rejected the request: {0}")]
    Invalid(String),
    /// Network trouble or a provider outage; safe to retry with the same idempotency key.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// A webhook failed verification (signature, timestamp or payload).
    #[error("webhook rejected: {0}")]
    BadWebhook(String),
}

/// One payment provider.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// The platform name stored on records (`local`, `stripe`).
    fn platform(&self) -> &'static str;
    /// Creates the provider-side customer for `user_id` (idempotent per user).
    async fn create_customer(&self, user_id: Uuid, email: &str) -> Result<String, ProviderError>;
    /// Looks up a payment method's display details.
    async fn payment_method(&self, id: &str) -> Result<MethodInfo, ProviderError>;
    /// Creates and confirms a payment (idempotent per `request.idempotency_key`).
    async fn create_intent(&self, request: &IntentRequest) -> Result<Intent, ProviderError>;
    /// Reads a payment's current state from the provider.
    async fn retrieve_intent(&self, id: &str) -> Result<Intent, ProviderError>;
    /// Refunds `amount` of a succeeded payment (idempotent per key).
    async fn refund(
        &self,
        intent_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<Refund, ProviderError>;
    /// Verifies a webhook's signature over the raw body and parses it; `now` is unix seconds.
    fn verify_webhook(
        &self,
        payload: &[u8],
        signature: Option<&str>,
        now: i64,
    ) -> Result<WebhookEvent, ProviderError>;
}
