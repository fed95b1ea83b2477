//! Calendar entries: a host's availability and price overrides for a range of nights of a listing.
//! An unavailable entry blocks its nights through `catalog.listing_holds` (kept by a trigger), so
//! it can neither overlap a reservation nor be overlapped by one.

use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::common::{
    date_filter, load_managed_child, load_visible_child, lock_listing, managed_listing,
    push_listing_visible, soft_delete, today, OfListing,
};
use crate::auth::model::ImageUrl;
use crate::context::Ctx;
use crate::error::{on_constraint, ConstraintMap, ErrorKind, ToolError};
use crate::money::Money;
use crate::registry::{Access, Action, Flow, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, Name, Paging, RecordMeta};

/// The longest range one calendar entry may cover.
pub const MAX_ENTRY_NIGHTS: i64 = 366;

/// A calendar entry covering the nights `[date, endDate)`.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ListingCalendar {
    /// The entry's id.
    pub id: Uuid,
    /// The listing it belongs to.
    pub listing_id: Uuid,
    /// The first night covered.
    pub date: NaiveDate,
    /// The day after the last night covered (exclusive).
    pub end_date: NaiveDate,
    /// Whether these nights can be booked (false = blocked by the host).
    pub is_available: bool,
    /// The nightly price on these nights instead of the listing's price.
    pub price_override: Option<Money>,
    /// Minimum stay for a booking starting on these nights.
    pub min_stay: Option<i32>,
    /// The guest whose reservation occupies these nights (kept by the server).
    pub booked_by: Option<Uuid>,
    /// The external iCal feed this entry came from.
    #[serde(rename = "iCalUrl")]
    pub ical_url: Option<String>,
    /// Ids of the entry in external calendars.
    pub external_calendar_ids: Vec<String>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: who created it.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const TABLE: &str = "catalog.listing_calendars";
const COLUMNS: &str = "id, listing_id, date, end_date, is_available, price_override, min_stay, booked_by, ical_url, external_calendar_ids, is_active, record_version, created_at, updated_at, owner_id";

/// Constraint violations a calendar write can hit, as the caller should read them.
const CONFLICTS: ConstraintMap<'static> = &[
    (
        "listing_calendars_no_overlap",
        ErrorKind::Conflict,
        "an entry already covers some of these dates; update it instead",
    ),
    (
        "listing_holds_no_overlap",
        ErrorKind::Conflict,
        "some of these nights are already booked",
    ),
];

/// Input of `createListingCalendar`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewCalendarEntry {
    /// The listing (you must be its host or an admin).
    pub listing_id: Uuid,
    /// The first night covered (today or later).
    pub date: NaiveDate,
    /// The day after the last night (exclusive); default `date` + 1, at most 366 nights.
    pub end_date: Option<NaiveDate>,
    /// Whether the nights can be booked; false blocks them (409 if a reservation holds them).
    pub is_available: bool,
    /// Nightly price on these nights instead of the listing's price (more than 0).
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub price_override: Option<Money>,
    /// Minimum stay for bookings starting on these nights (1–365).
    #[schemars(range(min = 1, max = 365))]
    pub min_stay: Option<u16>,
    /// External iCal feed URL.
    #[serde(rename = "iCalUrl")]
    pub ical_url: Option<ImageUrl>,
    /// Ids of this entry in external calendars (at most 20).
    pub external_calendar_ids: Option<Vec<Name>>,
}

/// Input of `updateListingCalendar` (the listing and dates are fixed: delete and re-create to move).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarPatch {
    /// The entry to change.
    pub listing_calendar_id: Uuid,
    /// Whether the nights can be booked (false blocks them; 409 if a reservation holds them).
    pub is_available: Option<bool>,
    /// New nightly price override (more than 0).
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub price_override: Option<Money>,
    /// New minimum stay (1–365).
    #[schemars(range(min = 1, max = 365))]
    pub min_stay: Option<u16>,
    /// New iCal feed URL.
    #[serde(rename = "iCalUrl")]
    pub ical_url: Option<ImageUrl>,
    /// New external calendar ids (replace the old ones; at most 20).
    pub external_calendar_ids: Option<Vec<Name>>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one calendar entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarRef {
    /// The entry's id.
    pub listing_calendar_id: Uuid,
}

