//! No double booking, ever: concurrent requests for overlapping nights race on the exclusion
//! constraint, exactly one wins, every loser gets a clean 409, and no two holds share a night.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use crate::fixtures::{book, day, listing, overlapping_holds};
use crate::helpers::{TestApp, TestUser};

/// An app with enough connections for concurrent requests, a host and their published listing.
async fn race_track() -> (TestApp, TestUser, Uuid) {
    let mut config = crate::helpers::test_config();
    config.db_max_connections = 20;
    let app = TestApp::spawn_with(config).await;
    let host = app.user("host@race.test").await;
    let home = listing(&app, &host, json!({})).await;
    (app, host, home)
}

#[tokio::test]
async fn fifty_concurrent_bookings_of_overlapping_dates_have_one_winner() {
    let (app, _host, home) = race_track().await;
    let mut guests = Vec::new();
    for i in 0..5 {
        guests.push(app.user(&format!("guest{i}@race.test")).await);
    }
    // 50 requests for the same listing with two different ranges that share nights 11 and 12.
    let attempts = (0..50).map(|i| {
        let guest = &guests[i % guests.len()];
        let from = 10 + (i as i64 % 2);
        let app = &app;
        async move { book(app, guest, home, from, 3).await }
    });
    let results = join_all(attempts).await;
    let created = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .count();
    let conflicts: Vec<_> = results
        .iter()
        .filter(|(s, _)| *s == StatusCode::CONFLICT)
        .collect();
    assert_eq!(created, 1, "{results:?}");
    assert_eq!(conflicts.len(), 49, "{results:?}");
    for (_, body) in &conflicts {
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("no longer available"), "{message}");
        assert!(
            !message.contains(&day(10)),
            "the 409 must not leak the other booking"
        );
    }
    assert_eq!(overlapping_holds(&app).await, 0);
    let holding: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM booking.reservations WHERE booking_status IN ('pending', 'confirmed')",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(holding, 1);
}

#[tokio::test]
async fn host_blocks_and_guest_bookings_racing_for_the_same_nights_have_one_winner() {
    let (app, host, home) = race_track().await;
    let guest = app.user("guest@race.test").await;
    let blocks = (0..10).map(|_| {
        let app = &app;
        let host = &host;
        async move {
            app.tool(
                Some(&host.token),
                "createListingCalendar",
                json!({ "listingId": home, "date": day(10), "endDate": day(13), "isAvailable": false }),
            )
            .await
            .0
        }
    });
    let bookings = (0..10).map(|_| {
        let app = &app;
        let guest = &guest;
        async move { book(app, guest, home, 11, 2).await.0 != StatusCode::CREATED }
    });
    let (block_errors, booking_errors) = futures::join!(join_all(blocks), join_all(bookings));
    let winners = block_errors.iter().filter(|e| !**e).count()
        + booking_errors.iter().filter(|e| !**e).count();
    assert_eq!(
        winners, 1,
        "blocks {block_errors:?} bookings {booking_errors:?}"
    );
    assert_eq!(overlapping_holds(&app).await, 0);
}

#[tokio::test]
async fn concurrent_mcp_bookings_get_one_success_and_clean_conflict_errors() {
    let (app, _host, home) = race_track().await;
    let guest = app.user("guest@race.test").await;
    let args =
        json!({ "listingId": home, "checkIn": day(30), "checkOut": day(33), "guestCount": 1 });
    let calls = (0..20).map(|_| app.tool(Some(&guest.token), "createReservation", args.clone()));
    let results = join_all(calls).await;
    assert_eq!(
        results.iter().filter(|(err, _)| !err).count(),
        1,
        "{results:?}"
    );
    for (_, text) in results.iter().filter(|(err, _)| *err) {
        assert!(
            text.as_str()
                .unwrap()
                .starts_with("Conflict: these dates are no longer available"),
            "{text}"
        );
    }
    assert_eq!(overlapping_holds(&app).await, 0);
}
