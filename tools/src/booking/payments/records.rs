//! The payment ledger: append-only. The payment flow appends one row
//! per provider fact (deduplicated by `dedupe_key`, so replayed webhooks cannot book money twice)
//! and admins may append manual entries; there is no update or delete operation, and a database
//! trigger rejects any UPDATE or DELETE. A refund is a new row with status `refunded`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{Postgres, QueryBuilder};
use uuid::Uuid;

use crate::booking::model::{load_reservation, record_activity};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::money::{Currency, Money};
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter};
use crate::types::{Filter, Paging, RecordMeta, Text};
use crate::vocabulary::PaymentStatuses;

/// One ledger entry.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct PaymentRecord {
    /// The record's id.
    pub id: Uuid,
    /// The reservation the money belongs to.
    pub reservation_id: Uuid,
    /// The provider's PaymentIntent id.
    pub payment_intent_id: String,
    /// The provider's charge id, when there is one.
    pub stripe_charge_id: Option<String>,
    /// ISO currency of every amount.
    pub currency: String,
    /// What the guest paid.
    pub amount_paid: Money,
    /// `pending`, `paid`, `refunded` or `failed`.
    #[schemars(with = "Choice<PaymentStatuses>")]
    pub payment_status: String,
    /// Position of `paymentStatus`'s value in its list of values (0-based).
    #[serde(rename = "paymentStatus_idx")]
    pub payment_status_idx: i32,
    /// City tax included in the amount.
    pub city_tax: Option<Money>,
    /// The platform's fee.
    pub platform_fee: Option<Money>,
    /// What the host is paid out.
    pub payout_amount_host: Option<Money>,
    /// What was refunded (on `refunded` rows).
    pub refund_amount: Option<Money>,
    /// When the provider settled it.
    pub payment_date: Option<DateTime<Utc>>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: who appended it (an admin for manual entries; null for provider webhooks).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const RECORD_COLUMNS: &str = "p.id, p.reservation_id, p.payment_intent_id, p.stripe_charge_id,
    p.currency, p.amount_paid, p.payment_status,
    array_position(ARRAY['pending','paid','refunded','failed'], p.payment_status) - 1 AS payment_status_idx,
    p.city_tax, p.platform_fee, p.payout_amount_host, p.refund_amount, p.payment_date, p.is_active,
    p.record_version, p.created_at, p.updated_at, p.owner_id";

/// The ledger's `paymentStatus` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    /// Started, not settled.
    Pending,
    /// Settled.
    Paid,
    /// Money went back to the guest.
    Refunded,
    /// Declined or errored.
    Failed,
}

impl PaymentStatus {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "pending",
            PaymentStatus::Paid => "paid",
            PaymentStatus::Refunded => "refunded",
            PaymentStatus::Failed => "failed",
        }
    }
}

/// Input of `createPaymentRecord` (an admin's manual entry).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewRecord {
    /// The reservation the money belongs to.
    pub reservation_id: Uuid,
    /// The provider's PaymentIntent id (or a reference for an off-platform payment).
    pub payment_intent_id: Text<255>,
    /// The provider's charge id.
    pub stripe_charge_id: Option<Text<255>>,
    /// ISO currency; must be the reservation's currency.
    pub currency: Currency,
    /// What the guest paid.
    pub amount_paid: Money,
    /// `pending`, `paid`, `refunded` or `failed`.
    pub payment_status: PaymentStatus,
    /// City tax included in the amount.
    pub city_tax: Option<Money>,
    /// The platform's fee.
    pub platform_fee: Option<Money>,
    /// What the host is paid out.
    pub payout_amount_host: Option<Money>,
    /// What was refunded.
    pub refund_amount: Option<Money>,
    /// When it was settled (ISO 8601).
    pub payment_date: Option<DateTime<Utc>>,
}

/// Identifies one record.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordRef {
    /// The record's id.
    pub payment_record_id: Uuid,
}

/// Input of `listPaymentRecords`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordFilters {
    /// Only records of these reservations.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub reservation_id: Option<Filter>,
    /// Only these statuses (`pending`, `paid`, `refunded`, `failed`).
    pub payment_status: Option<EnumFilter<PaymentStatuses>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of ledger entries, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordList {
    /// The records on this page.
    pub payment_records: Vec<PaymentRecord>,
    /// Where this page sits.
    pub paging: Paging,
}

