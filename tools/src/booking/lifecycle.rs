//! The reservation lifecycle, one operation per transition (DESIGN.md §4):
//!
//! | operation             | who                | from                               | to          |
//! |-----------------------|--------------------|------------------------------------|-------------|
//! | `approveReservation`  | host, admin        | pending (manual, not yet approved) | pending, approved: payment due |
//! | `declineReservation`  | host, admin        | pending (not paid)                 | declined    |
//! | `cancelReservation`   | guest, host, admin | pending, confirmed                 | cancelled (+ refund) |
//! | `completeReservation` | host, admin        | confirmed, from check-out day      | complete    |
//! | payment succeeds      | the payment flow   | pending (instant, or approved)     | confirmed   |
//! | hold expires          | the system         | pending, unpaid, past its deadline | cancelled   |
//!
//! Every transition is checked against the current state under a row lock and recorded in the
//! reservation's activity timeline.

use chrono::Utc;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::model::{load_reservation, record_activity, Party, Reservation, RESERVATION_COLUMNS};
use super::payments::flow;
use crate::catalog::policies::CancellationPolicy;
use crate::context::{Ctx, Services};
use crate::error::ToolError;
use crate::money::Money;
use crate::registry::{Access, Flow, Method, Operation, Service};
use crate::types::Text;

/// Statuses whose nights stay held (the exclusion constraint covers them).
pub const HOLDING: &[&str] = &["pending", "confirmed", "complete"];

/// Input of every transition: the reservation, an optional reason and the version you read.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Transition {
    /// The reservation.
    pub reservation_id: Uuid,
    /// Why (shown to the other party and kept in the timeline).
    pub reason: Option<Text<1000>>,
    /// The version you read; stale → 409.
    pub record_version: Option<i32>,
}

/// The lifecycle operations.
pub fn operations() -> Vec<Operation> {
    let transition = |name: &'static str, path: &'static str| {
        Operation::build(name, Service::Booking)
            .rest(Method::Post, path)
            .access(Access::Authenticated)
            .updates("reservation")
    };
    vec![
        transition("approveReservation", "/bookingmanagement-api/v1/reservations/{reservationId}/approve")
            .core(Flow::Host, 50)
            .title("Approve a booking request")
            .who("the listing's host, or an admin")
            .describe(
                "The host (or an admin) accepts a pending request on a manual-approval listing. The guest then has \
                 the payment window to pay with startReservationPayment; once paid the reservation is `confirmed`. \
                 Instant-booking reservations need no approval.",
            )
            .handler(approve),
        transition("declineReservation", "/bookingmanagement-api/v1/reservations/{reservationId}/decline")
            .core(Flow::Host, 60)
            .title("Decline a booking request")
            .who("the listing's host, or an admin")
            .describe(
                "The host (or an admin) turns down a pending, unpaid request; the nights are released and the \
                 reservation becomes `declined`. Give a reason for the guest.",
            )
            .handler(decline),
        transition("cancelReservation", "/bookingmanagement-api/v1/reservations/{reservationId}/cancel")
            .core(Flow::Guest, 100)
            .title("Cancel a reservation")
            .who("the reservation's guest or host before check-in; admins at any time")
            .describe(
                "Cancels a pending or confirmed reservation and releases its nights. Guest or host before check-in, \
                 admins any time. A paid reservation is refunded: in full when the host or an admin cancels, \
                 otherwise per the reservation's cancellation-policy snapshot (see freeCancellationUntil in the quote).",
            )
            // A paid reservation is refunded through the payment provider.
            .open_world()
            .handler(cancel_op),
        transition("completeReservation", "/bookingmanagement-api/v1/reservations/{reservationId}/complete")
            .core(Flow::Host, 70)
            .title("Mark a stay complete")
            .who("the listing's host, or an admin")
            .describe(
                "The host (or an admin) marks a confirmed stay `complete` on or after its check-out day. Reviews \
                 open once a stay is complete. (Stays are also completed automatically the day after check-out.)",
            )
            .handler(complete),
    ]
}

/// Loads the reservation for a transition: visible, locked, at the version the caller read.
async fn load_for(ctx: &Ctx, input: &Transition) -> Result<Reservation, ToolError> {
    let current = load_reservation(ctx, input.reservation_id, true).await?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "reservation",
    )?;
    Ok(current)
}

fn host_or_admin(current: &Reservation, ctx: &Ctx, verb: &str) -> Result<(), ToolError> {
    match current.party(ctx) {
        Some(Party::Host | Party::Admin) => Ok(()),
        _ => Err(ToolError::forbidden(format!(
            "only the listing's host (or an admin) may {verb} a reservation"
        ))),
    }
}

