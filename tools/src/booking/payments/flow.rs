//! The payment flow on a reservation: `startReservationPayment` charges the guest through the
//! configured provider, `refreshReservationPayment` and `callbackReservationPayment` re-read the
//! provider's state, and provider webhooks ([`handle_webhook`]) push it. All of them end in
//! [`apply_intent`], which moves `paymentConfirmation` forward only (a late `processing` never
//! downgrades `paid`), writes the ledger once per provider fact, and confirms the booking.
//!
//! Idempotency keys derive from our own state (`resv:<id>:pay:<attempt>`), so a retried call
//! replays the provider's first answer instead of charging twice.

use chrono::Utc;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::customers::{find_customer, remember_customer, remember_method};
use super::provider::{Intent, IntentRequest, IntentStatus, ProviderError};
use super::records::{append_record, RecordDraft};
use super::tickets::{load_ticket_for_order, upsert_ticket};
use crate::booking::lifecycle;
use crate::booking::model::{
    load_reservation, load_reservation_unchecked, record_activity, Party, Reservation,
};
use crate::booking::pricing::Quote;
use crate::context::{Ctx, Services};
use crate::error::{ErrorKind, ToolError};
use crate::money::Money;
use crate::registry::{Access, Annotations, Envelope, Flow, Method, Operation, Service};
use crate::types::Choice;
use crate::types::Text;
use crate::vocabulary::PaymentConfirmations;

/// What the payer supplies to start a payment.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentUserParams {
    /// The payment method to charge, e.g. `pm_card_visa` (Stripe test ids work with the local provider).
    pub payment_method_id: Text<255>,
    /// Where a browser should land after an off-site confirmation.
    pub redirect_url: Option<Text<1000>>,
}

/// Input of `startReservationPayment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StartPayment {
    /// The reservation to pay.
    pub reservation_id: Uuid,
    /// Must include paymentMethodId.
    pub payment_user_params: PaymentUserParams,
}

/// Input of `refreshReservationPayment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RefreshPayment {
    /// The reservation whose payment to re-read.
    pub reservation_id: Uuid,
    /// Accepted for compatibility; nothing in it changes a refresh.
    pub payment_user_params: Option<Value>,
}

/// Input of `callbackReservationPayment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentCallback {
    /// The reservation (order) the callback is about (required; the field is optional only so
    /// the refusal can point to the webhook route).
    #[schemars(required, with = "Uuid")]
    pub reservation_id: Option<Uuid>,
}

/// The payment's state as the provider reports it (`paymentResult`).
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResult {
    /// The payment ticket (Sys_reservationPayment) id.
    pub payment_ticket_id: Option<Uuid>,
    /// The reservation id.
    pub order_id: Uuid,
    /// The provider's payment id.
    pub payment_id: Option<String>,
    /// The provider's status (`succeeded`, `processing`, `requires_action`, …).
    pub payment_status: Option<String>,
    /// What the client may need to finish the payment (client secret, last error).
    pub payment_intent_info: Value,
    /// Haven's status: `pending`, `processing`, `paid` or `canceled`.
    #[schemars(with = "Choice<PaymentConfirmations>")]
    pub status_literal: String,
    /// Amount charged.
    pub amount: Money,
    /// Currency.
    pub currency: String,
    /// Whether the provider accepted the payment (false on a decline).
    pub success: bool,
    /// What happened, in words.
    pub description: String,
    /// The provider platform and reservation reference.
    pub metadata: Value,
    /// The parameters the caller sent.
    pub payment_user_params: Option<Value>,
}

/// A payment operation's answer: the reservation (null for callers who are not party to it) and
/// the payment result.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentOutcome {
    /// The reservation after the payment step.
    pub reservation: Option<Reservation>,
    /// The payment's state.
    pub payment_result: PaymentResult,
}

/// What `callbackReservationPayment` always says: the payment was read again from the provider.
pub const RECHECKED: &str = "re-checked";

/// The answer of `callbackReservationPayment`. Anyone may call it (gateways and redirect pages do),
/// so only the reservation's guest, host and admins see the reservation and the payment; everyone
/// else gets the acknowledgement alone.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallbackOutcome {
    /// Always `re-checked`: Haven re-read the payment from the provider and applied it.
    pub acknowledgement: String,
    /// The reservation after the re-check (guest, host and admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reservation: Option<Reservation>,
    /// The payment's state (guest, host and admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_result: Option<PaymentResult>,
}

