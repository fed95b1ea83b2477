//! Reservations: quotes equal charges, the server owns prices and statuses, dates and guest counts
//! are checked, the lifecycle moves only along its edges, and holds expire.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::fixtures::{act, activity_kinds, book, booked, day, listing};
use crate::helpers::{assert_error, TestApp};

#[tokio::test]
async fn the_quote_is_what_the_guest_is_charged() {
    let app = TestApp::spawn().await;
    let host = app.user("host@stay.test").await;
    let guest = app.user("guest@stay.test").await;
    let home = listing(&app, &host, json!({})).await;
    let path = format!(
        "/bookingmanagement-api/v1/listings/{home}/quote?checkIn={}&checkOut={}&guestCount=2",
        day(10),
        day(13)
    );
    let (status, quote) = app.rest(Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{quote}");
    let quote = &quote["quote"];
    // 3 × 100 + 30 cleaning = 330; service 10 % = 33; city tax 5 % of 300 = 15.
    assert_eq!(quote["nights"], 3);
    assert_eq!(quote["accommodation"], 300.0);
    assert_eq!(quote["serviceFee"], 33.0);
    assert_eq!(quote["cityTax"], 15.0);
    assert_eq!(quote["total"], 378.0);
    assert_eq!(quote["currency"], "EUR");

    let (status, body) = book(&app, &guest, home, 10, 3).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let r = &body["reservation"];
    assert_eq!(r["totalPrice"], quote["total"]);
    assert_eq!(r["bookingStatus"], "pending");
    assert_eq!(r["bookingStatus_idx"], 0);
    assert_eq!(r["paymentConfirmation"], "pending");
    assert_eq!(r["disputeStatus"], "none");
    assert_eq!(r["guestId"], guest.id.to_string());
    assert_eq!(r["hostId"], host.id.to_string());
    assert_eq!(r["priceBreakdown"]["total"], quote["total"]);
    assert!(r["holdExpiresAt"].is_string());
    let id = uuid::Uuid::parse_str(r["id"].as_str().unwrap()).unwrap();
    assert_eq!(
        activity_kinds(&app, id).await,
        vec!["reservation_requested"]
    );
}

#[tokio::test]
async fn bad_stays_and_server_owned_fields_are_refused_and_nothing_is_written() {
    let app = TestApp::spawn().await;
    let host = app.user("host@stay.test").await;
    let guest = app.user("guest@stay.test").await;
    let home = listing(&app, &host, json!({ "minStay": 2, "maxStay": 7 })).await;
    let base =
        json!({ "listingId": home, "checkIn": day(10), "checkOut": day(12), "guestCount": 2 });
    let with = |field: &str, value: serde_json::Value| {
        let mut b = base.clone();
        b[field] = value;
        b
    };
    let cases = [
        (
            with("checkOut", json!(day(9))),
            StatusCode::BAD_REQUEST,
            "checkOut",
        ),
        (
            with("checkOut", json!(day(10))),
            StatusCode::BAD_REQUEST,
            "checkOut",
        ),
        (
            json!({ "listingId": home, "checkIn": day(-3), "checkOut": day(-1), "guestCount": 2 }),
            StatusCode::BAD_REQUEST,
            "checkIn",
        ),
        (
            with("guestCount", json!(5)),
            StatusCode::BAD_REQUEST,
            "guestCount",
        ),
        (
            with("guestCount", json!(0)),
            StatusCode::BAD_REQUEST,
            "guestCount",
        ),
        (
            with("checkOut", json!(day(11))),
            StatusCode::BAD_REQUEST,
            "at least 2 nights",
        ),
        (
            with("checkOut", json!(day(30))),
            StatusCode::BAD_REQUEST,
            "at most 7 nights",
        ),
        (
            with("checkIn", json!("next tuesday")),
            StatusCode::BAD_REQUEST,
            "checkIn",
        ),
        (
            with("listingId", json!(uuid::Uuid::new_v4())),
            StatusCode::NOT_FOUND,
            "listing",
        ),
        (
            with("totalPrice", json!(1)),
            StatusCode::BAD_REQUEST,
            "totalPrice",
        ),
        (
            with("bookingStatus", json!("confirmed")),
            StatusCode::BAD_REQUEST,
            "bookingStatus",
        ),
        (
            with("paymentConfirmation", json!("paid")),
            StatusCode::BAD_REQUEST,
            "paymentConfirmation",
        ),
        (
            with("hostId", json!(guest.id)),
            StatusCode::BAD_REQUEST,
            "hostId",
        ),
        (
            with("currency", json!("USD")),
            StatusCode::BAD_REQUEST,
            "currency",
        ),
        (
            with("platformFee", json!(0)),
            StatusCode::BAD_REQUEST,
            "platformFee",
        ),
        (
            with("cancellationPolicySnapshot", json!({})),
            StatusCode::BAD_REQUEST,
            "cancellationPolicySnapshot",
        ),
        (
            with("surprise", json!(1)),
            StatusCode::BAD_REQUEST,
            "surprise",
        ),
    ];
    for (body, expected, needle) in cases {
        let (status, reply) = app
            .rest(
                Method::POST,
                "/bookingmanagement-api/v1/reservations",
                Some(&guest.token),
                Some(body.clone()),
            )
            .await;
        assert_error(status, &reply, expected, needle);
    }
    // The same over MCP: a tool error naming the field.
    let (is_error, text) = app
        .tool(
            Some(&guest.token),
            "createReservation",
            with("totalPrice", json!(1)),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("totalPrice"),
        "{text}"
    );
    // The host cannot book their own listing.
    let (status, reply) = book(&app, &host, home, 10, 2).await;
    assert_error(
        status,
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "own listing",
    );
    assert_eq!(app.count("booking.reservations").await, 0);
    assert_eq!(app.count("catalog.listing_holds").await, 0);
}

#[tokio::test]
async fn availability_shows_conflicting_nights_and_back_to_back_stays_fit() {
    let app = TestApp::spawn().await;
    let host = app.user("host@stay.test").await;
    let ann = app.user("ann@stay.test").await;
    let bob = app.user("bob@stay.test").await;
    let home = listing(&app, &host, json!({})).await;
    booked(&app, &ann, home, 10, 4).await; // nights 10..13
    let (is_error, availability) = app
        .tool(
            None,
            "checkListingAvailability",
            json!({ "listingId": home, "checkIn": day(12), "checkOut": day(16), "guestCount": 2 }),
        )
        .await;
    assert!(!is_error, "{availability}");
    assert_eq!(availability["available"], false);
    assert_eq!(availability["conflictingNights"], json!([day(12), day(13)]));
    let (status, reply) = book(&app, &bob, home, 12, 4).await;
    assert_error(status, &reply, StatusCode::CONFLICT, "no longer available");
    // Back to back: check-in on the previous guest's check-out day.
    let (_, availability) = app
        .tool(
            None,
            "checkListingAvailability",
            json!({ "listingId": home, "checkIn": day(14), "checkOut": day(16) }),
        )
        .await;
    assert_eq!(availability["available"], true, "{availability}");
    booked(&app, &bob, home, 14, 2).await;
    let (_, too_many) = app
        .tool(
            None,
            "checkListingAvailability",
            json!({ "listingId": home, "checkIn": day(20), "checkOut": day(22), "guestCount": 9 }),
        )
        .await;
    assert_eq!(too_many["available"], false);
    assert!(too_many["reason"]
        .as_str()
        .unwrap()
        .contains("at most 4 guests"));
}

#[tokio::test]
async fn manual_requests_need_the_host_and_only_the_host() {
    let app = TestApp::spawn().await;
    let host = app.user("host@stay.test").await;
    let guest = app.user("guest@stay.test").await;
    let other = app.user("other@stay.test").await;
    let home = listing(&app, &host, json!({ "approvalType": "manual" })).await;
    let id = booked(&app, &guest, home, 10, 3).await;

    // Paying before approval is refused.
    let path = format!("/bookingmanagement-api/v1/startreservationpayment/{id}");
    let pay = json!({ "paymentUserParams": { "paymentMethodId": "pm_card_visa" } });
    let (status, reply) = app
        .rest(Method::PATCH, &path, Some(&guest.token), Some(pay.clone()))
        .await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, "approve");
    // The guest cannot approve their own request; a stranger cannot even see it.
    let (status, reply) = act(&app, &guest, id, "approve", json!({})).await;
    assert_error(status, &reply, StatusCode::FORBIDDEN, "host");
    let (status, reply) = act(&app, &other, id, "approve", json!({})).await;
    assert_error(status, &reply, StatusCode::NOT_FOUND, "reservation");
    let (status, reply) = app
        .rest(
            Method::GET,
            &format!("/bookingmanagement-api/v1/reservations/{id}"),
            Some(&other.token),
            None,
        )
        .await;
    assert_error(status, &reply, StatusCode::NOT_FOUND, "reservation");
    // A stale version is a conflict.
    let (status, reply) = act(&app, &host, id, "approve", json!({ "recordVersion": 99 })).await;
    assert_error(status, &reply, StatusCode::CONFLICT, "recordVersion");

    let (status, body) = act(&app, &host, id, "approve", json!({ "reason": "welcome!" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["reservation"]["approvedAt"].is_string());
    let (status, body) = app
        .rest(Method::PATCH, &path, Some(&guest.token), Some(pay))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["bookingStatus"], "confirmed");
    assert_eq!(body["paymentResult"]["statusLiteral"], "paid");
    // The host sees it in their list; the stranger's list is empty.
    let (_, list) = app
        .rest(
            Method::GET,
            "/bookingmanagement-api/v1/reservations",
            Some(&host.token),
            None,
        )
        .await;
    assert_eq!(list["reservations"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["reservations"][0]["listingJoins"][0]["title"],
        "Sea view loft"
    );
    assert_eq!(
        list["reservations"][0]["hostDetails"][0]["id"],
        host.id.to_string()
    );
    let (_, list) = app
        .rest(
            Method::GET,
            "/bookingmanagement-api/v1/reservations",
            Some(&other.token),
            None,
        )
        .await;
    assert_eq!(list["reservations"], json!([]));
    assert_eq!(
        activity_kinds(&app, id).await,
        vec![
            "reservation_requested",
            "request_approved",
            "payment_status_changed",
            "payment_recorded",
            "status_changed"
        ]
    );
}

#[tokio::test]
async fn declining_and_cancelling_release_the_nights() {
    let app = TestApp::spawn().await;
    let host = app.user("host@stay.test").await;
    let ann = app.user("ann@stay.test").await;
    let bob = app.user("bob@stay.test").await;
    let manual = listing(&app, &host, json!({ "approvalType": "manual" })).await;
    let request = booked(&app, &ann, manual, 10, 3).await;
    let (status, body) = act(
        &app,
        &host,
        request,
        "decline",
        json!({ "reason": "closed for works" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["bookingStatus"], "declined");
    assert_eq!(
        body["reservation"]["cancellationReason"],
        "closed for works"
    );
    booked(&app, &bob, manual, 10, 3).await;
    // Declined is terminal.
    let (status, reply) = act(&app, &host, request, "approve", json!({})).await;
    assert_error(status, &reply, StatusCode::UNPROCESSABLE_ENTITY, "declined");

    let instant = listing(&app, &host, json!({})).await;
    let stay = booked(&app, &ann, instant, 20, 2).await;
    let (status, body) = act(&app, &ann, stay, "cancel", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["bookingStatus"], "cancelled");
    assert_eq!(body["reservation"]["paymentConfirmation"], "canceled");
    booked(&app, &bob, instant, 20, 2).await;
    // Completing before check-out is refused; completing a cancelled stay too.
    let (status, reply) = act(&app, &host, stay, "complete", json!({})).await;
    assert_error(
        status,
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "cancelled",
    );
}

#[tokio::test]
async fn unpaid_holds_expire_and_free_their_nights() {
    let app = TestApp::spawn().await;
    let host = app.user("host@stay.test").await;
    let ann = app.user("ann@stay.test").await;
    let bob = app.user("bob@stay.test").await;
    let home = listing(&app, &host, json!({})).await;
    let first = booked(&app, &ann, home, 10, 3).await;
    let (status, _) = book(&app, &bob, home, 10, 3).await;
    assert_eq!(status, StatusCode::CONFLICT);
    sqlx::query("UPDATE booking.reservations SET hold_expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(first)
        .execute(&app.db)
        .await
        .unwrap();
    booked(&app, &bob, home, 10, 3).await;
    let status: String =
        sqlx::query_scalar("SELECT booking_status FROM booking.reservations WHERE id = $1")
            .bind(first)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(status, "cancelled");
    assert_eq!(
        activity_kinds(&app, first).await.last().unwrap(),
        "status_changed"
    );
    let actor: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT actor_id FROM booking.reservation_activities WHERE reservation_id = $1 AND kind = 'status_changed'",
    )
    .bind(first)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(actor, None, "the system expired it, not bob");
}

#[tokio::test]
async fn reservation_notes_update_but_statuses_do_not() {
    let app = TestApp::spawn().await;
    let host = app.user("host@stay.test").await;
    let guest = app.user("guest@stay.test").await;
    let home = listing(&app, &host, json!({})).await;
    let id = booked(&app, &guest, home, 10, 3).await;
    let path = format!("/bookingmanagement-api/v1/reservations/{id}");
    let (status, body) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&guest.token),
            Some(json!({ "guestNote": "Arriving late", "recordVersion": 1 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["guestNote"], "Arriving late");
    for (field, value) in [
        ("bookingStatus", json!("confirmed")),
        ("disputeStatus", json!("active")),
        ("checkIn", json!(day(11))),
    ] {
        let (status, reply) = app
            .rest(
                Method::PATCH,
                &path,
                Some(&guest.token),
                Some(json!({ field: value })),
            )
            .await;
        assert_error(status, &reply, StatusCode::BAD_REQUEST, field);
    }
    let (status, reply) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&host.token),
            Some(json!({ "guestNote": "hi" })),
        )
        .await;
    assert_error(status, &reply, StatusCode::FORBIDDEN, "guest");
    let (status, reply) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&guest.token),
            Some(json!({ "guestNote": "x", "recordVersion": 1 })),
        )
        .await;
    assert_error(status, &reply, StatusCode::CONFLICT, "recordVersion");
    // Delete cancels and hides.
    let (status, body) = app
        .rest(Method::DELETE, &path, Some(&guest.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["isActive"], false);
    assert_eq!(body["reservation"]["bookingStatus"], "cancelled");
    let (status, _) = app.rest(Method::GET, &path, Some(&guest.token), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(app.count("catalog.listing_holds").await, 0);
}