fn wrong_state(current: &Reservation, verb: &str, allowed: &str) -> ToolError {
    ToolError::unprocessable(format!(
        "cannot {verb} a reservation that is {} (only {allowed})",
        current.booking_status
    ))
}

/// Moves a reservation to `to`, stamping cancellation fields for terminal moves, and records
/// the change in the timeline.
async fn set_status(
    ctx: &Ctx,
    current: &Reservation,
    to: &str,
    reason: Option<&str>,
) -> Result<Reservation, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE booking.reservations r SET booking_status = $2,
            cancelled_at = CASE WHEN $2 IN ('cancelled', 'declined') THEN now() ELSE cancelled_at END,
            cancelled_by = CASE WHEN $2 IN ('cancelled', 'declined') THEN $3 ELSE cancelled_by END,
            cancellation_reason = CASE WHEN $2 IN ('cancelled', 'declined') THEN $4 ELSE cancellation_reason END,
            payment_confirmation = CASE WHEN $2 IN ('cancelled', 'declined') AND payment_confirmation <> 'paid'
                                        THEN 'canceled' ELSE payment_confirmation END,
            hold_expires_at = CASE WHEN $2 = 'pending' THEN hold_expires_at END,
            record_version = record_version + 1, updated_at = now()
          WHERE id = $1 RETURNING {RESERVATION_COLUMNS}"
    );
    let updated: Reservation = sqlx::query_as(&sql)
        .bind(current.id)
        .bind(to)
        .bind(ctx.user_id())
        .bind(reason)
        .fetch_one(&mut *db)
        .await?;
    drop(db);
    record_activity(
        ctx,
        current.id,
        "status_changed",
        Some(json!({ "bookingStatus": current.booking_status })),
        Some(json!({ "bookingStatus": to })),
        reason,
    )
    .await?;
    Ok(updated)
}

/// Confirms a pending reservation whose payment just succeeded (called by the payment flow).
pub async fn confirm_paid(ctx: &Ctx, current: &Reservation) -> Result<Reservation, ToolError> {
    set_status(ctx, current, "confirmed", Some("payment received")).await
}

async fn approve(ctx: Ctx, input: Transition) -> Result<Reservation, ToolError> {
    let current = load_for(&ctx, &input).await?;
    host_or_admin(&current, &ctx, "approve")?;
    if current.approval_type != "manual" {
        return Err(ToolError::unprocessable(
            "instant-booking reservations need no approval; they confirm when paid",
        ));
    }
    if current.booking_status != "pending" {
        return Err(wrong_state(&current, "approve", "pending requests"));
    }
    if current.approved_at.is_some() {
        return Err(ToolError::unprocessable(
            "this request is already approved; it is waiting for the guest's payment",
        ));
    }
    let due = Utc::now() + ctx.services.settings.payment_window;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE booking.reservations r SET approved_at = now(), hold_expires_at = $2,
            record_version = record_version + 1, updated_at = now()
          WHERE id = $1 RETURNING {RESERVATION_COLUMNS}"
    );
    let updated: Reservation = sqlx::query_as(&sql)
        .bind(current.id)
        .bind(due)
        .fetch_one(&mut *db)
        .await?;
    drop(db);
    let reason = input.reason.as_ref().map(|r| r.as_str());
    record_activity(
        &ctx,
        current.id,
        "request_approved",
        None,
        Some(json!({ "paymentDueAt": due })),
        reason,
    )
    .await?;
    Ok(updated)
}

async fn decline(ctx: Ctx, input: Transition) -> Result<Reservation, ToolError> {
    let current = load_for(&ctx, &input).await?;
    host_or_admin(&current, &ctx, "decline")?;
    if current.booking_status != "pending" || current.payment_confirmation == "paid" {
        return Err(wrong_state(&current, "decline", "pending, unpaid requests"));
    }
    let reason = input.reason.as_ref().map(|r| r.as_str());
    set_status(&ctx, &current, "declined", reason).await
}

async fn cancel_op(ctx: Ctx, input: Transition) -> Result<Reservation, ToolError> {
    let current = load_for(&ctx, &input).await?;
    cancel(&ctx, current, input.reason.map(|r| r.as_str().to_string())).await
}

