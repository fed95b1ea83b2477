//! The in-process provider, the default so a fresh machine can take payments. It behaves like a
//! remote provider: its state lives in `booking.local_payment_intents` / `local_payment_refunds`,
//! written on its own pool outside the caller's transaction, and every write is idempotent per key.
//! Stripe's test payment method ids drive the outcome (`pm_card_visa` pays, `pm_card_chargeDeclined`
//! declines, `pm_card_authenticationRequired` needs 3-D Secure); `pm_card_processing` (ours) stays
//! `processing` until the first retrieval at least 2 s after creation, then succeeds.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::Datelike;
use serde_json::json;
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

use super::provider::*;
use crate::money::Money;

/// The message Stripe gives for `card_declined`.
const DECLINED: &str = "Your card was declined.";

/// What a test payment method does when charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Succeed,
    Decline,
    Authenticate,
    Process,
}

/// A test payment method: its outcome and display details.
struct TestCard {
    outcome: Outcome,
    brand: &'static str,
    last4: &'static str,
}

/// Resolves a payment method id the way Stripe's test mode does.
fn test_card(id: &str) -> Result<TestCard, ProviderError> {
    if !id.starts_with("pm_") {
        return Err(ProviderError::Invalid(format!(
            "No such PaymentMethod: '{id}'; use a test id such as pm_card_visa"
        )));
    }
    let (outcome, brand, last4) = match id {
        "pm_card_chargeDeclined" | "pm_card_visa_chargeDeclined" => {
            (Outcome::Decline, "visa", "0002")
        }
        "pm_card_authenticationRequired" => (Outcome::Authenticate, "visa", "3184"),
        "pm_card_processing" => (Outcome::Process, "visa", "4242"),
        "pm_card_mastercard" => (Outcome::Succeed, "mastercard", "4444"),
        "pm_card_amex" => (Outcome::Succeed, "amex", "8431"),
        "pm_card_discover" => (Outcome::Succeed, "discover", "1117"),
        _ => (Outcome::Succeed, "visa", "4242"),
    };
    Ok(TestCard {
        outcome,
        brand,
        last4,
    })
}

fn local_id(prefix: &str) -> String {
    format!("{prefix}_local_{}", Uuid::new_v4().simple())
}

fn db_error(e: sqlx::Error) -> ProviderError {
    ProviderError::Unavailable(format!("the local payment store failed: {e}"))
}

fn key_reused() -> ProviderError {
    ProviderError::Invalid(
        "Keys for idempotent requests can only be used with the same parameters they were first \
         used with"
            .into(),
    )
}

const INTENT_COLUMNS: &str = "id, status, amount, currency, customer_id, payment_method_id, \
     client_secret, latest_charge, last_error, metadata";

/// A stored intent.
#[derive(sqlx::FromRow)]
struct IntentRow {
    id: String,
    status: String,
    amount: i64,
    currency: String,
    customer_id: Option<String>,
    payment_method_id: String,
    client_secret: Option<String>,
    latest_charge: Option<String>,
    last_error: Option<String>,
    metadata: Json<BTreeMap<String, String>>,
}

impl IntentRow {
    fn into_intent(self) -> Result<Intent, ProviderError> {
        Ok(Intent {
            status: IntentStatus::parse(&self.status).ok_or_else(|| {
                ProviderError::Unavailable(format!("stored intent has status {}", self.status))
            })?,
            id: self.id,
            amount: Money::from_cents(self.amount),
            currency: self.currency,
            client_secret: self.client_secret,
            latest_charge: self.latest_charge,
            last_error: self.last_error,
            metadata: self.metadata.0,
        })
    }
}

/// A stored refund.
#[derive(sqlx::FromRow)]
struct RefundRow {
    id: String,
    intent_id: String,
    amount: i64,
}

impl RefundRow {
    /// A replay under the same key must name the same intent and amount.
    fn replay(self, intent_id: &str, amount: Money) -> Result<Refund, ProviderError> {
        if self.intent_id != intent_id || self.amount != amount.cents() {
            return Err(key_reused());
        }
        Ok(Refund {
            id: self.id,
            amount: Money::from_cents(self.amount),
            status: "succeeded".into(),
        })
    }
}

