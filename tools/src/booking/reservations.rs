//! Reservations: create (priced by the server, held by the exclusion constraint), read with the
//! listing and people joined, list what the caller is party to, update the few free-form fields,
//! and delete (cancel, then hide).

use chrono::{NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::lifecycle;
use super::model::{load_reservation, record_activity, Party, Reservation, RESERVATION_COLUMNS};
use super::pricing::price_stay_locking;
use crate::context::Ctx;
use crate::error::{on_constraint, ErrorKind, ToolError};
use crate::registry::{Access, Action, Flow, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter};
use crate::types::{Filter, LongText, Paging, Text};
use crate::vocabulary::{ApprovalTypes, BookingStatuses, PaymentConfirmations, PaymentStatuses};

/// Unpaid pending reservations one guest may hold at once (calendar squatting guard).
pub const MAX_PENDING_PER_GUEST: i64 = 5;

/// The 409 every losing booking gets; it never reveals the other booking.
pub const DATES_TAKEN: &str = "these dates are no longer available for this listing: another booking or a host block covers some of the nights. Call checkListingAvailability to find free dates";

/// Input of `createReservation`: what the guest chooses. Price, currency, host, statuses and
/// policy snapshots are computed by the server.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReservation {
    /// The listing to book.
    pub listing_id: Uuid,
    /// First night, `YYYY-MM-DD` (today or later).
    pub check_in: NaiveDate,
    /// Departure day, `YYYY-MM-DD` (after checkIn).
    pub check_out: NaiveDate,
    /// Number of guests (at most the listing's maxGuests).
    #[schemars(range(min = 1, max = 100))]
    pub guest_count: i32,
    /// A message to the host (arrival time, special requests).
    pub guest_note: Option<LongText>,
    /// External iCal import source.
    #[serde(rename = "iCalImportSource")]
    pub ical_import_source: Option<Text<500>>,
    /// iCal export feed URL.
    #[serde(rename = "iCalExportUrl")]
    pub ical_export_url: Option<Text<500>>,
}

/// Input of `updateReservation`: only fields that do not change the booking itself.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationPatch {
    /// The reservation.
    pub reservation_id: Uuid,
    /// The guest's message to the host (guest only).
    pub guest_note: Option<LongText>,
    /// External iCal import source.
    #[serde(rename = "iCalImportSource")]
    pub ical_import_source: Option<Text<500>>,
    /// iCal export feed URL.
    #[serde(rename = "iCalExportUrl")]
    pub ical_export_url: Option<Text<500>>,
    /// The version you read; stale → 409.
    pub record_version: Option<i32>,
}

/// Identifies one reservation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationRef {
    /// The reservation.
    pub reservation_id: Uuid,
}

/// Input of `listReservations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReservationFilters {
    /// Listing id(s).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub listing_id: Option<Filter>,
    /// `instant` / `manual`.
    pub approval_type: Option<EnumFilter<ApprovalTypes>>,
    /// `pending`, `confirmed`, `complete`, `cancelled`, `declined`.
    pub booking_status: Option<EnumFilter<BookingStatuses>>,
    /// Host id(s).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub host_id: Option<Filter>,
    /// Guest id(s).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub guest_id: Option<Filter>,
    /// Check-in date(s): `YYYY-MM-DD`, `$today`, `$gte-YYYY-MM-DD`, `$lte-YYYY-MM-DD`.
    #[schemars(with = "Option<crate::types::DateFilter>")]
    pub check_in: Option<Filter>,
    /// `pending`, `processing`, `paid`, `canceled`.
    pub payment_confirmation: Option<EnumFilter<PaymentConfirmations>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// The listing as shown on a reservation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListingJoin {
    /// Listing id.
    pub id: Uuid,
    /// Title.
    pub title: String,
    /// Main photo URL.
    pub main_photo: Option<String>,
    /// Address.
    pub address: String,
    /// City.
    pub city: String,
    /// Property type.
    pub property_type: String,
}

/// A person on a reservation (no contact details: use messaging).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PersonJoin {
    /// User id.
    pub id: Uuid,
    /// Full name.
    pub fullname: String,
    /// Avatar URL.
    pub avatar: Option<String>,
}

/// A ledger entry as shown on a reservation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PaymentJoin {
    /// Payment record id.
    pub id: Uuid,
    /// `pending`, `paid`, `refunded` or `failed`.
    #[schemars(with = "Choice<PaymentStatuses>")]
    pub payment_status: String,
    /// Amount paid (major units).
    pub amount_paid: f64,
    /// Amount refunded (major units).
    pub refund_amount: Option<f64>,
    /// When.
    pub created_at: String,
}