/// A ledger entry the payment flow wants to append (see [`append_record`]).
#[derive(Debug, Clone)]
pub struct RecordDraft {
    /// The reservation the money belongs to.
    pub reservation_id: Uuid,
    /// The provider's PaymentIntent id.
    pub payment_intent_id: String,
    /// The provider's charge id.
    pub stripe_charge_id: Option<String>,
    /// ISO currency, upper case.
    pub currency: String,
    /// What the guest paid.
    pub amount_paid: Money,
    /// `pending`, `paid`, `refunded` or `failed`.
    pub payment_status: &'static str,
    /// City tax included.
    pub city_tax: Option<Money>,
    /// The platform's fee.
    pub platform_fee: Option<Money>,
    /// The host's payout.
    pub payout_amount_host: Option<Money>,
    /// What was refunded.
    pub refund_amount: Option<Money>,
    /// One key per provider fact, e.g. `pi_123:paid`; a second append with it is a no-op.
    pub dedupe_key: String,
}

/// The payment-record operations (no update, no delete: the ledger is append-only).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createPaymentRecord", Service::Booking)
            .title("Append a manual payment record (admin)")
            .describe(
                "Appends a manual entry to a reservation's payment ledger (e.g. an off-platform \
                 payment or a correction). The ledger is append-only: records can never be changed \
                 or deleted, so a correction is a new record. Payments made through \
                 startReservationPayment are recorded automatically. Currency must be the \
                 reservation's. Writes a payment_recorded activity. Returns the record.",
            )
            .rest(Method::Post, "/bookingmanagement-api/v1/paymentrecords")
            .access(Access::Admin)
            .creates("paymentRecord")
            .handler(create_record),
        Operation::build("getPaymentRecord", Service::Booking)
            .title("Get a payment record")
            .who("the reservation's guest and host, and admins")
            .describe(
                "Returns one payment-ledger entry (amountPaid, paymentStatus, fees, payout, refund) \
                 by id, without joins. Visible to the guest and host of its reservation and to \
                 admins; anyone else gets 'payment record not found'.",
            )
            .rest(
                Method::Get,
                "/bookingmanagement-api/v1/paymentrecords/{paymentRecordId}",
            )
            .access(Access::Authenticated)
            .reads(Action::Get, "paymentRecord")
            .handler(get_record),
        Operation::build("listPaymentRecords", Service::Booking)
            .title("List payment records")
            .who("any logged-in user, for reservations they are guest or host of; admins for all")
            .describe(
                "Lists payment-ledger entries, newest first, filtered by reservationId and \
                 paymentStatus. Admins see every record; other users only records of reservations \
                 where they are the guest or the host. Paginated, no joins.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/paymentrecords")
            .access(Access::Authenticated)
            .reads(Action::List, "paymentRecords")
            .handler(list_records),
    ]
}

/// Restricts a query to rows the caller may see through a reservation: admins see everything;
/// anyone else rows whose `user_columns` hold their id or whose reservation (`reservation_column`)
/// has them as guest or host.
pub(crate) fn push_party_scope(
    qb: &mut QueryBuilder<'_, Postgres>,
    ctx: &Ctx,
    reservation_column: &str,
    user_columns: &[&str],
) {
    if ctx.is_admin() {
        return;
    }
    let Some(me) = ctx.user_id() else {
        qb.push(" AND FALSE");
        return;
    };
    qb.push(" AND (");
    for column in user_columns {
        qb.push(format!("{column} = "));
        qb.push_bind(me);
        qb.push(" OR ");
    }
    qb.push(format!(
        "EXISTS (SELECT 1 FROM booking.reservations pr WHERE pr.id = {reservation_column} AND (pr.guest_id = "
    ));
    qb.push_bind(me);
    qb.push(" OR pr.host_id = ");
    qb.push_bind(me);
    qb.push(")))");
}

/// Appends a ledger entry unless one with the same `dedupe_key` exists (then returns `None`: a
/// replayed provider event), and writes a `payment_recorded` activity on the reservation.
pub async fn append_record(
    ctx: &Ctx,
    draft: RecordDraft,
) -> Result<Option<PaymentRecord>, ToolError> {
    insert_record(ctx, draft, None).await
}