/// The in-process provider.
pub struct LocalProvider {
    pool: PgPool,
}

impl LocalProvider {
    /// A local provider keeping its intents in `booking.local_payment_intents`.
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    async fn intent_row(&self, id: &str) -> Result<IntentRow, ProviderError> {
        sqlx::query_as::<_, IntentRow>(&format!(
            "SELECT {INTENT_COLUMNS} FROM booking.local_payment_intents WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ProviderError::Invalid(format!("No such payment_intent: '{id}'")))
    }

    async fn refund_by_key(
        conn: &mut sqlx::PgConnection,
        key: &str,
    ) -> Result<Option<RefundRow>, ProviderError> {
        sqlx::query_as::<_, RefundRow>(
            "SELECT id, intent_id, amount FROM booking.local_payment_refunds \
             WHERE idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(conn)
        .await
        .map_err(db_error)
    }
}

#[async_trait]
impl PaymentProvider for LocalProvider {
    fn platform(&self) -> &'static str {
        "local"
    }

    async fn create_customer(&self, user_id: Uuid, _email: &str) -> Result<String, ProviderError> {
        // Derived from the user, so creating it again yields the same customer.
        Ok(format!("cus_local_{}", user_id.simple()))
    }

    async fn payment_method(&self, id: &str) -> Result<MethodInfo, ProviderError> {
        let card = test_card(id)?;
        Ok(MethodInfo {
            id: id.to_string(),
            card: Some(json!({
                "brand": card.brand,
                "last4": card.last4,
                "expMonth": 12,
                "expYear": chrono::Utc::now().year() + 3,
            })),
            holder_name: None,
            holder_zip: None,
        })
    }

    async fn create_intent(&self, request: &IntentRequest) -> Result<Intent, ProviderError> {
        if request.amount.cents() <= 0 {
            return Err(ProviderError::Invalid(
                "the amount must be greater than zero".into(),
            ));
        }
        if request.currency.len() != 3 || !request.currency.bytes().all(|b| b.is_ascii_alphabetic())
        {
            return Err(ProviderError::Invalid(format!(
                "Invalid currency: '{}'",
                request.currency
            )));
        }
        let card = test_card(&request.payment_method_id)?;
        let id = local_id("pi");
        let (status, charge, error) = match card.outcome {
            Outcome::Succeed => (IntentStatus::Succeeded, Some(local_id("ch")), None),
            Outcome::Decline => (IntentStatus::RequiresPaymentMethod, None, Some(DECLINED)),
            Outcome::Authenticate => (IntentStatus::RequiresAction, None, None),
            Outcome::Process => (IntentStatus::Processing, None, None),
        };
        let currency = request.currency.to_uppercase();
        sqlx::query(
            "INSERT INTO booking.local_payment_intents (id, idempotency_key, amount, currency, \
                 customer_id, payment_method_id, status, metadata, client_secret, latest_charge, \
                 last_error, description) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(&request.idempotency_key)
        .bind(request.amount.cents())
        .bind(&currency)
        .bind(&request.customer_id)
        .bind(&request.payment_method_id)
        .bind(status.as_str())
        .bind(Json(&request.metadata))
        .bind(format!("{id}_secret_{}", Uuid::new_v4().simple()))
        .bind(charge)
        .bind(error)
        .bind(&request.description)
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        // The stored intent answers, whether this call created it or an earlier one did.
        let row = sqlx::query_as::<_, IntentRow>(&format!(
            "SELECT {INTENT_COLUMNS} FROM booking.local_payment_intents WHERE idempotency_key = $1"
        ))
        .bind(&request.idempotency_key)
        .fetch_one(&self.pool)
        .await
        .map_err(db_error)?;
        if row.amount != request.amount.cents()
            || row.currency != currency
            || row.payment_method_id != request.payment_method_id
            || row.customer_id != request.customer_id
        {
            return Err(key_reused());
        }
        let intent = row.into_intent()?;
        match (&intent.status, &intent.last_error) {
            // Stripe replays the decline too: the same key keeps answering 402.
            (IntentStatus::RequiresPaymentMethod, Some(message)) => {
                Err(ProviderError::Declined(message.clone()))
            }
            _ => Ok(intent),
        }
    }

    async fn retrieve_intent(&self, id: &str) -> Result<Intent, ProviderError> {
        sqlx::query(
            "UPDATE booking.local_payment_intents \
             SET status = 'succeeded', latest_charge = $2, updated_at = now() \
             WHERE id = $1 AND status = 'processing' AND created_at <= now() - interval '2 seconds'",
        )
        .bind(id)
        .bind(local_id("ch"))
        .execute(&self.pool)
        .await
        .map_err(db_error)?;
        self.intent_row(id).await?.into_intent()
    }

    async fn refund(
        &self,
        intent_id: &str,
        amount: Money,
        idempotency_key: &str,
    ) -> Result<Refund, ProviderError> {
        let mut tx = self.pool.begin().await.map_err(db_error)?;
        // Serialises refunds of one intent, so concurrent ones cannot exceed the amount paid.
        let paid: Option<(String, i64, i64)> = sqlx::query_as(
            "SELECT status, amount, refunded_amount FROM booking.local_payment_intents \
             WHERE id = $1 FOR UPDATE",
        )
        .bind(intent_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_error)?;
        let (status, paid, refunded) = paid.ok_or_else(|| {
            ProviderError::Invalid(format!("No such payment_intent: '{intent_id}'"))
        })?;
        if let Some(done) = Self::refund_by_key(&mut tx, idempotency_key).await? {
            return done.replay(intent_id, amount);
        }
        if status != IntentStatus::Succeeded.as_str() {
            return Err(ProviderError::Invalid(format!(
                "PaymentIntent {intent_id} has status {status}; only succeeded payments can be \
                 refunded"
            )));
        }
        let left = paid - refunded;
        if amount.cents() <= 0 || amount.cents() > left {
            return Err(ProviderError::Invalid(format!(
                "Refund amount ({amount}) must be greater than zero and at most the unrefunded \
                 amount ({})",
                Money::from_cents(left)
            )));
        }
        let id = local_id("re");
        let inserted = sqlx::query(
            "INSERT INTO booking.local_payment_refunds (id, idempotency_key, intent_id, amount) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (idempotency_key) DO NOTHING",
        )
        .bind(&id)
        .bind(idempotency_key)
        .bind(intent_id)
        .bind(amount.cents())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?
        .rows_affected();
        if inserted == 0 {
            // The same key was just used for another intent's refund.
            let done = Self::refund_by_key(&mut tx, idempotency_key).await?;
            return done.ok_or_else(key_reused)?.replay(intent_id, amount);
        }
        sqlx::query(
            "UPDATE booking.local_payment_intents \
             SET refunded_amount = refunded_amount + $2, updated_at = now() WHERE id = $1",
        )
        .bind(intent_id)
        .bind(amount.cents())
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        Ok(Refund {
            id,
            amount,
            status: "succeeded".into(),
        })
    }

    fn verify_webhook(
        &self,
        _payload: &[u8],
        _signature: Option<&str>,
        _now: i64,
    ) -> Result<WebhookEvent, ProviderError> {
        Err(ProviderError::BadWebhook(
            "the local provider sends no webhooks".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_cards_mirror_stripe_test_ids() {
        let outcome = |id: &str| test_card(id).unwrap().outcome;
        assert_eq!(outcome("pm_card_visa"), Outcome::Succeed);
        assert_eq!(outcome("pm_card_unlisted"), Outcome::Succeed);
        assert_eq!(outcome("pm_card_chargeDeclined"), Outcome::Decline);
        assert_eq!(outcome("pm_card_visa_chargeDeclined"), Outcome::Decline);
        assert_eq!(
            outcome("pm_card_authenticationRequired"),
            Outcome::Authenticate
        );
        assert_eq!(outcome("pm_card_processing"), Outcome::Process);
        assert_eq!(test_card("pm_card_amex").unwrap().last4, "8431");
        assert_eq!(test_card("pm_card_mastercard").unwrap().brand, "mastercard");
        match test_card("card_1234") {
            Err(ProviderError::Invalid(message)) => assert!(message.contains("'card_1234'")),
            _ => panic!("an id without pm_ must be rejected"),
        }
    }
}
