//! Availability and quotes. [`quote`] is the one price computation: `quoteReservation` shows it,
//! `createReservation` stores it, so what a guest is quoted is what they are charged.
//!
//! Per night: a calendar `priceOverride`, else the first matching season, else the base price.
//! Then the cleaning fee, the guest service fee (a percentage of nights + cleaning), the city tax
//! (the listing's percentage of the nights) and the total. The host's payout is nights + cleaning
//! minus the host commission; the platform keeps the service fee plus the commission. All integer
//! cents.

use chrono::{NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::catalog::policies::{BookingPolicies, CancellationPolicy, Percent, SeasonalPricing};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::money::Money;
use crate::registry::{Access, Action, Flow, Method, Operation, Service};
use crate::stay::StayRange;

/// What booking needs to know about a listing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ListingTerms {
    /// Listing id.
    pub id: Uuid,
    /// Its host.
    pub host_id: Uuid,
    /// `instant` or `manual`.
    pub approval_type: String,
    /// Base nightly price.
    pub price_per_night: Money,
    /// One-off cleaning fee.
    pub cleaning_fee: Money,
    /// ISO currency.
    pub currency: String,
    /// Capacity.
    pub max_guests: i32,
    /// Minimum nights.
    pub min_stay: i32,
    /// Maximum nights.
    pub max_stay: Option<i32>,
    /// City tax in hundredths of a percent.
    pub city_tax_hundredths: i64,
    /// Seasonal pricing JSON.
    pub seasonal_pricing: Option<Value>,
    /// Booking policies JSON.
    pub booking_policies: Option<Value>,
    /// Cancellation policy JSON.
    pub cancellation_policy: Option<Value>,
}

impl ListingTerms {
    /// The listing's seasons (stored values were validated on write).
    pub fn seasons(&self) -> SeasonalPricing {
        parse_or_default(self.seasonal_pricing.as_ref())
    }
    /// The listing's booking policies, defaults filled in.
    pub fn booking_policies(&self) -> BookingPolicies {
        parse_or_default(self.booking_policies.as_ref())
    }
    /// The listing's cancellation policy, or the flexible default.
    pub fn cancellation_policy(&self) -> CancellationPolicy {
        parse_or_default(self.cancellation_policy.as_ref())
    }
}

fn parse_or_default<T: serde::de::DeserializeOwned + Default>(value: Option<&Value>) -> T {
    value
        .filter(|v| !v.is_null())
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Loads a bookable listing: active and published (hosts and admins may also quote drafts).
pub async fn load_terms(ctx: &Ctx, listing_id: Uuid) -> Result<ListingTerms, ToolError> {
    load_terms_locking(ctx, listing_id, false).await
}

/// [`load_terms`], taking the listing's row lock (`FOR NO KEY UPDATE`, the lock order of every
/// write of a listing's nights) in the same statement when `lock`: the row read is the one
/// current once the lock is held, so a booking needs no separate locking round trip.
pub async fn load_terms_locking(
    ctx: &Ctx,
    listing_id: Uuid,
    lock: bool,
) -> Result<ListingTerms, ToolError> {
    let mut db = ctx.db().await?;
    sqlx::query_as(&terms_sql("", lock))
        .bind(listing_id)
        .bind(ctx.user_id())
        .bind(ctx.is_admin())
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("listing"))
}

/// The statement reading a bookable listing's terms (`$1` the listing, `$2` the caller, `$3`
/// whether an admin calls), with `extra` select-list entries, under the row lock when `lock`.
fn terms_sql(extra: &str, lock: bool) -> String {
    format!(
        "SELECT id, host_id, approval_type, price_per_night, cleaning_fee, currency, max_guests,
                min_stay, max_stay, (city_tax_percent * 100)::bigint AS city_tax_hundredths,
                seasonal_pricing, booking_policies, cancellation_policy{extra}
           FROM catalog.listings l
          WHERE id = $1 AND is_active AND (is_published OR host_id = $2 OR $3){}",
        if lock { " FOR NO KEY UPDATE" } else { "" }
    )
}

/// A listing's terms with its active calendar entries overlapping a stay, read in one round trip.
#[derive(sqlx::FromRow)]
struct TermsAndCalendar {
    #[sqlx(flatten)]
    terms: ListingTerms,
    calendar: sqlx::types::Json<Vec<CalendarEntry>>,
}