/// Input of `listListingCalendars`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CalendarFilters {
    /// Listing ids (exact; several are OR-ed).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub listing_id: Option<Filter>,
    /// Nights: `2030-01-15` (entries covering that night), `$today`, `$week`, `$month`,
    /// `$lweek`, `$ltoday`, `$lin-<date>`, or a range on the first night such as
    /// `$gte-2030-01-01`, `$leq-2030-02-01`, `$btw-2030-01-01-2030-01-31`.
    #[schemars(with = "Option<crate::types::NightFilter>")]
    pub date: Option<Filter>,
    /// Only entries with a night on or after this date.
    pub from: Option<NaiveDate>,
    /// Only entries with a night before this date (exclusive).
    pub to: Option<NaiveDate>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of calendar entries.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CalendarList {
    /// The entries on this page, by listing and date.
    pub listing_calendars: Vec<ListingCalendar>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The calendar operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createListingCalendar", Service::Catalog)
            .core(Flow::Host, 40)
            .title("Add a calendar entry")
            .who("the listing's host, or an admin")
            .describe("Adds availability/pricing for a listing's nights [date, endDate) (endDate defaults to the next day). isAvailable=false blocks the nights for booking; priceOverride replaces the nightly price. Only the listing's host or an admin; dates must not be in the past. 409 if another entry covers some of the nights or a reservation holds a night being blocked. Returns the entry.")
            .rest(Method::Post, "/propertycatalog-api/v1/listingcalendars")
            .access(Access::Authenticated)
            .creates("listingCalendar")
            .handler(create_entry),
        Operation::build("updateListingCalendar", Service::Catalog)
            .title("Update a calendar entry")
            .who("the listing's host, or an admin")
            .describe("Changes an entry's availability, price override, minimum stay or iCal data (its dates are fixed). Only the listing's host or an admin. Blocking nights a reservation holds gives 409; a stale recordVersion gives 409. Returns the entry.")
            .rest(Method::Patch, "/propertycatalog-api/v1/listingcalendars/{listingCalendarId}")
            .access(Access::Authenticated)
            .updates("listingCalendar")
            .handler(update_entry),
        Operation::build("deleteListingCalendar", Service::Catalog)
            .title("Delete a calendar entry")
            .who("the listing's host, or an admin")
            .describe("Soft-deletes a calendar entry; nights it blocked become bookable again. Only the listing's host or an admin. Returns its last state (isActive false).")
            .rest(Method::Delete, "/propertycatalog-api/v1/listingcalendars/{listingCalendarId}")
            .access(Access::Authenticated)
            .deletes("listingCalendar")
            .handler(delete_entry),
        Operation::build("getListingCalendar", Service::Catalog)
            .title("Get a calendar entry")
            .who("anyone (no login needed) for published listings; drafts only their host and admins")
            .describe("Returns one calendar entry by id. Entries of published listings are public; those of drafts only for the host and admins (others get 404).")
            .rest(Method::Get, "/propertycatalog-api/v1/listingcalendars/{listingCalendarId}")
            .access(Access::Public)
            .reads(Action::Get, "listingCalendar")
            .handler(get_entry),
        Operation::build("listListingCalendars", Service::Catalog)
            .title("List calendar entries")
            .who("anyone (no login needed), for the listings they can see (drafts: their host and admins)")
            .describe("Lists calendar entries of listings you can see, by listing and date: filter by listingId, by date (exact night, $today, $week, $month, or ranges like $gte-2030-01-01) and/or a from/to window. Use it to show availability and price overrides. Paginated.")
            .rest(Method::Get, "/propertycatalog-api/v1/listingcalendars")
            .access(Access::Public)
            .reads(Action::List, "listingCalendars")
            .handler(list_entries),
    ]
}

/// Checks the optional fields both create and update accept.
fn check_common(
    price_override: Option<Money>,
    min_stay: Option<u16>,
    external_ids: Option<&Vec<Name>>,
) -> Result<(), ToolError> {
    if price_override == Some(Money::ZERO) {
        return Err(ToolError::field("priceOverride", "must be more than 0"));
    }
    if min_stay.is_some_and(|n| !(1..=365).contains(&n)) {
        return Err(ToolError::field("minStay", "must be between 1 and 365"));
    }
    if external_ids.is_some_and(|ids| ids.len() > 20) {
        return Err(ToolError::field(
            "externalCalendarIds",
            "at most 20 external ids",
        ));
    }
    Ok(())
}

fn id_texts(ids: Option<Vec<Name>>) -> Option<Vec<String>> {
    ids.map(|ids| ids.into_iter().map(String::from).collect())
}