/// A reservation with its listing, host and guest (and, on `getReservation`, its payments).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ReservationView {
    /// The reservation.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub reservation: Reservation,
    /// The booked listing (an array of one element).
    #[sqlx(json)]
    pub listing_joins: Vec<ListingJoin>,
    /// The host (an array of one element).
    #[sqlx(json)]
    pub host_details: Vec<PersonJoin>,
    /// The guest (an array of one).
    #[sqlx(json)]
    pub guest_details: Vec<PersonJoin>,
    /// Payment ledger entries (getReservation only).
    #[sqlx(json(nullable))]
    pub payments: Option<Vec<PaymentJoin>>,
}

/// A page of reservations.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReservationList {
    /// The reservations on this page.
    pub reservations: Vec<ReservationView>,
    /// Where this page sits.
    pub paging: Paging,
}

/// Joins for the reservation views: one correlated lookup per join, all in the one statement.
fn view_select(with_payments: bool) -> String {
    let payments = if with_payments {
        "(SELECT coalesce(jsonb_agg(jsonb_build_object('id', p.id, 'paymentStatus', p.payment_status,
            'amountPaid', p.amount_paid / 100.0, 'refundAmount', p.refund_amount / 100.0,
            'createdAt', p.created_at) ORDER BY p.created_at), '[]'::jsonb)
           FROM booking.payment_records p WHERE p.reservation_id = r.id)"
    } else {
        "NULL::jsonb"
    };
    format!(
        "SELECT {RESERVATION_COLUMNS},
            (SELECT coalesce(jsonb_agg(jsonb_build_object('id', l.id, 'title', l.title, 'mainPhoto', l.main_photo,
                'address', l.address, 'city', l.city, 'propertyType', l.property_type)), '[]'::jsonb)
               FROM catalog.listings l WHERE l.id = r.listing_id) AS listing_joins,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('id', u.id, 'fullname', u.fullname, 'avatar', u.avatar)), '[]'::jsonb)
               FROM auth.users u WHERE u.id = r.host_id) AS host_details,
            (SELECT coalesce(jsonb_agg(jsonb_build_object('id', u.id, 'fullname', u.fullname, 'avatar', u.avatar)), '[]'::jsonb)
               FROM auth.users u WHERE u.id = r.guest_id) AS guest_details,
            {payments} AS payments
         FROM booking.reservations r"
    )
}

/// The reservation operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createReservation", Service::Booking)
            .core(Flow::Guest, 50)
            .title("Book a stay")
            .who("any logged-in user, who becomes the guest")
            .describe(
                "Books a listing for checkIn..checkOut (checkOut = departure day) for guestCount guests; the caller \
                 is the guest. The server computes the price exactly as quoteReservation does and copies the listing's \
                 booking and cancellation policies. The reservation starts `pending` and holds the nights: pay it with \
                 startReservationPayment (instant listings become `confirmed` once paid; manual listings first need \
                 the host's approveReservation). Unpaid holds expire. Overlapping dates → 409 Conflict.",
            )
            .rest(Method::Post, "/bookingmanagement-api/v1/reservations")
            .access(Access::Authenticated)
            .creates("reservation")
            .handler(create_reservation),
        Operation::build("getReservation", Service::Booking)
            .core(Flow::Guest, 90)
            .title("Get a reservation")
            .who("the reservation's guest and host, and admins")
            .describe(
                "Returns one reservation with its listing (listingJoins), host and guest details and payment \
                 ledger entries. Only its guest, its host and admins can see it.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/reservations/{reservationId}")
            .access(Access::Authenticated)
            .reads(Action::Get, "reservation")
            .handler(get_reservation),
        Operation::build("listReservations", Service::Booking)
            .core(Flow::Guest, 80)
            .title("List reservations")
            .who("any logged-in user, for reservations they are guest or host of; admins for all")
            .describe(
                "Lists reservations the caller is guest or host of (admins: all), newest first, with listing and \
                 host details. Filters: listingId, approvalType, bookingStatus, hostId, guestId, checkIn (dates or \
                 $today/$gte-/$lte- ranges), paymentConfirmation. Paginated.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/reservations")
            .access(Access::Authenticated)
            .reads(Action::List, "reservations")
            .handler(list_reservations),
        Operation::build("updateReservation", Service::Booking)
            .title("Update a reservation's notes")
            .who("the reservation's guest or host, or an admin (guestNote: the guest only)")
            .describe(
                "Changes the free-form fields of a reservation: the guest's note (guest only) and the iCal \
                 export/import fields. Dates, listing, guests and price cannot change; statuses change only \
                 through approveReservation, declineReservation, cancelReservation, completeReservation and payment.",
            )
            .rest(Method::Patch, "/bookingmanagement-api/v1/reservations/{reservationId}")
            .access(Access::Authenticated)
            .updates("reservation")
            .handler(update_reservation),
        Operation::build("deleteReservation", Service::Booking)
            .title("Delete a reservation")
            .who("the reservation's guest or host before the stay begins; admins at any time")
            .describe(
                "Cancels a reservation that still holds nights (same rules and refund as cancelReservation) and \
                 hides it (soft delete). Guest or host before the stay begins; admins at any time.",
            )
            .rest(Method::Delete, "/bookingmanagement-api/v1/reservations/{reservationId}")
            .access(Access::Authenticated)
            .deletes("reservation")
            // A paid reservation is refunded through the payment provider.
            .open_world()
            .handler(delete_reservation),
    ]
}