/// [`load_terms_locking`] and the listing's active calendar entries overlapping `stay`, in one
/// statement (the row lock, when taken, covers the listing row only).
async fn terms_and_calendar(
    ctx: &Ctx,
    listing_id: Uuid,
    stay: &StayRange,
    lock: bool,
) -> Result<(ListingTerms, Vec<CalendarEntry>), ToolError> {
    let mut db = ctx.db().await?;
    let calendar = ",
                (SELECT coalesce(jsonb_agg(jsonb_build_object('date', c.date, 'end_date', c.end_date,
                        'price_override', c.price_override, 'min_stay', c.min_stay)), '[]')
                   FROM catalog.listing_calendars c
                  WHERE c.listing_id = l.id AND c.is_active AND c.date < $5 AND c.end_date > $4) AS calendar";
    let row: TermsAndCalendar = sqlx::query_as(&terms_sql(calendar, lock))
        .bind(listing_id)
        .bind(ctx.user_id())
        .bind(ctx.is_admin())
        .bind(stay.check_in())
        .bind(stay.check_out())
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("listing"))?;
    Ok((row.terms, row.calendar.0))
}

/// Where a night's price came from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum PriceSource {
    /// The listing's base `pricePerNight`.
    Base,
    /// A season of `seasonalPricing`.
    Season,
    /// A calendar entry's `priceOverride`.
    Calendar,
}

/// One night of a quote.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NightPrice {
    /// The night (the evening of this date).
    pub date: NaiveDate,
    /// Its price.
    pub price: Money,
    /// Where the price came from.
    pub source: PriceSource,
}

/// An itemised price (BokaMera/Launch27 style rows) in the listing's currency.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Quote {
    /// The listing.
    pub listing_id: Uuid,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
    /// Nights.
    pub nights: i64,
    /// Guests.
    pub guest_count: i32,
    /// ISO currency of every amount.
    pub currency: String,
    /// Each night's price.
    pub nightly: Vec<NightPrice>,
    /// Sum of the nights.
    pub accommodation: Money,
    /// The listing's cleaning fee.
    pub cleaning_fee: Money,
    /// The guest service fee.
    pub service_fee: Money,
    /// City tax on the nights.
    pub city_tax: Money,
    /// The city tax rate applied, in percent.
    pub city_tax_percent: Percent,
    /// What the guest pays.
    pub total: Money,
    /// What the host receives.
    pub host_payout: Money,
    /// What the platform keeps (service fee plus host commission).
    pub platform_fee: Money,
    /// `instant` (confirmed once paid) or `manual` (the host approves first).
    #[schemars(with = "crate::types::Choice<crate::vocabulary::ApprovalTypes>")]
    pub approval_type: String,
    /// The last day a guest cancellation is refunded in full.
    pub free_cancellation_until: NaiveDate,
    /// The cancellation policy that will be snapshotted.
    pub cancellation_policy: CancellationPolicy,
}

/// Checks a stay against the listing's rules (capacity, min/max nights, booking window),
/// naming the field a caller should change.
pub fn check_rules(
    terms: &ListingTerms,
    stay: &StayRange,
    guest_count: i32,
    calendar_min_stay: Option<i32>,
    today: NaiveDate,
) -> Result<(), ToolError> {
    if guest_count < 1 {
        return Err(ToolError::field("guestCount", "must be at least 1"));
    }
    if guest_count > terms.max_guests {
        return Err(ToolError::field(
            "guestCount",
            format!(
                "this listing hosts at most {} guests, you asked for {guest_count}",
                terms.max_guests
            ),
        ));
    }
    let nights = stay.nights();
    let min = calendar_min_stay.unwrap_or(terms.min_stay).max(1);
    if nights < i64::from(min) {
        return Err(ToolError::field(
            "checkOut",
            format!(
                "this listing needs at least {min} nights for these dates, you asked for {nights}"
            ),
        ));
    }
    if let Some(max) = terms.max_stay {
        if nights > i64::from(max) {
            return Err(ToolError::field(
                "checkOut",
                format!("this listing allows at most {max} nights, you asked for {nights}"),
            ));
        }
    }
    let (min_ahead, max_ahead) = terms.booking_policies().window();
    let ahead = (stay.check_in() - today).num_days();
    if ahead < min_ahead {
        return Err(ToolError::field(
            "checkIn",
            format!("this listing must be booked at least {min_ahead} days ahead"),
        ));
    }
    if ahead > max_ahead {
        return Err(ToolError::field(
            "checkIn",
            format!("this listing takes bookings at most {max_ahead} days ahead"),
        ));
    }
    Ok(())
}