async fn create_entry(ctx: Ctx, input: NewCalendarEntry) -> Result<ListingCalendar, ToolError> {
    check_common(
        input.price_override,
        input.min_stay,
        input.external_calendar_ids.as_ref(),
    )?;
    let today = today();
    if input.date < today {
        return Err(ToolError::field(
            "date",
            format!("{} is in the past (today is {today})", input.date),
        ));
    }
    let end_date = match input.end_date {
        Some(end) => end,
        None => input
            .date
            .succ_opt()
            .ok_or_else(|| ToolError::field("date", "is out of range"))?,
    };
    let nights = (end_date - input.date).num_days();
    if !(1..=MAX_ENTRY_NIGHTS).contains(&nights) {
        return Err(ToolError::field(
            "endDate",
            format!("must be after date and cover at most {MAX_ENTRY_NIGHTS} nights"),
        ));
    }
    managed_listing(&ctx, input.listing_id, true).await?;
    let owner = ctx.user_id();
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO {TABLE} (listing_id, date, end_date, is_available, price_override, min_stay,
            ical_url, external_calendar_ids, owner_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, COALESCE($8, '{{}}'::text[]), $9) RETURNING {COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.listing_id)
        .bind(input.date)
        .bind(end_date)
        .bind(input.is_available)
        .bind(input.price_override)
        .bind(input.min_stay.map(i32::from))
        .bind(input.ical_url.as_ref().map(ImageUrl::as_str))
        .bind(id_texts(input.external_calendar_ids))
        .bind(owner)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| on_constraint(e, CONFLICTS))
}

impl OfListing for ListingCalendar {
    fn listing_id(&self) -> Uuid {
        self.listing_id
    }
}

async fn load_visible(ctx: &Ctx, id: Uuid) -> Result<ListingCalendar, ToolError> {
    load_visible_child(ctx, (TABLE, COLUMNS), id, false, "calendar entry").await
}

async fn load_managed(ctx: &Ctx, id: Uuid) -> Result<ListingCalendar, ToolError> {
    load_managed_child(ctx, (TABLE, COLUMNS), id, "calendar entry").await
}

/// Locks the listing of entry `id` (see [`lock_listing`]) before the entry itself, the order every
/// write of a listing's nights follows.
async fn lock_entry_listing(ctx: &Ctx, id: Uuid) -> Result<(), ToolError> {
    let listing: Option<Uuid> = {
        let mut db = ctx.db().await?;
        sqlx::query_scalar("SELECT listing_id FROM catalog.listing_calendars WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *db)
            .await?
    };
    match listing {
        Some(listing) => lock_listing(ctx, listing).await,
        None => Ok(()),
    }
}

async fn update_entry(ctx: Ctx, input: CalendarPatch) -> Result<ListingCalendar, ToolError> {
    check_common(
        input.price_override,
        input.min_stay,
        input.external_calendar_ids.as_ref(),
    )?;
    lock_entry_listing(&ctx, input.listing_calendar_id).await?;
    let current = load_managed(&ctx, input.listing_calendar_id).await?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "calendar entry",
    )?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE {TABLE} SET is_available = COALESCE($2, is_available),
            price_override = COALESCE($3, price_override), min_stay = COALESCE($4, min_stay),
            ical_url = COALESCE($5, ical_url),
            external_calendar_ids = COALESCE($6, external_calendar_ids),
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 RETURNING {COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.listing_calendar_id)
        .bind(input.is_available)
        .bind(input.price_override)
        .bind(input.min_stay.map(i32::from))
        .bind(input.ical_url.as_ref().map(ImageUrl::as_str))
        .bind(id_texts(input.external_calendar_ids))
        .fetch_one(&mut *db)
        .await
        .map_err(|e| on_constraint(e, CONFLICTS))
}

async fn delete_entry(ctx: Ctx, input: CalendarRef) -> Result<ListingCalendar, ToolError> {
    load_managed(&ctx, input.listing_calendar_id).await?;
    soft_delete(&ctx, TABLE, COLUMNS, input.listing_calendar_id).await
}

async fn get_entry(ctx: Ctx, input: CalendarRef) -> Result<ListingCalendar, ToolError> {
    load_visible(&ctx, input.listing_calendar_id).await
}

async fn list_entries(ctx: Ctx, input: CalendarFilters) -> Result<CalendarList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    if let (Some(from), Some(to)) = (input.from, input.to) {
        if to <= from {
            return Err(ToolError::field("to", "must be after from"));
        }
    }
    let mut qb = sql::list_select(COLUMNS, &format!("{TABLE} c WHERE is_active"));
    push_listing_visible(&mut qb, &ctx, "c.listing_id");
    sql::id_filter(
        &mut qb,
        "listing_id",
        "listingId",
        input.listing_id.as_ref(),
    )?;
    date_filter(
        &mut qb,
        "date",
        "end_date",
        "date",
        input.date.as_ref(),
        today(),
    )?;
    if let Some(from) = input.from {
        qb.push(" AND end_date > ");
        qb.push_bind(from);
    }
    if let Some(to) = input.to {
        qb.push(" AND date < ");
        qb.push_bind(to);
    }
    let mut db = ctx.db().await?;
    let (listing_calendars, paging) =
        sql::fetch_page(&mut db, qb, "listing_id, date, id", page).await?;
    Ok(CalendarList {
        listing_calendars,
        paging,
    })
}