async fn create_reservation(ctx: Ctx, input: NewReservation) -> Result<Reservation, ToolError> {
    let guest = ctx.caller()?.user_id;
    // First the listing's lock, the order every write of a listing's nights follows, taken by
    // the statement that reads the terms (so they are the current ones).
    let (terms, stay, quote) = price_stay_locking(
        &ctx,
        input.listing_id,
        input.check_in,
        input.check_out,
        input.guest_count,
        true,
    )
    .await?;
    if terms.host_id == guest {
        return Err(ToolError::unprocessable(
            "hosts cannot book their own listing; block the dates with createListingCalendar instead",
        ));
    }
    let mut db = ctx.db().await?;
    // One statement: the listing's overdue holds expire (each with its timeline entry) and the
    // guest's unpaid reservations are counted as they stand after that.
    let pending: i64 = sqlx::query_scalar(
        "WITH expired AS (
            UPDATE booking.reservations SET booking_status = 'cancelled', payment_confirmation = 'canceled',
                   cancelled_at = now(), cancellation_reason = 'the hold expired before payment completed',
                   hold_expires_at = NULL, record_version = record_version + 1, updated_at = now()
             WHERE booking_status = 'pending' AND payment_confirmation <> 'paid' AND hold_expires_at < now()
               AND listing_id = $1
            RETURNING id, guest_id),
         logged AS (
            INSERT INTO booking.reservation_activities (reservation_id, kind, old_value, new_value, note)
            SELECT id, 'status_changed', '{\"bookingStatus\": \"pending\"}', '{\"bookingStatus\": \"cancelled\"}',
                   'hold expired: not paid in time' FROM expired)
         SELECT (SELECT count(*) FROM booking.reservations
                  WHERE guest_id = $2 AND is_active AND booking_status = 'pending')
              - (SELECT count(*) FROM expired WHERE guest_id = $2)",
    )
    .bind(terms.id)
    .bind(guest)
    .fetch_one(&mut *db)
    .await?;
    if pending >= MAX_PENDING_PER_GUEST {
        return Err(ToolError::unprocessable(format!(
            "you already hold {pending} unpaid reservations; pay or cancel one before booking another"
        )));
    }
    let settings = &ctx.services.settings;
    let window = if terms.approval_type == "manual" {
        settings.approval_window
    } else {
        settings.payment_window
    };
    let requested = json!({
        "bookingStatus": "pending",
        "checkIn": stay.check_in(),
        "checkOut": stay.check_out(),
        "guestCount": input.guest_count,
        "totalPrice": quote.total,
        "currency": quote.currency,
    });
    // One statement: the reservation (its holds by trigger; the exclusion constraint refuses
    // taken nights), its first timeline entry, and the row as answered.
    let sql = format!(
        "WITH r AS (
            INSERT INTO booking.reservations (listing_id, guest_id, host_id, approval_type, check_in, check_out,
                guest_count, currency, total_price, price_breakdown, booking_policies_snapshot,
                cancellation_policy_snapshot, guest_note, ical_import_source, ical_export_url, hold_expires_at, owner_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $2)
            RETURNING *),
         logged AS (
            INSERT INTO booking.reservation_activities (reservation_id, kind, old_value, new_value, actor_id, note)
            SELECT r.id, 'reservation_requested', NULL, $17, $2, NULL FROM r)
         SELECT {RESERVATION_COLUMNS} FROM r"
    );
    let reservation: Reservation = sqlx::query_as(&sql)
        .bind(terms.id)
        .bind(guest)
        .bind(terms.host_id)
        .bind(&terms.approval_type)
        .bind(stay.check_in())
        .bind(stay.check_out())
        .bind(input.guest_count)
        .bind(&quote.currency)
        .bind(quote.total)
        .bind(json!(quote))
        .bind(json!(terms.booking_policies()))
        .bind(json!(quote.cancellation_policy))
        .bind(input.guest_note.as_ref().map(|t| t.as_str()))
        .bind(input.ical_import_source.as_ref().map(|t| t.as_str()))
        .bind(input.ical_export_url.as_ref().map(|t| t.as_str()))
        .bind(Utc::now() + window)
        .bind(requested)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| {
            on_constraint(
                e,
                &[("listing_holds_no_overlap", ErrorKind::Conflict, DATES_TAKEN)],
            )
        })?;
    Ok(reservation)
}

