//! Payment tickets: one active ticket per reservation
//! (`orderId`) tracking the provider-side payment (`paymentId`, the provider's raw `paymentStatus`
//! and Haven's `statusLiteral`). The payment flow creates and updates tickets itself through
//! [`upsert_ticket`]; the CRUD operations exist for admins repairing data. Reads are open to the
//! ticket's owner (the guest), the reservation's host and admins.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::records::push_party_scope;
use crate::auth::model::ImageUrl;
use crate::booking::model::load_reservation;
use crate::context::Ctx;
use crate::error::{on_constraint, ErrorKind, ToolError};
use crate::money::Money;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::Choice;
use crate::types::{Filter, OwnedRecordMeta, Paging, Text};
use crate::vocabulary::Platforms;

/// A payment ticket.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Ticket {
    /// The ticket's id.
    pub id: Uuid,
    /// The guest who owns the order.
    pub owner_id: Uuid,
    /// The reservation being paid.
    pub order_id: Uuid,
    /// The provider's payment id (a PaymentIntent for Stripe and `local`).
    pub payment_id: String,
    /// The provider's raw status, e.g. `succeeded`.
    pub payment_status: String,
    /// Haven's status of the payment, e.g. `paid` (mirrors the reservation's paymentConfirmation).
    pub status_literal: String,
    /// The frontend page that shows the payment result.
    pub redirect_url: Option<String>,
    /// The provider (`local`, `stripe`).
    #[schemars(with = "Choice<Platforms>")]
    pub platform: String,
    /// The amount being charged.
    pub amount: Money,
    /// ISO currency of the amount.
    pub currency: String,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: the owner (same as `ownerId`).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: OwnedRecordMeta,
}

const TICKET_COLUMNS: &str = "t.id, t.owner_id, t.order_id, t.payment_id, t.payment_status,
    t.status_literal, t.redirect_url, t.platform, t.amount, t.currency, t.is_active,
    t.record_version, t.created_at, t.updated_at, t.owner_id AS record_owner";

const TICKET_CONSTRAINTS: &[(&str, ErrorKind, &str)] = &[
    (
        "reservation_payments_order_key",
        ErrorKind::Conflict,
        "this reservation already has an active payment ticket; update or delete that one",
    ),
    (
        "reservation_payments_payment_key",
        ErrorKind::Conflict,
        "another payment ticket already uses this paymentId",
    ),
];

/// Input of `createReservationPayment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTicket {
    /// The reservation being paid (its guest becomes the owner; amount and currency come from it).
    pub order_id: Uuid,
    /// The provider's payment id.
    pub payment_id: Text<255>,
    /// The provider's raw status.
    pub payment_status: Text<100>,
    /// Haven's status of the payment.
    pub status_literal: Text<100>,
    /// The frontend page that shows the payment result.
    pub redirect_url: Option<ImageUrl>,
}

/// Input of `updateReservationPayment`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketPatch {
    /// The ticket to change.
    #[serde(rename = "sys_reservationPaymentId")]
    pub ticket_id: Uuid,
    /// New provider payment id.
    pub payment_id: Option<Text<255>>,
    /// New provider status.
    pub payment_status: Option<Text<100>>,
    /// New Haven status.
    pub status_literal: Option<Text<100>>,
    /// New result page.
    pub redirect_url: Option<ImageUrl>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one ticket.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketRef {
    /// The ticket's id.
    #[serde(rename = "sys_reservationPaymentId")]
    pub ticket_id: Uuid,
}

/// Identifies a ticket by its reservation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OrderRef {
    /// The reservation's id.
    pub order_id: Uuid,
}

/// Identifies a ticket by the provider's payment id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentRef {
    /// The provider's payment id, e.g. `pi_…`.
    pub payment_id: Text<255>,
}

