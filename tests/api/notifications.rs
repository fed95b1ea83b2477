//! Notifications over real HTTP against real Postgres: devices, the in-app list, mark-as-seen, the
//! unseen count, preferences, admin sends and deliveries (each refused for the wrong caller), and the
//! automatic notifications a booking's life writes for the right party, in their language, on
//! their `/events` stream, exactly once.

use std::time::Duration;

use futures::StreamExt;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::{act, booked, day, listing};
use crate::helpers::*;

const N: &str = "/notification-api/v1";

/// The caller's notifications (newest first) as (eventType, title, body).
async fn inbox(app: &TestApp, user: &TestUser) -> Vec<(String, String, String)> {
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("{N}/notifications?limit=100"),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["eventType"].as_str().unwrap().to_string(),
                n["title"].as_str().unwrap().to_string(),
                n["body"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn events_of(list: &[(String, String, String)]) -> Vec<&str> {
    list.iter().map(|(e, _, _)| e.as_str()).collect()
}

async fn pay(app: &TestApp, guest: &TestUser, id: Uuid, method: &str) -> (StatusCode, Value) {
    app.rest(
        Method::PATCH,
        &format!("/bookingmanagement-api/v1/startreservationpayment/{id}"),
        Some(&guest.token),
        Some(json!({ "paymentUserParams": { "paymentMethodId": method } })),
    )
    .await
}

#[tokio::test]
async fn a_bookings_life_notifies_the_right_party_in_their_language_once() {
    let app = TestApp::spawn().await;
    let host = app.user("host@notify.test").await;
    let guest = app.user("guest@notify.test").await;
    sqlx::query("UPDATE auth.users SET preferred_language = 'de-DE' WHERE id = $1")
        .bind(host.id)
        .execute(&app.db)
        .await
        .unwrap();
    let home = listing(
        &app,
        &host,
        json!({ "approvalType": "manual", "title": "Loft am Meer" }),
    )
    .await;

    // Requested → the host hears of it (in German), the guest does not.
    let id = booked(&app, &guest, home, 20, 3).await;
    let host_inbox = inbox(&app, &host).await;
    assert_eq!(events_of(&host_inbox), ["bookingRequested"]);
    assert_eq!(host_inbox[0].1, "Neue Buchungsanfrage für Loft am Meer");
    assert!(host_inbox[0].2.contains(&day(20)), "{host_inbox:?}");
    assert!(inbox(&app, &guest).await.is_empty());

    // A booking that fails (the same nights) writes no notification: same transaction.
    let other = app.user("other@notify.test").await;
    let (status, _) = crate::fixtures::book(&app, &other, home, 20, 3).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(inbox(&app, &host).await.len(), 1);

    // Approved → the guest (in English).
    let (s, b) = act(&app, &host, id, "approve", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let guest_inbox = inbox(&app, &guest).await;
    assert_eq!(events_of(&guest_inbox), ["bookingApproved"]);
    assert_eq!(
        guest_inbox[0].1,
        "Your request for Loft am Meer was approved"
    );

    // A declined card → the guest is told; then a good one → both are told it is paid.
    let (s, b) = pay(&app, &guest, id, "pm_card_chargeDeclined").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(events_of(&inbox(&app, &guest).await)[0], "paymentFailed");
    let (s, b) = pay(&app, &guest, id, "pm_card_visa").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(events_of(&inbox(&app, &guest).await)[0], "bookingPaid");
    assert_eq!(events_of(&inbox(&app, &host).await)[0], "bookingPaid");
    // A refresh that finds it paid again notifies nobody twice.
    let (s, _) = app
        .rest(
            Method::PATCH,
            &format!("/bookingmanagement-api/v1/refreshreservationpayment/{id}"),
            Some(&guest.token),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let paid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification.notifications WHERE event_type = 'bookingPaid'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(paid, 2);

    // The host cancels → the guest hears of it and of the full refund; the host (the actor) not.
    let (s, b) = act(&app, &host, id, "cancel", json!({ "reason": "pipe burst" })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let guest_events = inbox(&app, &guest).await;
    let kinds = events_of(&guest_events);
    assert!(
        kinds.contains(&"bookingCancelled") && kinds.contains(&"paymentRefunded"),
        "{kinds:?}"
    );
    let cancelled = guest_events
        .iter()
        .find(|(e, _, _)| e == "bookingCancelled")
        .unwrap();
    assert!(cancelled.2.contains("pipe burst"), "{cancelled:?}");
    assert!(!events_of(&inbox(&app, &host).await).contains(&"bookingCancelled"));

    // A declined request → the guest.
    let id2 = booked(&app, &guest, home, 40, 2).await;
    let (s, _) = act(
        &app,
        &host,
        id2,
        "decline",
        json!({ "reason": "closed that week" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(events_of(&inbox(&app, &guest).await)[0], "bookingDeclined");
}

#[tokio::test]
async fn expired_holds_disputes_and_check_in_reminders_notify_the_parties() {
    let app = TestApp::spawn().await;
    let host = app.user("host@remind.test").await;
    let guest = app.user("guest@remind.test").await;
    let home = listing(&app, &host, json!({})).await;

    // An unpaid hold past its deadline expires in the sweep: guest and host are told.
    let id = booked(&app, &guest, home, 10, 2).await;
    sqlx::query("UPDATE booking.reservations SET hold_expires_at = now() - interval '1 minute' WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    haven_tools::booking::lifecycle::sweep(&app.state.services)
        .await
        .unwrap();
    assert_eq!(events_of(&inbox(&app, &guest).await), ["bookingExpired"]);
    assert!(events_of(&inbox(&app, &host).await).contains(&"bookingExpired"));
    // ... and it is a domain event too (the system's own change).
    let kind: String = sqlx::query_scalar(
        "SELECT kind FROM events.domain_events WHERE object_id = $1 ORDER BY id DESC LIMIT 1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(kind, "expireReservation");

    // A confirmed stay starting tomorrow: one reminder to the guest, however often the scan runs.
    let id = booked(&app, &guest, home, 30, 2).await;
    let (s, _) = pay(&app, &guest, id, "pm_card_visa").await;
    assert_eq!(s, StatusCode::OK);
    sqlx::query("UPDATE booking.reservations SET check_in = current_date + 1, check_out = current_date + 3 WHERE id = $1")
        .bind(id)
        .execute(&app.db)
        .await
        .unwrap();
    let services = &app.state.services;
    let first = haven_tools::notification::reminders::remind_check_ins(services)
        .await
        .unwrap();
    let again = haven_tools::notification::reminders::remind_check_ins(services)
        .await
        .unwrap();
    assert_eq!((first, again), (1, 0));
    let reminders: Vec<String> = inbox(&app, &guest)
        .await
        .into_iter()
        .filter(|(e, _, _)| e == "checkInReminder")
        .map(|(_, t, _)| t)
        .collect();
    assert_eq!(
        reminders,
        ["Check-in tomorrow at Sea view loft".to_string()]
    );

    // The guest opens a dispute → the host is told, the guest not.
    let (s, b) = app
        .rest(
            Method::POST,
            "/bookingmanagement-api/v1/disputes",
            Some(&guest.token),
            Some(
                json!({ "reservationId": id, "issueType": "cleanliness", "description": "Dusty." }),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(events_of(&inbox(&app, &host).await)[0], "disputeOpened");
    assert!(!events_of(&inbox(&app, &guest).await).contains(&"disputeOpened"));
}

#[tokio::test]
async fn devices_are_the_owners_alone_and_bad_device_input_is_named() {
    let app = TestApp::spawn().await;
    let ana = app.user("ana@devices.test").await;
    let bob = app.user("bob@devices.test").await;
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{N}/devices/register"),
            Some(&ana.token),
            Some(json!({ "platform": "android", "pushToken": "tok-ana-1", "deviceName": "Ana's phone" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["device"]["userId"], json!(ana.id));
    let device = b["device"]["id"].as_str().unwrap().to_string();

    // Bob sees none of Ana's devices and cannot remove hers.
    let (s, b) = app
        .rest(Method::GET, &format!("{N}/devices"), Some(&bob.token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["devices"], json!([]));
    let (s, b) = app
        .rest(
            Method::DELETE,
            &format!("{N}/devices/unregister/{device}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "device");
    let (s, b) = app
        .rest(Method::GET, &format!("{N}/devices"), Some(&ana.token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["devices"].as_array().unwrap().len(), 1);

    // Bad input: unknown platform, an unknown field, a server-owned one; nothing written.
    for (body, field) in [
        (
            json!({ "platform": "symbian", "pushToken": "t" }),
            "platform",
        ),
        (
            json!({ "platform": "ios", "pushToken": "t", "colour": "red" }),
            "colour",
        ),
        (
            json!({ "platform": "ios", "pushToken": "t", "userId": bob.id }),
            "userId",
        ),
        (
            json!({ "platform": "ios", "pushToken": "t", "createdAt": "2020-01-01T00:00:00Z" }),
            "createdAt",
        ),
        (json!({ "platform": "ios", "pushToken": "" }), "pushToken"),
    ] {
        let (s, b) = app
            .rest(
                Method::POST,
                &format!("{N}/devices/register"),
                Some(&bob.token),
                Some(body),
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, field);
    }
    assert_eq!(app.count("notification.devices").await, 1);
    // Anonymous callers are refused.
    let (s, _) = app
        .rest(Method::GET, &format!("{N}/devices"), None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Ana removes her own.
    let (s, b) = app
        .rest(
            Method::DELETE,
            &format!("{N}/devices/unregister/{device}"),
            Some(&ana.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (_, b) = app
        .rest(Method::GET, &format!("{N}/devices"), Some(&ana.token), None)
        .await;
    assert_eq!(b["devices"], json!([]));
}

#[tokio::test]
async fn only_admins_send_and_see_deliveries_and_nobody_marks_anothers_notifications() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("admin@send.test", "admin").await;
    let ana = app.user("ana@send.test").await;
    let bob = app.user("bob@send.test").await;
    let message = json!({ "recipientIds": [ana.id, bob.id], "title": "Maintenance", "body": "Tonight 2-3 am." });

    // A user may not send, nor list deliveries; nothing is written.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{N}/notifications"),
            Some(&ana.token),
            Some(message.clone()),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
    assert_eq!(app.count("notification.notifications").await, 0);
    let (s, _) = app
        .rest(
            Method::GET,
            &format!("{N}/deliveries"),
            Some(&ana.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (is_error, _) = app
        .tool(Some(&ana.token), "sendNotification", message.clone())
        .await;
    assert!(is_error);

    // Bad admin input is named.
    for (body, field) in [
        (
            json!({ "recipientIds": [], "title": "t", "body": "b" }),
            "recipientIds",
        ),
        (
            json!({ "recipientIds": [ana.id], "title": "t", "body": "b", "channels": ["fax"] }),
            "channels",
        ),
        (
            json!({ "recipientIds": [ana.id], "title": "t", "body": "b", "sentBy": admin.id }),
            "sentBy",
        ),
    ] {
        let (s, b) = app
            .rest(
                Method::POST,
                &format!("{N}/notifications"),
                Some(&admin.token),
                Some(body),
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, field);
    }
    assert_eq!(app.count("notification.notifications").await, 0);

    // The admin sends; an unknown id is skipped, not an error.
    let ghost = Uuid::new_v4();
    let mut to_all = message.clone();
    to_all["recipientIds"] = json!([ana.id, bob.id, ghost]);
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{N}/notifications"),
            Some(&admin.token),
            Some(to_all),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["notification"]["recipientCount"], 2);
    assert_eq!(b["notification"]["skippedRecipientIds"], json!([ghost]));

    // Each sees their own: the list, the unseen count (REST and MCP).
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{N}/notifications"),
            Some(&ana.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["notifications"].as_array().unwrap().len(), 1);
    assert_eq!(b["unseenCount"], 1);
    assert_eq!(b["notifications"][0]["title"], "Maintenance");
    assert_eq!(b["notifications"][0]["sentBy"], json!(admin.id));
    let ana_note = b["notifications"][0]["id"].as_str().unwrap().to_string();
    let (is_error, out) = app
        .tool(Some(&bob.token), "getNotifications", json!({}))
        .await;
    assert!(!is_error, "{out}");
    let bob_note = out["notifications"][0]["id"].as_str().unwrap().to_string();
    assert_ne!(ana_note, bob_note);

    // Bob cannot mark Ana's notification seen (not even along with his own): nothing changes.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{N}/notifications/seen"),
            Some(&bob.token),
            Some(json!({ "notificationIds": [bob_note, ana_note] })),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::NOT_FOUND,
        "was not found among your notifications",
    );
    let (_, b) = app
        .rest(
            Method::GET,
            &format!("{N}/notifications/unseencount"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(b["unseenCount"], 1, "{b}");
    let (_, b) = app
        .rest(
            Method::GET,
            &format!("{N}/notifications/unseencount"),
            Some(&ana.token),
            None,
        )
        .await;
    assert_eq!(b["unseenCount"], 1, "{b}");
    // Server-owned fields are refused.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{N}/notifications/seen"),
            Some(&bob.token),
            Some(json!({ "notificationIds": [bob_note], "isSeen": true, "updatedAt": "2020-01-01T00:00:00Z" })),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "updatedAt");

    // His own: marked, count down, listed as seen.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{N}/notifications/seen"),
            Some(&bob.token),
            Some(json!({ "notificationIds": [bob_note] })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["notifications"]["unseenCount"], 0, "{b}");
    let (_, b) = app
        .rest(
            Method::GET,
            &format!("{N}/notifications?isSeen=true"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(b["notifications"][0]["isSeen"], true, "{b}");

    // Paging and sort inputs are checked.
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{N}/notifications?limit=1000"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "limit");
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{N}/notifications?sortBy=title"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "sortBy");

    // No external channel is configured here: no deliveries, and the admin's list says so.
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{N}/deliveries"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["deliveries"], json!([]));
}

#[tokio::test]
async fn preferences_are_ones_own_and_checked() {
    let app = TestApp::spawn().await;
    let ana = app.user("ana@prefs.test").await;
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{N}/preferences"),
            Some(&ana.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let events = b["preferences"]["events"].as_array().unwrap();
    assert!(events
        .iter()
        .all(|e| e["inApp"] == true && e["email"] == true));
    assert_eq!(b["preferences"]["configuredChannels"], json!([]));

    let (s, b) = app
        .rest(
            Method::PATCH,
            &format!("{N}/preferences"),
            Some(&ana.token),
            Some(json!({ "phoneNumber": "+351912345678", "events": [{ "eventType": "newMessage", "email": false, "sms": false }] })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["preferences"]["phoneNumber"], "+351912345678");
    let msg = b["preferences"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "newMessage")
        .unwrap()
        .clone();
    assert_eq!(
        (
            msg["email"].clone(),
            msg["sms"].clone(),
            msg["push"].clone()
        ),
        (json!(false), json!(false), json!(true))
    );

    for (body, field) in [
        (json!({ "phoneNumber": "12345" }), "phoneNumber"),
        (
            json!({ "events": [{ "eventType": "bookingParty", "email": false }] }),
            "eventType",
        ),
        (
            json!({ "events": [{ "eventType": "newMessage", "inApp": false }] }),
            "inApp",
        ),
        (json!({ "userId": Uuid::new_v4() }), "userId"),
    ] {
        let (s, b) = app
            .rest(
                Method::PATCH,
                &format!("{N}/preferences"),
                Some(&ana.token),
                Some(body),
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, field);
    }
    let (_, b) = app
        .rest(
            Method::GET,
            &format!("{N}/preferences"),
            Some(&ana.token),
            None,
        )
        .await;
    assert_eq!(b["preferences"]["phoneNumber"], "+351912345678");
}

#[tokio::test]
async fn notifications_reach_the_recipients_event_stream_and_nobody_elses() {
    let app = TestApp::spawn().await;
    let host = app.user("host@stream.test").await;
    let guest = app.user("guest@stream.test").await;
    let home = listing(&app, &host, json!({})).await;
    let open = |token: String| {
        let base = app.base.clone();
        async move {
            let resp = reqwest::Client::new()
                .get(format!("{base}/events?kinds=notification"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.bytes_stream()
        }
    };
    let mut host_stream = open(host.token.clone()).await;
    let mut guest_stream = open(guest.token.clone()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let id = booked(&app, &guest, home, 12, 2).await;

    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !text.contains("event: notification") && !text.contains("event:notification") {
        match tokio::time::timeout_at(deadline, host_stream.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(text.contains("notification"), "host stream: {text}");
    assert!(text.contains("bookingRequested"), "{text}");
    assert!(text.contains(&id.to_string()), "{text}");
    // The guest's stream (filtered to notifications) carries none of the host's.
    let mut other = String::new();
    if let Ok(Some(Ok(chunk))) =
        tokio::time::timeout(Duration::from_millis(800), guest_stream.next()).await
    {
        other.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!other.contains("bookingRequested"), "guest stream: {other}");
}

#[tokio::test]
async fn a_new_message_notifies_the_other_participant() {
    // Messaging lands on main from its own branch; this runs once `createMessage` exists.
    if haven::registry().get("createMessage").is_none() {
        eprintln!("createMessage is not in the registry yet: nothing to test");
        return;
    }
    let app = TestApp::spawn().await;
    let host = app.user("host@chat.test").await;
    let guest = app.user("guest@chat.test").await;
    let home = listing(&app, &host, json!({})).await;
    let (s, b) = app
        .rest(
            Method::POST,
            "/messaging-api/v1/messagethreads",
            Some(&guest.token),
            Some(json!({ "listingId": home })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let thread = b["messageThread"]["id"].as_str().unwrap().to_string();
    let (s, b) = app
        .rest(
            Method::POST,
            "/messaging-api/v1/messages",
            Some(&guest.token),
            Some(json!({ "threadId": thread, "content": "Is parking included?" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let host_inbox = inbox(&app, &host).await;
    let message = host_inbox
        .iter()
        .find(|(e, _, _)| e == "newMessage")
        .expect("the host is told");
    assert_eq!(message.1, "New message from Test User");
    assert_eq!(message.2, "Is parking included?");
    assert!(!events_of(&inbox(&app, &guest).await).contains(&"newMessage"));
}
