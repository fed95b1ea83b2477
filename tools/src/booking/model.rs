//! The reservation record as every booking operation reads it, and the one rule for who may see
//! it: its guest, its host, or an admin. Anyone else gets "not found", so ids leak nothing.

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::money::Money;
use crate::types::Choice;
use crate::types::RecordMeta;
use crate::vocabulary::{ApprovalTypes, BookingStatuses, DisputeStatuses, PaymentConfirmations};

/// A reservation, money in the listing's currency.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    /// The reservation's id.
    pub id: Uuid,
    /// The booked listing.
    pub listing_id: Uuid,
    /// The guest (who booked).
    pub guest_id: Uuid,
    /// The listing's host.
    pub host_id: Uuid,
    /// `instant` or `manual`, copied from the listing.
    #[schemars(with = "Choice<ApprovalTypes>")]
    pub approval_type: String,
    /// Position of `approvalType`'s value in its list of values (0-based).
    #[serde(rename = "approvalType_idx")]
    pub approval_type_idx: i32,
    /// `pending`, `confirmed`, `complete`, `cancelled` or `declined`.
    #[schemars(with = "Choice<BookingStatuses>")]
    pub booking_status: String,
    /// Index of `bookingStatus`.
    #[serde(rename = "bookingStatus_idx")]
    pub booking_status_idx: i32,
    /// `pending`, `processing`, `paid` or `canceled` (set by the payment flow).
    #[schemars(with = "Choice<PaymentConfirmations>")]
    pub payment_confirmation: String,
    /// Index of `paymentConfirmation`.
    #[serde(rename = "paymentConfirmation_idx")]
    pub payment_confirmation_idx: i32,
    /// `none`, `requested`, `active` or `resolved` (follows the reservation's disputes).
    #[schemars(with = "Choice<DisputeStatuses>")]
    pub dispute_status: String,
    /// Index of `disputeStatus`.
    #[serde(rename = "disputeStatus_idx")]
    pub dispute_status_idx: i32,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day (not a night of the stay).
    pub check_out: NaiveDate,
    /// Number of guests.
    pub guest_count: i32,
    /// ISO currency of every amount.
    pub currency: String,
    /// What the guest pays in total (computed by the server).
    pub total_price: Money,
    /// The itemised quote the total came from.
    pub price_breakdown: Value,
    /// The listing's booking policies when the reservation was made.
    pub booking_policies_snapshot: Value,
    /// The listing's cancellation policy when the reservation was made (drives refunds).
    pub cancellation_policy_snapshot: Value,
    /// The guest's message to the host.
    pub guest_note: Option<String>,
    /// iCal export feed URL.
    #[serde(rename = "iCalExportUrl")]
    pub ical_export_url: Option<String>,
    /// External iCal import source.
    #[serde(rename = "iCalImportSource")]
    pub ical_import_source: Option<String>,
    /// When the host approved a manual-approval request.
    pub approved_at: Option<DateTime<Utc>>,
    /// When an unpaid pending reservation releases its nights.
    pub hold_expires_at: Option<DateTime<Utc>>,
    /// When it was cancelled.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// Who cancelled it (null: the system, e.g. an expired hold).
    pub cancelled_by: Option<Uuid>,
    /// Why it was cancelled or declined.
    pub cancellation_reason: Option<String>,
    /// What was refunded on cancellation.
    pub refund_amount: Option<Money>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: who created it (the guest).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// The select list producing a [`Reservation`] from `booking.reservations r`.
pub const RESERVATION_COLUMNS: &str = "r.id, r.listing_id, r.guest_id, r.host_id, r.approval_type,
    array_position(ARRAY['instant','manual'], r.approval_type) - 1 AS approval_type_idx,
    r.booking_status,
    array_position(ARRAY['pending','confirmed','complete','cancelled','declined'], r.booking_status) - 1 AS booking_status_idx,
    r.payment_confirmation,
    array_position(ARRAY['pending','processing','paid','canceled'], r.payment_confirmation) - 1 AS payment_confirmation_idx,
    r.dispute_status,
    array_position(ARRAY['none','requested','active','resolved'], r.dispute_status) - 1 AS dispute_status_idx,
    r.check_in, r.check_out, r.guest_count, r.currency, r.total_price, r.price_breakdown,
    r.booking_policies_snapshot, r.cancellation_policy_snapshot, r.guest_note, r.ical_export_url,
    r.ical_import_source, r.approved_at, r.hold_expires_at, r.cancelled_at, r.cancelled_by,
    r.cancellation_reason, r.refund_amount, r.is_active, r.record_version, r.created_at,
    r.updated_at, r.owner_id";

/// The caller's relation to a reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Party {
    /// The guest who booked.
    Guest,
    /// The listing's host.
    Host,
    /// An admin (and neither guest nor host).
    Admin,
}

impl Reservation {
    /// How the caller relates to this reservation, if at all.
    pub fn party(&self, ctx: &Ctx) -> Option<Party> {
        let user = ctx.user_id()?;
        if user == self.guest_id {
            Some(Party::Guest)
        } else if user == self.host_id {
            Some(Party::Host)
        } else if ctx.is_admin() {
            Some(Party::Admin)
        } else {
            None
        }
    }
}

/// Loads a reservation the caller may see (guest, host or admin), optionally locking the row for
/// a state change; anyone else gets the same "not found" as for a missing id.
pub async fn load_reservation(ctx: &Ctx, id: Uuid, lock: bool) -> Result<Reservation, ToolError> {
    let reservation = load_reservation_unchecked(ctx, id, lock)
        .await?
        .ok_or_else(|| ToolError::not_found("reservation"))?;
    if reservation.party(ctx).is_none() {
        return Err(ToolError::not_found("reservation"));
    }
    Ok(reservation)
}

/// Loads an active reservation with no visibility check (system paths: webhooks, expiry).
pub async fn load_reservation_unchecked(
    ctx: &Ctx,
    id: Uuid,
    lock: bool,
) -> Result<Option<Reservation>, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {RESERVATION_COLUMNS} FROM booking.reservations r WHERE r.id = $1 AND r.is_active{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?)
}

/// Appends one entry to a reservation's activity timeline, in the call's transaction.
pub async fn record_activity(
    ctx: &Ctx,
    reservation_id: Uuid,
    kind: &str,
    old_value: Option<Value>,
    new_value: Option<Value>,
    note: Option<&str>,
) -> Result<(), ToolError> {
    let actor = ctx.user_id();
    let mut db = ctx.db().await?;
    sqlx::query(
        "INSERT INTO booking.reservation_activities (reservation_id, kind, old_value, new_value, actor_id, note)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(reservation_id)
    .bind(kind)
    .bind(old_value)
    .bind(new_value)
    .bind(actor)
    .bind(note)
    .execute(&mut *db)
    .await?;
    Ok(())
}