/// Re-reading a payment from the provider and applying it: reaches the provider, moves no money.
const PAYMENT_ANNOTATIONS: Annotations = Annotations {
    read_only: false,
    destructive: false,
    idempotent: true,
    open_world: true,
};

/// Charging the guest's card: irreversible money movement through the provider, so clients must
/// ask before calling it, and a retry (e.g. with another card after a decline) may charge again.
const CHARGE_ANNOTATIONS: Annotations = Annotations {
    read_only: false,
    destructive: true,
    idempotent: false,
    open_world: true,
};

/// The payment-flow operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("startReservationPayment", Service::Booking)
            .core(Flow::Guest, 60)
            .title("Pay for a reservation")
            .who("the reservation's guest")
            .describe(
                "The guest pays a pending reservation (after the host's approval on manual listings) with \
                 paymentUserParams.paymentMethodId. With the default local provider use Stripe's test ids: \
                 pm_card_visa (succeeds), pm_card_chargeDeclined (declined), pm_card_processing (settles on a later \
                 refresh). On success paymentConfirmation becomes `paid` and the reservation `confirmed`; a decline \
                 returns success=false with the reason and the guest may retry with another method.",
            )
            .rest(Method::Patch, "/bookingmanagement-api/v1/startreservationpayment/{reservationId}")
            .access(Access::Authenticated)
            .updates("reservation")
            .annotations(CHARGE_ANNOTATIONS)
            .envelope(Envelope::Fields)
            .handler(start_payment),
        Operation::build("refreshReservationPayment", Service::Booking)
            .core(Flow::Guest, 70)
            .title("Refresh a reservation's payment")
            .who("the reservation's guest or host, or an admin")
            .describe(
                "Re-reads the reservation's payment from the provider and applies it (e.g. a `processing` payment \
                 that has since succeeded confirms the reservation). Guest, host or admin.",
            )
            .rest(Method::Patch, "/bookingmanagement-api/v1/refreshreservationpayment/{reservationId}")
            .access(Access::Authenticated)
            .updates("reservation")
            .annotations(PAYMENT_ANNOTATIONS)
            .envelope(Envelope::Fields)
            .handler(refresh_payment),
        Operation::build("callbackReservationPayment", Service::Booking)
            .title("Payment gateway callback")
            .who("anyone (no login needed); the reservation and payment in the answer are shown only to its guest, its host and admins")
            .describe(
                "Called by a payment gateway or redirect page with the reservation id: Haven re-reads the payment \
                 from the provider (it never trusts the caller's data) and applies it. Public; it answers \
                 acknowledgement `re-checked`, and only the reservation's guest, host or admins also get the \
                 reservation and the payment result. Signed Stripe webhooks go to \
                 POST /bookingmanagement-api/v1/webhooks/stripe.",
            )
            .rest(Method::Post, "/bookingmanagement-api/v1/callbackreservationpayment")
            .access(Access::Public)
            .updates("reservation")
            .annotations(PAYMENT_ANNOTATIONS)
            .envelope(Envelope::Fields)
            .handler(callback_payment),
    ]
}

/// Maps a provider failure onto the error an API caller sees.
fn provider_error(err: ProviderError) -> ToolError {
    match err {
        ProviderError::Declined(msg) => ToolError::unprocessable(format!("payment declined: {msg}")),
        ProviderError::Invalid(msg) => ToolError::field("paymentUserParams.paymentMethodId", msg),
        ProviderError::Unavailable(msg) => ToolError::new(
            ErrorKind::Unavailable,
            format!("the payment provider is unavailable ({msg}); retry shortly — no charge was duplicated"),
        ),
        ProviderError::BadWebhook(msg) => ToolError::bad_input(msg),
    }
}

/// Haven's payment status for a provider status.
fn literal_for(status: IntentStatus) -> &'static str {
    match status {
        IntentStatus::Succeeded => "paid",
        IntentStatus::Canceled => "canceled",
        IntentStatus::RequiresPaymentMethod => "pending",
        IntentStatus::Processing
        | IntentStatus::RequiresAction
        | IntentStatus::RequiresConfirmation
        | IntentStatus::RequiresCapture => "processing",
    }
}