/// Input of `listReservationPayments`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TicketFilters {
    /// Only tickets of these owners (guests).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub owner_id: Option<Filter>,
    /// Only tickets of these reservations.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub order_id: Option<Filter>,
    /// Partial, case-insensitive payment id match.
    pub payment_id: Option<Filter>,
    /// Partial, case-insensitive provider status match.
    pub payment_status: Option<Filter>,
    /// Partial, case-insensitive Haven status match.
    pub status_literal: Option<Filter>,
    /// Partial, case-insensitive result page match.
    pub redirect_url: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of tickets.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TicketList {
    /// The tickets on this page.
    #[serde(rename = "sys_reservationPayments")]
    pub tickets: Vec<Ticket>,
    /// Where this page sits.
    pub paging: Paging,
}

const ADMIN_ONLY: &str = "Tickets are created and updated automatically by the payment flow \
    (startReservationPayment, refreshReservationPayment, provider webhooks); this admin operation \
    is for repairing data.";

/// The payment-ticket operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("getReservationPayment", Service::Booking)
            .title("Get a payment ticket")
            .who("the ticket's owner (the guest), the reservation's host, and admins")
            .describe(
                "Returns one payment ticket (Sys_reservationPayment) by id: the provider payment \
                 id, its raw status, Haven's statusLiteral, amount and currency. Visible to the \
                 ticket's owner (the guest), the reservation's host and admins; anyone else gets \
                 'payment ticket not found'.",
            )
            .rest(
                Method::Get,
                "/bookingmanagement-api/v1/reservationpayment/{sys_reservationPaymentId}",
            )
            .access(Access::Authenticated)
            .reads(Action::Get, "sys_reservationPayment")
            .handler(get_ticket),
        Operation::build("listReservationPayments", Service::Booking)
            .title("List payment tickets")
            .who("any logged-in user, for tickets they own or of reservations they host; admins for all")
            .describe(
                "Lists payment tickets (Sys_reservationPayment), newest first, filtered by \
                 ownerId, orderId (reservation id) and partial paymentId, paymentStatus, \
                 statusLiteral, redirectUrl. Admins see all; other users only tickets they own or \
                 of reservations they host. Paginated.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/reservationpayments")
            .access(Access::Authenticated)
            .reads(Action::List, "sys_reservationPayments")
            .handler(list_tickets),
        Operation::build("createReservationPayment", Service::Booking)
            .title("Create a payment ticket (admin)")
            .describe(&format!(
                "Creates the payment ticket of a reservation (orderId) with the provider's \
                 paymentId, raw paymentStatus and Haven's statusLiteral; the owner, amount and \
                 currency come from the reservation. One active ticket per reservation (409 \
                 otherwise). {ADMIN_ONLY} Returns the ticket."
            ))
            .rest(Method::Post, "/bookingmanagement-api/v1/reservationpayment")
            .access(Access::Admin)
            .creates("sys_reservationPayment")
            .handler(create_ticket),
        Operation::build("updateReservationPayment", Service::Booking)
            .title("Update a payment ticket (admin)")
            .describe(&format!(
                "Changes a payment ticket's paymentId, paymentStatus, statusLiteral or \
                 redirectUrl (orderId never changes). {ADMIN_ONLY} Returns the ticket."
            ))
            .rest(
                Method::Patch,
                "/bookingmanagement-api/v1/reservationpayment/{sys_reservationPaymentId}",
            )
            .access(Access::Admin)
            .updates("sys_reservationPayment")
            .handler(update_ticket),
        Operation::build("deleteReservationPayment", Service::Booking)
            .title("Delete a payment ticket (admin)")
            .describe(&format!(
                "Soft-deletes a payment ticket (isActive false); the reservation and its payment \
                 records are untouched. {ADMIN_ONLY} Returns the ticket's last state."
            ))
            .rest(
                Method::Delete,
                "/bookingmanagement-api/v1/reservationpayment/{sys_reservationPaymentId}",
            )
            .access(Access::Admin)
            .deletes("sys_reservationPayment")
            .handler(delete_ticket),
        Operation::build("getReservationPaymentByOrderId", Service::Booking)
            .title("Get a reservation's payment ticket")
            .who("the reservation's guest and host, and admins")
            .describe(
                "Returns the active payment ticket of a reservation (orderId = reservation id). \
                 Visible to the guest, the host and admins; anyone else, or a reservation with no \
                 ticket yet, gets 'payment ticket not found'.",
            )
            .rest(
                Method::Get,
                "/bookingmanagement-api/v1/reservationpaymentbyorderid/{orderId}",
            )
            .access(Access::Authenticated)
            .reads(Action::Get, "sys_reservationPayment")
            .handler(get_by_order),
        Operation::build("getReservationPaymentByPaymentId", Service::Booking)
            .title("Get a payment ticket by provider payment id")
            .who("the reservation's guest and host, and admins")
            .describe(
                "Returns the active payment ticket whose provider payment id (e.g. a PaymentIntent \
                 `pi_…`) is paymentId. Visible to the guest, the host and admins; anyone else gets \
                 'payment ticket not found'.",
            )
            .rest(
                Method::Get,
                "/bookingmanagement-api/v1/reservationpaymentbypaymentid/{paymentId}",
            )
            .access(Access::Authenticated)
            .reads(Action::Get, "sys_reservationPayment")
            .handler(get_by_payment),
    ]
}