/// Cancels a pending or confirmed reservation (locked by the caller) and refunds what the
/// cancellation-policy snapshot allows: everything when the host or an admin cancels.
pub async fn cancel(
    ctx: &Ctx,
    current: Reservation,
    reason: Option<String>,
) -> Result<Reservation, ToolError> {
    let party = current.party(ctx);
    if !matches!(current.booking_status.as_str(), "pending" | "confirmed") {
        return Err(wrong_state(
            &current,
            "cancel",
            "pending or confirmed reservations",
        ));
    }
    let today = Utc::now().date_naive();
    if party != Some(Party::Admin) && today >= current.check_in {
        return Err(ToolError::unprocessable(
            "the stay has begun; guests and hosts can no longer cancel it — open a dispute (createDispute) instead",
        ));
    }
    let refund = if current.payment_confirmation != "paid" {
        Money::ZERO
    } else if party == Some(Party::Guest) {
        let policy: CancellationPolicy =
            serde_json::from_value(current.cancellation_policy_snapshot.clone())
                .unwrap_or_default();
        policy.guest_refund(current.total_price, today, current.check_in)
    } else {
        current.total_price
    };
    let reason = reason.unwrap_or_else(|| "cancelled".into());
    let cancelled = set_status(ctx, &current, "cancelled", Some(&reason)).await?;
    if refund > Money::ZERO {
        flow::refund(ctx, &cancelled, refund, &reason).await?;
        return load_reservation(ctx, current.id, false).await;
    }
    Ok(cancelled)
}

async fn complete(ctx: Ctx, input: Transition) -> Result<Reservation, ToolError> {
    let current = load_for(&ctx, &input).await?;
    host_or_admin(&current, &ctx, "complete")?;
    if current.booking_status != "confirmed" {
        return Err(wrong_state(&current, "complete", "confirmed stays"));
    }
    if Utc::now().date_naive() < current.check_out {
        return Err(ToolError::unprocessable(format!(
            "a stay can be completed from its check-out day ({})",
            current.check_out
        )));
    }
    let reason = input.reason.as_ref().map(|r| r.as_str());
    set_status(&ctx, &current, "complete", reason).await
}

/// Releases unpaid pending reservations past their deadline (all, or one listing's) as
/// `cancelled`, recording a system entry in each timeline. Runs before every booking attempt
/// on a listing, so an expired hold never blocks a new guest, and periodically via [`sweep`].
pub async fn expire_overdue(ctx: &Ctx, listing: Option<Uuid>) -> Result<u64, ToolError> {
    let mut db = ctx.db().await?;
    let expired: Vec<(Uuid, Uuid, Uuid, Uuid)> = sqlx::query_as(
        "WITH expired AS (
            UPDATE booking.reservations SET booking_status = 'cancelled', payment_confirmation = 'canceled',
                   cancelled_at = now(), cancellation_reason = 'the hold expired before payment completed',
                   hold_expires_at = NULL, record_version = record_version + 1, updated_at = now()
             WHERE booking_status = 'pending' AND payment_confirmation <> 'paid' AND hold_expires_at < now()
               AND ($1::uuid IS NULL OR listing_id = $1)
            RETURNING id, guest_id, host_id, listing_id),
         logged AS (
            INSERT INTO booking.reservation_activities (reservation_id, kind, old_value, new_value, note)
            SELECT id, 'status_changed', '{\"bookingStatus\": \"pending\"}', '{\"bookingStatus\": \"cancelled\"}',
                   'hold expired: not paid in time' FROM expired)
         SELECT id, guest_id, host_id, listing_id FROM expired",
    )
    .bind(listing)
    .fetch_all(&mut *db)
    .await?;
    // The system's own change: a domain event and the parties' notifications, in this transaction.
    for (id, guest, host, listing) in &expired {
        let output = json!({
            "id": id, "guestId": guest, "hostId": host, "listingId": listing,
            "bookingStatus": "cancelled", "paymentConfirmation": "canceled",
            "cancellationReason": "the hold expired before payment completed",
        });
        crate::audit::record_system(&mut db, ctx, "expireReservation", "reservation", &output)
            .await?;
    }
    Ok(expired.len() as u64)
}

/// Completes confirmed stays whose check-out day has passed (system entry in each timeline).
async fn complete_past_stays(ctx: &Ctx) -> Result<u64, ToolError> {
    let mut db = ctx.db().await?;
    let done = sqlx::query(
        "WITH done AS (
            UPDATE booking.reservations SET booking_status = 'complete', record_version = record_version + 1,
                   updated_at = now()
             WHERE booking_status = 'confirmed' AND is_active AND check_out < current_date
            RETURNING id)
         INSERT INTO booking.reservation_activities (reservation_id, kind, old_value, new_value, note)
         SELECT id, 'status_changed', '{\"bookingStatus\": \"confirmed\"}', '{\"bookingStatus\": \"complete\"}',
                'completed automatically after check-out' FROM done",
    )
    .execute(&mut *db)
    .await?;
    Ok(done.rows_affected())
}

/// The periodic job: expires overdue holds and completes past stays, in one transaction.
pub async fn sweep(services: &Services) -> Result<(u64, u64), ToolError> {
    let ctx = Ctx::new(services.clone(), None, "sweep".into(), None);
    let expired = expire_overdue(&ctx, None).await?;
    let completed = complete_past_stays(&ctx).await?;
    ctx.commit().await?;
    Ok((expired, completed))
}