/// Whether `paymentConfirmation` may move from `from` to `to` (forward only; `paid` is final).
fn may_move(from: &str, to: &str) -> bool {
    match (from, to) {
        (a, b) if a == b => false,
        ("paid", _) => false,
        ("canceled", b) => b == "paid",
        _ => true,
    }
}

async fn start_payment(ctx: Ctx, input: StartPayment) -> Result<PaymentOutcome, ToolError> {
    let reservation = load_reservation(&ctx, input.reservation_id, true).await?;
    if reservation.party(&ctx) != Some(Party::Guest) {
        return Err(ToolError::forbidden(
            "only the reservation's guest pays for it",
        ));
    }
    match (
        reservation.booking_status.as_str(),
        reservation.payment_confirmation.as_str(),
    ) {
        (_, "paid") => return Err(ToolError::unprocessable("this reservation is already paid")),
        (_, "processing") => return Err(ToolError::conflict(
            "a payment is already in progress; call refreshReservationPayment to see its outcome",
        )),
        ("pending", _) => {}
        (status, _) => {
            return Err(ToolError::unprocessable(format!(
                "a {status} reservation cannot be paid"
            )))
        }
    }
    if reservation.approval_type == "manual" && reservation.approved_at.is_none() {
        return Err(ToolError::unprocessable(
            "this listing approves requests manually: wait for the host's approveReservation, then pay",
        ));
    }
    if reservation.hold_expires_at.is_some_and(|t| t < Utc::now()) {
        return Err(ToolError::unprocessable(
            "the hold on these nights expired before payment; book again",
        ));
    }
    let provider = ctx.services.payments.clone();
    let platform = provider.platform();
    let guest = ctx.caller()?.clone();
    let customer = match find_customer(&ctx, guest.user_id, platform).await? {
        Some(id) => id,
        None => {
            let id = provider
                .create_customer(guest.user_id, &guest.email)
                .await
                .map_err(provider_error)?;
            remember_customer(&ctx, guest.user_id, platform, &id).await?;
            id
        }
    };
    let params = &input.payment_user_params;
    let method = provider
        .payment_method(params.payment_method_id.as_str())
        .await
        .map_err(provider_error)?;
    remember_method(&ctx, guest.user_id, platform, &customer, &method).await?;
    let attempt = failed_attempts(&ctx, reservation.id).await? + 1;
    let request = IntentRequest {
        amount: reservation.total_price,
        currency: reservation.currency.clone(),
        customer_id: Some(customer),
        payment_method_id: params.payment_method_id.as_str().to_string(),
        idempotency_key: format!("resv:{}:pay:{attempt}", reservation.id),
        description: format!("Haven reservation {}", reservation.id),
        metadata: [("reservationId".to_string(), reservation.id.to_string())].into(),
    };
    let user_params = serde_json::to_value(params).ok();
    let redirect = params.redirect_url.as_ref().map(|u| u.as_str());
    match provider.create_intent(&request).await {
        Ok(intent) => {
            let updated = apply_intent(&ctx, &reservation, &intent, redirect).await?;
            outcome(&ctx, updated, Some(&intent), user_params, None).await
        }
        Err(ProviderError::Declined(msg)) => {
            record_decline(&ctx, &reservation, &request, &msg, redirect).await?;
            let current = load_reservation(&ctx, reservation.id, false).await?;
            outcome(&ctx, current, None, user_params, Some(msg)).await
        }
        Err(other) => Err(provider_error(other)),
    }
}

/// Declined attempts so far (each attempt gets its own idempotency key).
async fn failed_attempts(ctx: &Ctx, reservation: Uuid) -> Result<i64, ToolError> {
    let mut db = ctx.db().await?;
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM booking.payment_records WHERE reservation_id = $1 AND payment_status = 'failed'",
    )
    .bind(reservation)
    .fetch_one(&mut *db)
    .await?)
}

