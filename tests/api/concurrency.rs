//! No double booking, ever: concurrent requests for overlapping nights race on the exclusion
//! constraint, exactly one wins, every loser gets a clean 409, and no two holds share a night.

use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::fixtures::{book, day, listing, overlapping_holds};
use crate::helpers::TestApp;

#[tokio::test]
async fn fifty_concurrent_bookings_of_overlapping_dates_have_one_winner() {
    let mut config = crate::helpers::test_config();
    config.db_max_connections = 20;
    let app = TestApp::spawn_with(config).await;
    let host = app.user("host@race.test").await;
    let home = listing(&app, &host, json!({})).await;
    let mut guests = Vec::new();
    for i in 0..5 {
        guests.push(app.user(&format!("guest{i}@race.test")).await);
    }
    // 50 requests, all overlapping nights 10..14 of the same listing, with varied ranges.
    let attempts = (0..50).map(|i| {
        let guest = &guests[i % guests.len()];
        let from = 10 + (i as i64 % 3);
        let app = &app;
        async move { book(app, guest, home, from, 2).await }
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
    let mut config = crate::helpers::test_config();
    config.db_max_connections = 20;
    let app = TestApp::spawn_with(config).await;
    let host = app.user("host@race.test").await;
    let guest = app.user("guest@race.test").await;
    let home = listing(&app, &host, json!({})).await;
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