/// Finds one visible active ticket where `column` equals `value`.
async fn find_visible<'a, T>(ctx: &Ctx, column: &str, value: T) -> Result<Ticket, ToolError>
where
    T: 'a + sqlx::Encode<'a, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    let mut qb = QueryBuilder::new(format!(
        "SELECT {TICKET_COLUMNS} FROM booking.reservation_payments t WHERE t.is_active AND t.{column} = "
    ));
    qb.push_bind(value);
    push_party_scope(&mut qb, ctx, "t.order_id", &["t.owner_id"]);
    let mut db = ctx.db().await?;
    qb.build_query_as()
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("payment ticket"))
}

async fn get_ticket(ctx: Ctx, input: TicketRef) -> Result<Ticket, ToolError> {
    find_visible(&ctx, "id", input.ticket_id).await
}

async fn get_by_order(ctx: Ctx, input: OrderRef) -> Result<Ticket, ToolError> {
    find_visible(&ctx, "order_id", input.order_id).await
}

async fn get_by_payment(ctx: Ctx, input: PaymentRef) -> Result<Ticket, ToolError> {
    find_visible(&ctx, "payment_id", String::from(input.payment_id)).await
}

async fn list_tickets(ctx: Ctx, input: TicketFilters) -> Result<TicketList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(
        TICKET_COLUMNS,
        "booking.reservation_payments t WHERE t.is_active",
    );
    sql::id_filter(&mut qb, "t.owner_id", "ownerId", input.owner_id.as_ref())?;
    sql::id_filter(&mut qb, "t.order_id", "orderId", input.order_id.as_ref())?;
    sql::text_filter(&mut qb, "t.payment_id", input.payment_id.as_ref());
    sql::text_filter(&mut qb, "t.payment_status", input.payment_status.as_ref());
    sql::text_filter(&mut qb, "t.status_literal", input.status_literal.as_ref());
    sql::text_filter(&mut qb, "t.redirect_url", input.redirect_url.as_ref());
    push_party_scope(&mut qb, &ctx, "t.order_id", &["t.owner_id"]);
    let mut db = ctx.db().await?;
    let (tickets, paging) =
        sql::fetch_page(&mut db, qb, "t.created_at DESC, t.id DESC", page).await?;
    Ok(TicketList { tickets, paging })
}

async fn create_ticket(ctx: Ctx, input: NewTicket) -> Result<Ticket, ToolError> {
    let reservation = load_reservation(&ctx, input.order_id, true).await?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO booking.reservation_payments AS t (owner_id, order_id, payment_id,
            payment_status, status_literal, redirect_url, platform, amount, currency)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {TICKET_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(reservation.guest_id)
        .bind(reservation.id)
        .bind(input.payment_id.as_str())
        .bind(input.payment_status.as_str())
        .bind(input.status_literal.as_str())
        .bind(input.redirect_url.as_ref().map(ImageUrl::as_str))
        .bind(ctx.services.payments.platform())
        .bind(reservation.total_price)
        .bind(&reservation.currency)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| on_constraint(e, TICKET_CONSTRAINTS))
}