/// Keeps a declined attempt: a `failed` ledger row, the ticket and a timeline entry.
async fn record_decline(
    ctx: &Ctx,
    reservation: &Reservation,
    request: &IntentRequest,
    message: &str,
    redirect: Option<&str>,
) -> Result<(), ToolError> {
    let platform = ctx.services.payments.platform();
    upsert_ticket(
        ctx,
        reservation.guest_id,
        reservation.id,
        &request.idempotency_key,
        IntentStatus::RequiresPaymentMethod.as_str(),
        "pending",
        platform,
        reservation.total_price,
        &reservation.currency,
        redirect,
    )
    .await?;
    append_record(
        ctx,
        RecordDraft {
            reservation_id: reservation.id,
            payment_intent_id: request.idempotency_key.clone(),
            stripe_charge_id: None,
            currency: reservation.currency.clone(),
            amount_paid: Money::ZERO,
            payment_status: "failed",
            city_tax: None,
            platform_fee: None,
            payout_amount_host: None,
            refund_amount: None,
            dedupe_key: format!("{}:failed", request.idempotency_key),
        },
    )
    .await?;
    record_activity(
        ctx,
        reservation.id,
        "payment_failed",
        None,
        Some(json!({ "paymentMethodId": request.payment_method_id })),
        Some(message),
    )
    .await
}

/// Applies a provider's view of a payment to its reservation (locked by the caller): the ticket,
/// `paymentConfirmation` (forward only), the ledger, and the booking status. A payment that
/// succeeds after the reservation ended is refunded in full.
pub async fn apply_intent(
    ctx: &Ctx,
    reservation: &Reservation,
    intent: &Intent,
    redirect: Option<&str>,
) -> Result<Reservation, ToolError> {
    let literal = literal_for(intent.status);
    let platform = ctx.services.payments.platform();
    upsert_ticket(
        ctx,
        reservation.guest_id,
        reservation.id,
        &intent.id,
        intent.status.as_str(),
        literal,
        platform,
        intent.amount,
        &intent.currency,
        redirect,
    )
    .await?;
    if !may_move(&reservation.payment_confirmation, literal) {
        return load_reservation_unchecked(ctx, reservation.id, false)
            .await?
            .ok_or_else(|| ToolError::not_found("reservation"));
    }
    {
        let mut db = ctx.db().await?;
        sqlx::query(
            "UPDATE booking.reservations SET payment_confirmation = $2, record_version = record_version + 1,
                    updated_at = now() WHERE id = $1",
        )
        .bind(reservation.id)
        .bind(literal)
        .execute(&mut *db)
        .await?;
    }
    record_activity(
        ctx,
        reservation.id,
        "payment_status_changed",
        Some(json!({ "paymentConfirmation": reservation.payment_confirmation })),
        Some(json!({ "paymentConfirmation": literal, "providerStatus": intent.status.as_str() })),
        None,
    )
    .await?;
    if literal == "paid" {
        let breakdown: Option<Quote> =
            serde_json::from_value(reservation.price_breakdown.clone()).ok();
        append_record(
            ctx,
            RecordDraft {
                reservation_id: reservation.id,
                payment_intent_id: intent.id.clone(),
                stripe_charge_id: intent.latest_charge.clone(),
                currency: intent.currency.clone(),
                amount_paid: intent.amount,
                payment_status: "paid",
                city_tax: breakdown.as_ref().map(|q| q.city_tax),
                platform_fee: breakdown.as_ref().map(|q| q.platform_fee),
                payout_amount_host: breakdown.as_ref().map(|q| q.host_payout),
                refund_amount: None,
                dedupe_key: format!("{}:paid", intent.id),
            },
        )
        .await?;
        let current = load_reservation_unchecked(ctx, reservation.id, true)
            .await?
            .ok_or_else(|| ToolError::not_found("reservation"))?;
        match current.booking_status.as_str() {
            "pending" => return lifecycle::confirm_paid(ctx, &current).await,
            "cancelled" | "declined" => {
                refund(
                    ctx,
                    &current,
                    intent.amount,
                    "paid after the reservation had ended: automatic full refund",
                )
                .await?;
            }
            _ => {}
        }
    }
    load_reservation_unchecked(ctx, reservation.id, false)
        .await?
        .ok_or_else(|| ToolError::not_found("reservation"))
}