/// A calendar entry overlapping the stay: its nights, price override and minimum stay.
/// Read from the JSON the pricing statement aggregates (`terms_and_calendar`).
#[derive(Debug, Clone, Deserialize)]
pub struct CalendarEntry {
    /// First night covered.
    pub date: NaiveDate,
    /// First night not covered.
    pub end_date: NaiveDate,
    /// Price for each covered night (the column holds cents).
    #[serde(deserialize_with = "cents")]
    pub price_override: Option<Money>,
    /// Minimum stay when arriving on a covered night.
    pub min_stay: Option<i32>,
}

/// An amount in cents, as the calendar's `price_override` column holds it.
fn cents<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Money>, D::Error> {
    Ok(Option::<i64>::deserialize(d)?.map(Money::from_cents))
}

/// Prices a stay (pure: no I/O). Fees are in hundredths of a percent.
pub fn quote(
    terms: &ListingTerms,
    stay: &StayRange,
    guest_count: i32,
    calendar: &[CalendarEntry],
    guest_fee_hundredths: i64,
    host_fee_hundredths: i64,
) -> Quote {
    let seasons = terms.seasons();
    let nightly: Vec<NightPrice> = stay
        .each_night()
        .map(|date| {
            let entry = calendar
                .iter()
                .find(|e| e.date <= date && date < e.end_date)
                .and_then(|e| e.price_override);
            let (price, source) = match (entry, seasons.price_on(date)) {
                (Some(p), _) => (p, PriceSource::Calendar),
                (None, Some(p)) => (p, PriceSource::Season),
                (None, None) => (terms.price_per_night, PriceSource::Base),
            };
            NightPrice {
                date,
                price,
                source,
            }
        })
        .collect();
    let accommodation: Money = nightly.iter().map(|n| n.price).sum();
    let stay_subtotal = accommodation + terms.cleaning_fee;
    let service_fee = stay_subtotal.percent_hundredths(guest_fee_hundredths);
    let city_tax = accommodation.percent_hundredths(terms.city_tax_hundredths);
    let host_commission = stay_subtotal.percent_hundredths(host_fee_hundredths);
    let policy = terms.cancellation_policy();
    Quote {
        listing_id: terms.id,
        check_in: stay.check_in(),
        check_out: stay.check_out(),
        nights: stay.nights(),
        guest_count,
        currency: terms.currency.clone(),
        nightly,
        accommodation,
        cleaning_fee: terms.cleaning_fee,
        service_fee,
        city_tax,
        city_tax_percent: Percent::from_hundredths(terms.city_tax_hundredths),
        total: stay_subtotal + service_fee + city_tax,
        host_payout: stay_subtotal - host_commission,
        platform_fee: service_fee + host_commission,
        approval_type: terms.approval_type.clone(),
        free_cancellation_until: policy.free_until(stay.check_in()),
        cancellation_policy: policy,
    }
}

/// A stay request as quote, availability and booking take it.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StayRequest {
    /// The listing.
    pub listing_id: Uuid,
    /// First night, `YYYY-MM-DD`.
    pub check_in: NaiveDate,
    /// Departure day, `YYYY-MM-DD` (after checkIn).
    pub check_out: NaiveDate,
    /// Number of guests (default 1).
    #[schemars(range(min = 1, max = 100))]
    pub guest_count: Option<i32>,
}

/// Validates and prices a stay request for the caller: the listing must be visible, the dates
/// upcoming and within the listing's rules. Does not check availability.
pub async fn price_stay(
    ctx: &Ctx,
    listing_id: Uuid,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guest_count: i32,
) -> Result<(ListingTerms, StayRange, Quote), ToolError> {
    price_stay_locking(ctx, listing_id, check_in, check_out, guest_count, false).await
}

