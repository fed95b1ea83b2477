//! The "done when": a guest agent, over MCP alone, searches stays for given dates, gets a
//! quote, books, pays with the local provider, sees the reservation confirmed, and after the stay
//! leaves a review that appears once the host has reviewed too.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::{day, shift_into_past};
use crate::helpers::TestApp;

/// Calls a tool and insists it succeeded.
async fn ok(app: &TestApp, token: &str, tool: &str, args: Value) -> Value {
    let (is_error, payload) = app.tool(Some(token), tool, args).await;
    assert!(!is_error, "{tool} failed: {payload}");
    payload
}

/// Calls a tool whose only argument is the reservation `id`, insisting it succeeded.
async fn on_stay(app: &TestApp, token: &str, tool: &str, id: &str) -> Value {
    ok(app, token, tool, json!({ "reservationId": id })).await
}

/// Writes a review of the stay `id` as `token`'s user — (revieweeType, revieweeId, rating,
/// text) — and returns the stay's reviews that `reader` can see afterwards.
async fn review_then_list(
    app: &TestApp,
    token: &str,
    reader: &str,
    id: &str,
    (kind, reviewee, rating, text): (&str, Uuid, i32, &str),
) -> Value {
    let review = json!({
        "reservationId": id, "revieweeType": kind, "revieweeId": reviewee,
        "rating": rating, "reviewText": text
    });
    ok(app, token, "createReview", review).await;
    on_stay(app, reader, "listReviews", id).await
}

#[tokio::test]
async fn a_guest_agent_searches_quotes_books_pays_and_reviews_over_mcp() {
    let app = TestApp::spawn().await;
    let host = app.user("host@journey.test").await;
    let guest = app.user("guest@journey.test").await;

    // The host lists two homes in Porto (one too small) and one in Lisbon, all over MCP.
    let mut listings = Vec::new();
    for (title, city, guests) in [
        ("Ribeira flat", "Porto", 4),
        ("Tiny room", "Porto", 1),
        ("Alfama loft", "Lisbon", 4),
    ] {
        let created = ok(
            &app,
            &host.token,
            "createListing",
            json!({
                "title": title, "description": "A lovely place to stay in the old town.",
                "address": "Rua 1", "location": { "city": city, "country": "PT" },
                "propertyType": "apartment", "approvalType": "instant", "pricePerNight": 80,
                "cleaningFee": 20, "cityTaxPercent": 2, "currency": "EUR", "maxGuests": guests,
                "isPublished": true
            }),
        )
        .await;
        listings.push(created["id"].as_str().unwrap().to_string());
    }

    // 1. Search: Porto, the agent's dates, 2 guests → only the Ribeira flat.
    let (check_in, check_out) = (day(20), day(23));
    let found = ok(
        &app,
        &guest.token,
        "listListings",
        json!({
            "city": "porto", "checkIn": check_in, "checkOut": check_out, "guestCount": 2
        }),
    )
    .await;
    let hits = found["listings"].as_array().unwrap();
    assert_eq!(hits.len(), 1, "{found}");
    assert_eq!(hits[0]["title"], "Ribeira flat");
    let flat = hits[0]["id"].as_str().unwrap().to_string();

    // 2. Quote: 3 × 80 + 20 = 260, service 26, tax 2 % of 240 = 4.8 → 290.8.
    let quote = ok(
        &app,
        &guest.token,
        "quoteReservation",
        json!({
            "listingId": flat, "checkIn": check_in, "checkOut": check_out, "guestCount": 2
        }),
    )
    .await;
    assert_eq!(quote["total"], 290.8, "{quote}");

    // 3. Book.
    let reservation = ok(
        &app,
        &guest.token,
        "createReservation",
        json!({
            "listingId": flat, "checkIn": check_in, "checkOut": check_out, "guestCount": 2,
            "guestNote": "We arrive by train around 6pm."
        }),
    )
    .await;
    assert_eq!(reservation["bookingStatus"], "pending");
    assert_eq!(reservation["totalPrice"], quote["total"]);
    let id = reservation["id"].as_str().unwrap().to_string();

    // 4. Pay with the local provider.
    let paid = ok(
        &app,
        &guest.token,
        "startReservationPayment",
        json!({
            "reservationId": id, "paymentUserParams": { "paymentMethodId": "pm_card_visa" }
        }),
    )
    .await;
    assert_eq!(paid["paymentResult"]["success"], true, "{paid}");
    assert_eq!(paid["paymentResult"]["amount"], 290.8);

    // 5. Confirmed.
    let seen = on_stay(&app, &guest.token, "getReservation", &id).await;
    assert_eq!(seen["bookingStatus"], "confirmed");
    assert_eq!(seen["paymentConfirmation"], "paid");
    assert_eq!(seen["payments"][0]["paymentStatus"], "paid");

    // The stay happens (time passes), then the host marks it complete.
    shift_into_past(&app, id.parse().unwrap(), 30).await;
    let done = on_stay(&app, &host.token, "completeReservation", &id).await;
    assert_eq!(done["bookingStatus"], "complete");

    // 6. The guest reviews the host: hidden while the host has not reviewed (double-blind).
    let listed = review_then_list(
        &app,
        &guest.token,
        &guest.token,
        &id,
        ("host", host.id, 5, "Spotless flat and a warm welcome."),
    )
    .await;
    assert_eq!(
        listed["reviews"],
        json!([]),
        "hidden until both sides reviewed"
    );

    // 7. The host reviews the guest → both appear.
    let listed = review_then_list(
        &app,
        &host.token,
        &guest.token,
        &id,
        ("guest", guest.id, 4, "Friendly and tidy guests."),
    )
    .await;
    let reviews = listed["reviews"].as_array().unwrap();
    assert_eq!(reviews.len(), 2, "{listed}");
    assert!(reviews.iter().all(|r| r["isPublished"] == true));
    let timeline = on_stay(&app, &guest.token, "listReservationActivities", &id).await;
    assert!(
        timeline["reservationActivities"].as_array().unwrap().len() >= 5,
        "{timeline}"
    );
}