/// Refunds `amount` of a reservation's payment through the provider and records it (ledger row,
/// `refundAmount`, timeline). Returns what was refunded (zero when nothing was paid through a
/// provider).
pub async fn refund(
    ctx: &Ctx,
    reservation: &Reservation,
    amount: Money,
    reason: &str,
) -> Result<Money, ToolError> {
    let Some(ticket) = load_ticket_for_order(ctx, reservation.id).await? else {
        return Ok(Money::ZERO);
    };
    let previous: i64 = {
        let mut db = ctx.db().await?;
        sqlx::query_scalar(
            "SELECT count(*) FROM booking.payment_records WHERE reservation_id = $1 AND payment_status = 'refunded'",
        )
        .bind(reservation.id)
        .fetch_one(&mut *db)
        .await?
    };
    let key = format!("resv:{}:refund:{}", reservation.id, previous + 1);
    let done = ctx
        .services
        .payments
        .refund(&ticket.payment_id, amount, &key)
        .await
        .map_err(provider_error)?;
    append_record(
        ctx,
        RecordDraft {
            reservation_id: reservation.id,
            payment_intent_id: ticket.payment_id.clone(),
            stripe_charge_id: None,
            currency: reservation.currency.clone(),
            amount_paid: Money::ZERO,
            payment_status: "refunded",
            city_tax: None,
            platform_fee: None,
            payout_amount_host: None,
            refund_amount: Some(done.amount),
            dedupe_key: format!("{}:refunded", done.id),
        },
    )
    .await?;
    {
        let mut db = ctx.db().await?;
        sqlx::query(
            "UPDATE booking.reservations SET refund_amount = coalesce(refund_amount, 0) + $2,
                    record_version = record_version + 1, updated_at = now() WHERE id = $1",
        )
        .bind(reservation.id)
        .bind(done.amount)
        .execute(&mut *db)
        .await?;
    }
    record_activity(
        ctx,
        reservation.id,
        "refund_issued",
        None,
        Some(
            json!({ "amount": done.amount, "currency": reservation.currency, "refundId": done.id }),
        ),
        Some(reason),
    )
    .await?;
    Ok(done.amount)
}

/// Re-reads the reservation's payment from the provider and applies it.
async fn resync(ctx: &Ctx, reservation: &Reservation) -> Result<(Reservation, Intent), ToolError> {
    let ticket = load_ticket_for_order(ctx, reservation.id)
        .await?
        .ok_or_else(|| {
            ToolError::unprocessable(
                "no payment was started for this reservation; call startReservationPayment",
            )
        })?;
    let intent = ctx
        .services
        .payments
        .retrieve_intent(&ticket.payment_id)
        .await
        .map_err(provider_error)?;
    let updated = apply_intent(ctx, reservation, &intent, ticket.redirect_url.as_deref()).await?;
    Ok((updated, intent))
}

async fn refresh_payment(ctx: Ctx, input: RefreshPayment) -> Result<PaymentOutcome, ToolError> {
    let reservation = load_reservation(&ctx, input.reservation_id, true).await?;
    let (updated, intent) = resync(&ctx, &reservation).await?;
    outcome(
        &ctx,
        updated,
        Some(&intent),
        input.payment_user_params,
        None,
    )
    .await
}

async fn callback_payment(ctx: Ctx, input: PaymentCallback) -> Result<CallbackOutcome, ToolError> {
    let id = input.reservation_id.ok_or_else(|| {
        ToolError::field(
            "reservationId",
            "the reservation id is required (signed Stripe webhooks go to /bookingmanagement-api/v1/webhooks/stripe)",
        )
    })?;
    let reservation = load_reservation_unchecked(&ctx, id, true)
        .await?
        .ok_or_else(|| ToolError::not_found("reservation"))?;
    let (updated, intent) = resync(&ctx, &reservation).await?;
    let (reservation, payment_result) = if updated.party(&ctx).is_some() {
        let full = outcome(&ctx, updated, Some(&intent), None, None).await?;
        (full.reservation, Some(full.payment_result))
    } else {
        (None, None)
    };
    Ok(CallbackOutcome {
        acknowledgement: RECHECKED.into(),
        reservation,
        payment_result,
    })
}

