//! (being written by the payments helper)

/// Where and how to reach Stripe.
#[derive(Debug, Clone)]
pub struct StripeConfig {
    /// API base URL, `https://api.stripe.com` in production.
    pub api_base: String,
    /// Secret key (`sk_test_…` / `sk_live_…`).
    pub secret_key: String,
    /// Webhook endpoint secret (`whsec_…`).
    pub webhook_secret: String,
}

use async_trait::async_trait;
use uuid::Uuid;

use super::provider::*;
use crate::money::Money;

/// Stripe.
pub struct StripeProvider {
    #[allow(dead_code)]
    config: StripeConfig,
}

impl StripeProvider {
    /// A client for `config`.
    pub fn new(config: StripeConfig) -> Self {
        Self { config }
    }
}

#[async_trait]
impl PaymentProvider for StripeProvider {
    fn platform(&self) -> &'static str {
        "stripe"
    }
    async fn create_customer(&self, _user_id: Uuid, _email: &str) -> Result<String, ProviderError> {
        todo!()
    }
    async fn payment_method(&self, _id: &str) -> Result<MethodInfo, ProviderError> {
        todo!()
    }
    async fn create_intent(&self, _request: &IntentRequest) -> Result<Intent, ProviderError> {
        todo!()
    }
    async fn retrieve_intent(&self, _id: &str) -> Result<Intent, ProviderError> {
        todo!()
    }
    async fn refund(
        &self,
        _intent_id: &str,
        _amount: Money,
        _key: &str,
    ) -> Result<Refund, ProviderError> {
        todo!()
    }
    fn verify_webhook(
        &self,
        _p: &[u8],
        _s: Option<&str>,
        _now: i64,
    ) -> Result<WebhookEvent, ProviderError> {
        todo!()
    }
}