/// [`price_stay`], locking the listing's row first when `lock` (see [`load_terms_locking`]).
pub async fn price_stay_locking(
    ctx: &Ctx,
    listing_id: Uuid,
    check_in: NaiveDate,
    check_out: NaiveDate,
    guest_count: i32,
    lock: bool,
) -> Result<(ListingTerms, StayRange, Quote), ToolError> {
    let today = Utc::now().date_naive();
    let stay = StayRange::upcoming(check_in, check_out, today)?;
    let (terms, calendar) = terms_and_calendar(ctx, listing_id, &stay, lock).await?;
    let arrival_min_stay = calendar
        .iter()
        .find(|e| e.date <= stay.check_in() && stay.check_in() < e.end_date)
        .and_then(|e| e.min_stay);
    check_rules(&terms, &stay, guest_count, arrival_min_stay, today)?;
    let settings = &ctx.services.settings;
    let quote = quote(
        &terms,
        &stay,
        guest_count,
        &calendar,
        settings.guest_fee_hundredths,
        settings.host_fee_hundredths,
    );
    Ok((terms, stay, quote))
}

/// The nights of `stay` already held on a listing (by a booking or a host block).
pub async fn conflicting_nights(
    ctx: &Ctx,
    listing_id: Uuid,
    stay: &StayRange,
) -> Result<Vec<NaiveDate>, ToolError> {
    let mut db = ctx.db().await?;
    Ok(sqlx::query_scalar(
        "SELECT DISTINCT night::date FROM catalog.listing_holds h,
                generate_series(greatest(lower(h.stay), $2::date), least(upper(h.stay), $3::date) - 1, interval '1 day') AS night
          WHERE h.listing_id = $1 AND h.stay && daterange($2, $3, '[)')
          ORDER BY 1",
    )
    .bind(listing_id)
    .bind(stay.check_in())
    .bind(stay.check_out())
    .fetch_all(&mut *db)
    .await?)
}

/// The answer of `checkListingAvailability`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Availability {
    /// The listing.
    pub listing_id: Uuid,
    /// First night asked for.
    pub check_in: NaiveDate,
    /// Departure day asked for.
    pub check_out: NaiveDate,
    /// True when every night is free and the stay meets the listing's rules.
    pub available: bool,
    /// Nights already booked or blocked.
    pub conflicting_nights: Vec<NaiveDate>,
    /// Why the stay cannot be booked, in words, when it cannot.
    pub reason: Option<String>,
    /// The listing's minimum nights.
    pub min_stay: i32,
    /// The listing's maximum nights.
    pub max_stay: Option<i32>,
    /// The listing's capacity.
    pub max_guests: i32,
}

/// Availability and quote operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("checkListingAvailability", Service::Booking)
            .core(Flow::Guest, 30)
            .title("Check a listing's availability")
            .describe(
                "Checks whether a listing can be booked for checkIn..checkOut (checkOut is the departure day) \
                 and guestCount. Returns available=true, or the nights already booked or blocked \
                 (conflictingNights) and/or the rule that fails (reason: too many guests, too few nights, \
                 outside the booking window). Call this before quoteReservation/createReservation.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/listings/{listingId}/availability")
            .access(Access::Public)
            .reads(Action::Get, "availability")
            .handler(check_availability),
        Operation::build("quoteReservation", Service::Booking)
            .core(Flow::Guest, 40)
            .title("Quote a stay")
            .describe(
                "Prices a stay without booking it: each night (calendar override, season or base price), \
                 cleaning fee, guest service fee, city tax and the total the guest will pay, in the listing's \
                 currency, plus the free-cancellation deadline. createReservation charges exactly this total.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/listings/{listingId}/quote")
            .access(Access::Public)
            .reads(Action::Get, "quote")
            .handler(quote_reservation),
    ]
}