/// Builds the answer; callers who are not party to the reservation see only the payment status.
async fn outcome(
    ctx: &Ctx,
    reservation: Reservation,
    intent: Option<&Intent>,
    user_params: Option<Value>,
    declined: Option<String>,
) -> Result<PaymentOutcome, ToolError> {
    let ticket = load_ticket_for_order(ctx, reservation.id).await?;
    let party = reservation.party(ctx).is_some();
    let description = match (&declined, reservation.payment_confirmation.as_str()) {
        (Some(msg), _) => format!("payment declined: {msg}; try another payment method"),
        (None, "paid") => format!("paid; the reservation is {}", reservation.booking_status),
        (None, "processing") => {
            "the payment is being processed; call refreshReservationPayment later".into()
        }
        (None, other) => format!("payment {other}"),
    };
    let result = PaymentResult {
        payment_ticket_id: ticket.as_ref().map(|t| t.id),
        order_id: reservation.id,
        payment_id: ticket.as_ref().map(|t| t.payment_id.clone()),
        payment_status: ticket.as_ref().map(|t| t.payment_status.clone()),
        payment_intent_info: match (intent, party) {
            (Some(i), true) => {
                json!({ "status": i.status, "clientSecret": i.client_secret, "lastError": i.last_error })
            }
            (Some(i), false) => json!({ "status": i.status }),
            (None, _) => {
                json!({ "status": IntentStatus::RequiresPaymentMethod, "lastError": declined })
            }
        },
        status_literal: reservation.payment_confirmation.clone(),
        amount: reservation.total_price,
        currency: reservation.currency.clone(),
        success: declined.is_none(),
        description,
        metadata: json!({ "platform": ctx.services.payments.platform(), "reservationId": reservation.id }),
        payment_user_params: user_params,
    };
    Ok(PaymentOutcome {
        reservation: party.then_some(reservation),
        payment_result: result,
    })
}

/// What a webhook delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookOutcome {
    /// Applied to a reservation.
    Applied,
    /// Seen before (at-least-once delivery); nothing changed.
    Duplicate,
    /// Verified but about nothing we track.
    Ignored,
}

/// Verifies and applies one provider webhook delivery (raw body and signature header). A bad
/// signature is a 400 and changes nothing; a replayed event id changes nothing.
pub async fn handle_webhook(
    services: &Services,
    payload: &[u8],
    signature: Option<&str>,
) -> Result<WebhookOutcome, ToolError> {
    let event = services
        .payments
        .verify_webhook(payload, signature, Utc::now().timestamp())
        .map_err(provider_error)?;
    let ctx = Ctx::new(
        services.clone(),
        None,
        format!("webhook-{}", event.id),
        None,
    );
    let fresh = {
        let mut db = ctx.db().await?;
        sqlx::query(
            "INSERT INTO booking.webhook_events (event_id, platform, event_type, object_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(services.payments.platform())
        .bind(&event.kind)
        .bind(event.intent.as_ref().map(|i| i.id.clone()))
        .execute(&mut *db)
        .await?
        .rows_affected()
            == 1
    };
    let outcome = if !fresh {
        WebhookOutcome::Duplicate
    } else if let Some(intent) = &event.intent {
        let order: Option<Uuid> = {
            let mut db = ctx.db().await?;
            sqlx::query_scalar(
                "SELECT order_id FROM booking.reservation_payments WHERE payment_id = $1",
            )
            .bind(&intent.id)
            .fetch_optional(&mut *db)
            .await?
        };
        match order {
            Some(order) => match load_reservation_unchecked(&ctx, order, true).await? {
                Some(reservation) => {
                    let updated = apply_intent(&ctx, &reservation, intent, None).await?;
                    // Not an operation: the event and the parties' notifications are written here.
                    let output = serde_json::to_value(&updated).map_err(ToolError::internal)?;
                    let mut db = ctx.db().await?;
                    crate::audit::record_system(
                        &mut db,
                        &ctx,
                        "paymentWebhook",
                        "reservation",
                        &output,
                    )
                    .await?;
                    WebhookOutcome::Applied
                }
                None => WebhookOutcome::Ignored,
            },
            None => WebhookOutcome::Ignored,
        }
    } else {
        WebhookOutcome::Ignored
    };
    ctx.commit().await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payment_status_only_moves_forward() {
        assert!(may_move("pending", "processing"));
        assert!(may_move("processing", "paid"));
        assert!(!may_move("paid", "processing"));
        assert!(!may_move("paid", "canceled"));
        assert!(may_move("canceled", "paid"));
        assert!(!may_move("canceled", "processing"));
        assert!(!may_move("processing", "processing"));
    }

    #[test]
    fn provider_statuses_map_to_literals() {
        assert_eq!(literal_for(IntentStatus::Succeeded), "paid");
        assert_eq!(literal_for(IntentStatus::RequiresAction), "processing");
        assert_eq!(literal_for(IntentStatus::RequiresPaymentMethod), "pending");
    }
}