/// Loads the joined view of a reservation the caller may see.
pub async fn load_view(ctx: &Ctx, id: Uuid) -> Result<ReservationView, ToolError> {
    load_reservation(ctx, id, false).await?;
    let mut db = ctx.db().await?;
    let sql = format!("{} WHERE r.id = $1", view_select(true));
    Ok(sqlx::query_as(&sql).bind(id).fetch_one(&mut *db).await?)
}

async fn get_reservation(ctx: Ctx, input: ReservationRef) -> Result<ReservationView, ToolError> {
    load_view(&ctx, input.reservation_id).await
}

async fn list_reservations(
    ctx: Ctx,
    input: ReservationFilters,
) -> Result<ReservationList, ToolError> {
    let me = ctx.caller()?.user_id;
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let select =
        view_select(false).replacen("SELECT ", "SELECT count(*) OVER () AS total_count, ", 1);
    let mut qb = QueryBuilder::new(format!("{select} WHERE r.is_active"));
    if !ctx.is_admin() {
        qb.push(" AND (r.guest_id = ");
        qb.push_bind(me);
        qb.push(" OR r.host_id = ");
        qb.push_bind(me);
        qb.push(")");
    }
    sql::id_filter(
        &mut qb,
        "r.listing_id",
        "listingId",
        input.listing_id.as_ref(),
    )?;
    sql::id_filter(&mut qb, "r.host_id", "hostId", input.host_id.as_ref())?;
    sql::id_filter(&mut qb, "r.guest_id", "guestId", input.guest_id.as_ref())?;
    sql::enum_filter(&mut qb, "r.approval_type", input.approval_type.as_deref());
    sql::enum_filter(&mut qb, "r.booking_status", input.booking_status.as_deref());
    sql::enum_filter(
        &mut qb,
        "r.payment_confirmation",
        input.payment_confirmation.as_deref(),
    );
    sql::date_filter(&mut qb, "r.check_in", "checkIn", input.check_in.as_ref())?;
    let mut db = ctx.db().await?;
    let (reservations, paging) =
        sql::fetch_page(&mut db, qb, "r.created_at DESC, r.id", page).await?;
    Ok(ReservationList {
        reservations,
        paging,
    })
}

async fn update_reservation(ctx: Ctx, input: ReservationPatch) -> Result<Reservation, ToolError> {
    let current = load_reservation(&ctx, input.reservation_id, true).await?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "reservation",
    )?;
    if input.guest_note.is_some() && current.party(&ctx) != Some(Party::Guest) {
        return Err(ToolError::forbidden("only the guest writes the guest note"));
    }
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE booking.reservations r SET guest_note = COALESCE($2, guest_note),
            ical_import_source = COALESCE($3, ical_import_source), ical_export_url = COALESCE($4, ical_export_url),
            record_version = record_version + 1, updated_at = now()
          WHERE id = $1 RETURNING {RESERVATION_COLUMNS}"
    );
    let updated: Reservation = sqlx::query_as(&sql)
        .bind(current.id)
        .bind(input.guest_note.as_ref().map(|t| t.as_str()))
        .bind(input.ical_import_source.as_ref().map(|t| t.as_str()))
        .bind(input.ical_export_url.as_ref().map(|t| t.as_str()))
        .fetch_one(&mut *db)
        .await?;
    drop(db);
    record_activity(&ctx, current.id, "details_changed", None, None, None).await?;
    Ok(updated)
}

async fn delete_reservation(ctx: Ctx, input: ReservationRef) -> Result<Reservation, ToolError> {
    let mut current = load_reservation(&ctx, input.reservation_id, true).await?;
    let party = current.party(&ctx);
    if lifecycle::HOLDING.contains(&current.booking_status.as_str())
        && current.booking_status != "complete"
    {
        current = lifecycle::cancel(&ctx, current, Some("deleted".into())).await?;
    } else if current.booking_status == "complete" && party != Some(Party::Admin) && !ctx.is_admin()
    {
        return Err(ToolError::unprocessable(
            "a completed stay is part of the history (reviews, payouts); only admins remove it",
        ));
    }
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE booking.reservations r SET is_active = false, record_version = record_version + 1, updated_at = now()
          WHERE id = $1 RETURNING {RESERVATION_COLUMNS}"
    );
    let deleted = sqlx::query_as(&sql)
        .bind(current.id)
        .fetch_one(&mut *db)
        .await?;
    drop(db);
    record_activity(&ctx, current.id, "reservation_deleted", None, None, None).await?;
    Ok(deleted)
}