/// [`append_record`] with an explicit payment date (default: now for `paid`/`refunded` rows).
async fn insert_record(
    ctx: &Ctx,
    draft: RecordDraft,
    payment_date: Option<DateTime<Utc>>,
) -> Result<Option<PaymentRecord>, ToolError> {
    let record: Option<PaymentRecord> = {
        let mut db = ctx.db().await?;
        let sql = format!(
            "INSERT INTO booking.payment_records AS p (reservation_id, payment_intent_id,
                stripe_charge_id, currency, amount_paid, payment_status, city_tax, platform_fee,
                payout_amount_host, refund_amount, payment_date, dedupe_key, owner_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
                COALESCE($13, CASE WHEN $6 IN ('paid', 'refunded') THEN now() END), $11, $12)
             ON CONFLICT (dedupe_key) DO NOTHING
             RETURNING {RECORD_COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(draft.reservation_id)
            .bind(&draft.payment_intent_id)
            .bind(&draft.stripe_charge_id)
            .bind(&draft.currency)
            .bind(draft.amount_paid)
            .bind(draft.payment_status)
            .bind(draft.city_tax)
            .bind(draft.platform_fee)
            .bind(draft.payout_amount_host)
            .bind(draft.refund_amount)
            .bind(&draft.dedupe_key)
            .bind(ctx.user_id())
            .bind(payment_date)
            .fetch_optional(&mut *db)
            .await?
    };
    if let Some(record) = &record {
        record_activity(
            ctx,
            record.reservation_id,
            "payment_recorded",
            None,
            Some(json!({
                "paymentRecordId": record.id,
                "paymentStatus": record.payment_status,
                "amountPaid": record.amount_paid,
                "refundAmount": record.refund_amount,
                "currency": record.currency,
                "paymentIntentId": record.payment_intent_id,
            })),
            None,
        )
        .await?;
    }
    Ok(record)
}

async fn create_record(ctx: Ctx, input: NewRecord) -> Result<PaymentRecord, ToolError> {
    let reservation = load_reservation(&ctx, input.reservation_id, true).await?;
    if input.currency.as_str() != reservation.currency {
        return Err(ToolError::field(
            "currency",
            format!(
                "the reservation is priced in {}; record its payments in that currency",
                reservation.currency
            ),
        ));
    }
    let draft = RecordDraft {
        reservation_id: reservation.id,
        payment_intent_id: input.payment_intent_id.as_str().to_string(),
        stripe_charge_id: input.stripe_charge_id.map(String::from),
        currency: reservation.currency,
        amount_paid: input.amount_paid,
        payment_status: input.payment_status.as_str(),
        city_tax: input.city_tax,
        platform_fee: input.platform_fee,
        payout_amount_host: input.payout_amount_host,
        refund_amount: input.refund_amount,
        dedupe_key: format!("manual:{}", Uuid::new_v4()),
    };
    insert_record(&ctx, draft, input.payment_date)
        .await?
        .ok_or_else(|| ToolError::internal("a fresh manual dedupe key collided"))
}

async fn get_record(ctx: Ctx, input: RecordRef) -> Result<PaymentRecord, ToolError> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {RECORD_COLUMNS} FROM booking.payment_records p WHERE p.is_active AND p.id = "
    ));
    qb.push_bind(input.payment_record_id);
    push_party_scope(&mut qb, &ctx, "p.reservation_id", &[]);
    let mut db = ctx.db().await?;
    qb.build_query_as()
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("payment record"))
}

async fn list_records(ctx: Ctx, input: RecordFilters) -> Result<RecordList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(
        RECORD_COLUMNS,
        "booking.payment_records p WHERE p.is_active",
    );
    sql::id_filter(
        &mut qb,
        "p.reservation_id",
        "reservationId",
        input.reservation_id.as_ref(),
    )?;
    sql::enum_filter(&mut qb, "p.payment_status", input.payment_status.as_deref());
    push_party_scope(&mut qb, &ctx, "p.reservation_id", &[]);
    let mut db = ctx.db().await?;
    let (payment_records, paging) =
        sql::fetch_page(&mut db, qb, "p.created_at DESC, p.id DESC", page).await?;
    Ok(RecordList {
        payment_records,
        paging,
    })
}
