//! (being written by the payments helper)

use async_trait::async_trait;
use sqlx::PgPool;
use uuid::Uuid;

use super::provider::*;
use crate::money::Money;

/// The in-process provider.
pub struct LocalProvider {
    #[allow(dead_code)]
    pool: PgPool,
}

impl LocalProvider {
    /// A local provider keeping its intents in `booking.local_payment_intents`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl PaymentProvider for LocalProvider {
    fn platform(&self) -> &'static str {
        "local"
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