/// Loads an active ticket by id for a change (admins only reach this), locking it.
async fn lock_ticket(ctx: &Ctx, id: Uuid, version: Option<i32>) -> Result<Ticket, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {TICKET_COLUMNS} FROM booking.reservation_payments t
         WHERE t.id = $1 AND t.is_active FOR UPDATE"
    );
    let ticket: Ticket = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("payment ticket"))?;
    ToolError::check_version(version, ticket.meta.record_version, "payment ticket")?;
    Ok(ticket)
}

async fn update_ticket(ctx: Ctx, input: TicketPatch) -> Result<Ticket, ToolError> {
    lock_ticket(&ctx, input.ticket_id, input.record_version).await?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE booking.reservation_payments t SET payment_id = COALESCE($2, payment_id),
            payment_status = COALESCE($3, payment_status),
            status_literal = COALESCE($4, status_literal),
            redirect_url = COALESCE($5, redirect_url),
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {TICKET_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.ticket_id)
        .bind(input.payment_id.as_ref().map(Text::as_str))
        .bind(input.payment_status.as_ref().map(Text::as_str))
        .bind(input.status_literal.as_ref().map(Text::as_str))
        .bind(input.redirect_url.as_ref().map(ImageUrl::as_str))
        .fetch_one(&mut *db)
        .await
        .map_err(|e| on_constraint(e, TICKET_CONSTRAINTS))
}

async fn delete_ticket(ctx: Ctx, input: TicketRef) -> Result<Ticket, ToolError> {
    lock_ticket(&ctx, input.ticket_id, None).await?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE booking.reservation_payments t SET is_active = false,
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {TICKET_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(input.ticket_id)
        .fetch_one(&mut *db)
        .await?)
}

/// The active ticket of a reservation, with no visibility check (for the payment flow).
pub async fn load_ticket_for_order(ctx: &Ctx, order_id: Uuid) -> Result<Option<Ticket>, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {TICKET_COLUMNS} FROM booking.reservation_payments t
         WHERE t.order_id = $1 AND t.is_active"
    );
    Ok(sqlx::query_as(&sql)
        .bind(order_id)
        .fetch_optional(&mut *db)
        .await?)
}

/// Creates the reservation's ticket, or updates its one active ticket in place (the payment flow
/// calls this on every provider answer); returns the ticket as stored. A `None` redirect URL keeps
/// the one already stored.
#[allow(clippy::too_many_arguments)]
pub async fn upsert_ticket(
    ctx: &Ctx,
    owner: Uuid,
    order_id: Uuid,
    payment_id: &str,
    payment_status: &str,
    status_literal: &str,
    platform: &str,
    amount: Money,
    currency: &str,
    redirect_url: Option<&str>,
) -> Result<Ticket, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO booking.reservation_payments AS t (owner_id, order_id, payment_id,
            payment_status, status_literal, redirect_url, platform, amount, currency)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (order_id) WHERE is_active DO UPDATE SET
            payment_id = EXCLUDED.payment_id, payment_status = EXCLUDED.payment_status,
            status_literal = EXCLUDED.status_literal,
            redirect_url = COALESCE(EXCLUDED.redirect_url, t.redirect_url),
            platform = EXCLUDED.platform, amount = EXCLUDED.amount, currency = EXCLUDED.currency,
            record_version = t.record_version + 1, updated_at = now()
         RETURNING {TICKET_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(owner)
        .bind(order_id)
        .bind(payment_id)
        .bind(payment_status)
        .bind(status_literal)
        .bind(redirect_url)
        .bind(platform)
        .bind(amount)
        .bind(currency)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| on_constraint(e, TICKET_CONSTRAINTS))
}