async fn check_availability(ctx: Ctx, input: StayRequest) -> Result<Availability, ToolError> {
    let guests = input.guest_count.unwrap_or(1);
    let today = Utc::now().date_naive();
    let stay = StayRange::upcoming(input.check_in, input.check_out, today)?;
    let terms = load_terms(&ctx, input.listing_id).await?;
    crate::booking::lifecycle::expire_overdue(&ctx, Some(input.listing_id)).await?;
    let conflicting_nights = conflicting_nights(&ctx, input.listing_id, &stay).await?;
    let rules = price_stay(
        &ctx,
        input.listing_id,
        input.check_in,
        input.check_out,
        guests,
    )
    .await
    .err()
    .map(|e| e.message);
    let reason = match (&rules, conflicting_nights.is_empty()) {
        (Some(rule), _) => Some(rule.clone()),
        (None, false) => Some(format!(
            "{} of the requested nights are already booked or blocked",
            conflicting_nights.len()
        )),
        (None, true) => None,
    };
    Ok(Availability {
        listing_id: terms.id,
        check_in: stay.check_in(),
        check_out: stay.check_out(),
        available: reason.is_none(),
        conflicting_nights,
        reason,
        min_stay: terms.min_stay,
        max_stay: terms.max_stay,
        max_guests: terms.max_guests,
    })
}

async fn quote_reservation(ctx: Ctx, input: StayRequest) -> Result<Quote, ToolError> {
    let guests = input.guest_count.unwrap_or(1);
    let (_, _, quote) = price_stay(
        &ctx,
        input.listing_id,
        input.check_in,
        input.check_out,
        guests,
    )
    .await?;
    Ok(quote)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn terms() -> ListingTerms {
        ListingTerms {
            id: Uuid::nil(),
            host_id: Uuid::nil(),
            approval_type: "instant".into(),
            price_per_night: Money::from_cents(10_000),
            cleaning_fee: Money::from_cents(3_000),
            currency: "EUR".into(),
            max_guests: 4,
            min_stay: 2,
            max_stay: Some(10),
            city_tax_hundredths: 500,
            seasonal_pricing: Some(serde_json::json!({
                "seasons": [{ "from": "07-01", "to": "08-31", "pricePerNight": 150 }]
            })),
            booking_policies: None,
            cancellation_policy: None,
        }
    }

    #[test]
    fn itemises_nights_fees_and_tax() {
        let stay = StayRange::new(d("2030-06-29"), d("2030-07-02")).unwrap();
        let calendar = [CalendarEntry {
            date: d("2030-07-01"),
            end_date: d("2030-07-02"),
            price_override: Some(Money::from_cents(20_000)),
            min_stay: None,
        }];
        let q = quote(&terms(), &stay, 2, &calendar, 1000, 300);
        let sources: Vec<_> = q.nightly.iter().map(|n| n.source).collect();
        assert_eq!(
            sources,
            [PriceSource::Base, PriceSource::Base, PriceSource::Calendar]
        );
        assert_eq!(q.accommodation.cents(), 40_000);
        assert_eq!(q.service_fee.cents(), 4_300); // 10 % of 430.00
        assert_eq!(q.city_tax.cents(), 2_000); // 5 % of the nights
        assert_eq!(q.total.cents(), 40_000 + 3_000 + 4_300 + 2_000);
        assert_eq!(q.host_payout.cents(), 43_000 - 1_290);
        assert_eq!(q.platform_fee.cents(), 4_300 + 1_290);
        assert_eq!(q.total, q.host_payout + q.platform_fee + q.city_tax);
    }

    #[test]
    fn seasons_price_their_nights() {
        let stay = StayRange::new(d("2030-07-10"), d("2030-07-12")).unwrap();
        let q = quote(&terms(), &stay, 1, &[], 0, 0);
        assert_eq!(q.accommodation.cents(), 30_000);
        assert!(q.nightly.iter().all(|n| n.source == PriceSource::Season));
    }

    #[test]
    fn rules_name_the_field_to_fix() {
        let today = d("2030-01-01");
        let one_night = StayRange::new(d("2030-02-01"), d("2030-02-02")).unwrap();
        let err = check_rules(&terms(), &one_night, 2, None, today).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("checkOut"));
        let ok = StayRange::new(d("2030-02-01"), d("2030-02-04")).unwrap();
        let err = check_rules(&terms(), &ok, 5, None, today).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("guestCount"));
        assert!(check_rules(&terms(), &ok, 4, None, today).is_ok());
        let far = StayRange::new(d("2032-02-01"), d("2032-02-04")).unwrap();
        assert!(check_rules(&terms(), &far, 1, None, today).is_err());
    }
}
