//! Stay fixtures shared by the booking tests: listings created through the real API, dates
//! relative to today, and the no-overlap invariant check.

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{TestApp, TestUser};

/// `today + n` days as `YYYY-MM-DD`.
pub fn day(n: i64) -> String {
    (Utc::now().date_naive() + Duration::days(n)).to_string()
}

/// Creates a published listing in Lisbon (100 EUR/night, cleaning 30, city tax 5 %, up to 4
/// guests, instant booking) through `createListing`; `changes` override any field.
pub async fn listing(app: &TestApp, host: &TestUser, changes: Value) -> Uuid {
    let mut body = json!({
        "title": "Sea view loft",
        "description": "A bright loft two streets from the beach.",
        "address": "1 Rua do Mar",
        "location": { "city": "Lisbon", "country": "PT" },
        "propertyType": "loft",
        "approvalType": "instant",
        "pricePerNight": 100,
        "cleaningFee": 30,
        "cityTaxPercent": 5,
        "currency": "EUR",
        "maxGuests": 4,
        "isPublished": true
    });
    if let (Value::Object(base), Value::Object(extra)) = (&mut body, changes) {
        base.extend(extra);
    }
    let (status, body) = app
        .rest(
            Method::POST,
            "/propertycatalog-api/v1/listings",
            Some(&host.token),
            Some(body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Uuid::parse_str(body["listing"]["id"].as_str().unwrap()).unwrap()
}

/// Books `listing` from `today + from` for `nights` nights over REST; returns status and body.
pub async fn book(
    app: &TestApp,
    guest: &TestUser,
    listing: Uuid,
    from: i64,
    nights: i64,
) -> (StatusCode, Value) {
    app.rest(
        Method::POST,
        "/bookingmanagement-api/v1/reservations",
        Some(&guest.token),
        Some(json!({
            "listingId": listing,
            "checkIn": day(from),
            "checkOut": day(from + nights),
            "guestCount": 2
        })),
    )
    .await
}

/// Books and returns the new reservation's id (asserting 201).
pub async fn booked(
    app: &TestApp,
    guest: &TestUser,
    listing: Uuid,
    from: i64,
    nights: i64,
) -> Uuid {
    let (status, body) = book(app, guest, listing, from, nights).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    Uuid::parse_str(body["reservation"]["id"].as_str().unwrap()).unwrap()
}

/// A reservation transition or read over REST (`approve`, `cancel`, …, or "" for GET).
pub async fn act(
    app: &TestApp,
    user: &TestUser,
    reservation: Uuid,
    action: &str,
    body: Value,
) -> (StatusCode, Value) {
    let path = format!("/bookingmanagement-api/v1/reservations/{reservation}/{action}");
    app.rest(Method::POST, &path, Some(&user.token), Some(body))
        .await
}

/// Pairs of holds of one listing sharing a night (must always be 0).
pub async fn overlapping_holds(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM catalog.listing_holds a JOIN catalog.listing_holds b
           ON a.listing_id = b.listing_id AND a.id < b.id AND a.stay && b.stay",
    )
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// The kinds in a reservation's timeline, oldest first.
pub async fn activity_kinds(app: &TestApp, reservation: Uuid) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT kind FROM booking.reservation_activities WHERE reservation_id = $1 ORDER BY created_at, id",
    )
    .bind(reservation)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

/// Moves a reservation `days` into the past (as if time had passed), holds included.
pub async fn shift_into_past(app: &TestApp, reservation: Uuid, days: i32) {
    sqlx::query(
        "UPDATE booking.reservations SET check_in = check_in - $2, check_out = check_out - $2 WHERE id = $1",
    )
    .bind(reservation)
    .bind(days)
    .execute(&app.db)
    .await
    .unwrap();
}
