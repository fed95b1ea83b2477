//! `GET /events`: people watch the changes that concern them live over SSE, only those, across
//! replicas (LISTEN/NOTIFY), and resume with `Last-Event-ID`.

use std::time::Duration;

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::fixtures::{booked, listing};
use crate::helpers::*;

/// An open `/events` stream (also used by the messaging tests).
pub(crate) struct Events {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    buf: String,
}

impl Events {
    pub(crate) async fn open(base: &str, token: &str, last_event_id: Option<&str>) -> Events {
        let client = reqwest::Client::new();
        let mut req = client
            .get(format!("{base}/events"))
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"));
        Events {
            body: Box::pin(resp.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            buf: String::new(),
        }
    }

    /// The events (id, kind, data) that arrive within `wait`.
    pub(crate) async fn within(&mut self, wait: Duration) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            while let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut kind, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if !kind.is_empty() {
                    out.push((id, kind, serde_json::from_str(&data).unwrap_or(Value::Null)));
                }
            }
            match tokio::time::timeout_at(deadline, self.body.next()).await {
                Ok(Some(Ok(chunk))) => self.buf.push_str(&String::from_utf8_lossy(&chunk)),
                _ => return out,
            }
        }
    }
}

fn kinds(events: &[(String, String, Value)]) -> Vec<&str> {
    events.iter().map(|(_, k, _)| k.as_str()).collect()
}

#[tokio::test]
async fn guests_and_hosts_watch_their_own_changes_live_and_resume_after_a_drop() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let guest = app.user("guest@haven.test").await;
    let stranger = app.user("stranger@haven.test").await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;

    // Anonymous viewers are refused.
    let anon = app
        .http
        .get(format!("{}/events", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), StatusCode::UNAUTHORIZED);

    let mut host_events = Events::open(&app.base, &host.token, None).await;
    let mut guest_events = Events::open(&app.base, &guest.token, None).await;
    let mut stranger_events = Events::open(&app.base, &stranger.token, None).await;
    let mut admin_events = Events::open(&app.base, &admin.token, None).await;

    let listing_id = listing(&app, &host, json!({})).await;
    let reservation = booked(&app, &guest, listing_id, 40, 2).await;

    let seen_by_host = host_events.within(Duration::from_secs(3)).await;
    // The host also gets the booking request's notification; the guest does not.
    assert_eq!(
        kinds(&seen_by_host),
        ["createListing", "createReservation", "notification"],
        "{seen_by_host:?}"
    );
    assert_eq!(
        seen_by_host[2].2["payload"]["eventType"],
        "bookingRequested"
    );
    let (_, _, booking) = &seen_by_host[1];
    assert_eq!(booking["objectId"], reservation.to_string());
    assert_eq!(booking["payload"]["bookingStatus"], "pending");
    let seen_by_guest = guest_events.within(Duration::from_secs(1)).await;
    assert_eq!(
        kinds(&seen_by_guest),
        ["createReservation"],
        "the guest does not see the host's listing"
    );
    assert!(
        stranger_events
            .within(Duration::from_secs(1))
            .await
            .is_empty(),
        "strangers see nothing"
    );
    assert_eq!(
        kinds(&admin_events.within(Duration::from_secs(1)).await).len(),
        3,
        "admins see all"
    );

    // A dropped viewer resumes from its last id and gets exactly what it missed.
    let last = seen_by_guest[0].0.clone();
    drop(guest_events);
    let (status, body) = app
        .rest(
            reqwest::Method::POST,
            &format!("/bookingmanagement-api/v1/reservations/{reservation}/cancel"),
            Some(&guest.token),
            Some(json!({ "reason": "plans changed" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut resumed = Events::open(&app.base, &guest.token, Some(&last)).await;
    let missed = resumed.within(Duration::from_secs(2)).await;
    assert_eq!(kinds(&missed), ["cancelReservation"], "{missed:?}");
    assert_eq!(missed[0].2["payload"]["bookingStatus"], "cancelled");

    // A change made through another replica (its own router on the same database) arrives too.
    let (replica, stop) = app.spawn_replica().await;
    let resp = app
        .http
        .patch(format!(
            "{replica}/propertycatalog-api/v1/listings/{listing_id}"
        ))
        .bearer_auth(&host.token)
        .json(&json!({ "title": "Sea view loft, renovated" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let later = host_events.within(Duration::from_secs(3)).await;
    assert!(kinds(&later).contains(&"updateListing"), "{later:?}");
    stop.cancel();

    // Unknown kinds in the filter are refused, naming the field.
    let bad = app
        .http
        .get(format!("{}/events?kinds=noSuchOperation", app.base))
        .bearer_auth(&host.token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert!(bad.text().await.unwrap().contains("kinds"));
}

#[tokio::test]
async fn the_live_page_is_served_by_haven_itself_with_the_registry_s_event_types() {
    let app = TestApp::spawn().await;
    let page = app
        .http
        .get(format!("{}/live", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains("/live.js") && !html.contains("https://"),
        "no CDN: {html}"
    );
    let script = app
        .http
        .get(format!("{}/live.js", app.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(script.contains("\"createReservation\"") && !script.contains("\"listListings\""));
    assert!(script.contains("EventSource(\"/events"));
    // Conversations: the page lists threads, reads one and replies through the messaging routes.
    for route in ["/messagethreads", "/threadmessages/", "/messages"] {
        assert!(script.contains(route), "live.js uses {route}");
    }
    assert!(html.contains("id=\"reply\""), "a reply form");
}

/// Changes are announced after their commit, many ids per `NOTIFY` under load: 32 concurrent
/// changes (through two routers) reach a viewer exactly once each, every announced id is a
/// committed event, and a refused change announces nothing.
#[tokio::test]
async fn concurrent_changes_are_announced_after_commit_each_exactly_once() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let mut raw = sqlx::postgres::PgListener::connect_with(&app.db)
        .await
        .unwrap();
    raw.listen("haven_events").await.unwrap();
    let mut viewer = Events::open(&app.base, &admin.token, None).await;
    let (replica, stop) = app.spawn_replica().await;
    let listing_id = listing(&app, &host, json!({})).await;

    // A refused change (a price out of range) writes and announces nothing.
    let (status, body) = app
        .rest(
            reqwest::Method::PATCH,
            &format!("/propertycatalog-api/v1/listings/{listing_id}"),
            Some(&host.token),
            Some(json!({ "pricePerNight": -5 })),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

    let calls = (0..32).map(|i| {
        let base = if i % 2 == 0 {
            app.base.clone()
        } else {
            replica.clone()
        };
        let http = app.http.clone();
        let token = host.token.clone();
        async move {
            let resp = http
                .patch(format!(
                    "{base}/propertycatalog-api/v1/listings/{listing_id}"
                ))
                .bearer_auth(token)
                .json(&json!({ "title": format!("Sea view loft, take {i}") }))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
        }
    });
    futures::future::join_all(calls).await;

    // Under a loaded test machine delivery can lag: collect until all 33 arrived (or 20 s).
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 33 && tokio::time::Instant::now() < deadline {
        seen.extend(viewer.within(Duration::from_millis(500)).await);
    }
    seen.extend(viewer.within(Duration::from_millis(500)).await);
    let mut ids: Vec<i64> = seen.iter().map(|(id, _, _)| id.parse().unwrap()).collect();
    let mut kinds = kinds(&seen);
    kinds.sort();
    kinds.dedup();
    assert_eq!(kinds, ["createListing", "updateListing"], "{seen:?}");
    assert_eq!(ids.len(), 33, "the listing and its 32 updates: {seen:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 33, "each change arrives once: {seen:?}");

    // Everything announced is a committed event of this test, listed at most once.
    let mut announced = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while announced.len() < 33 {
        match tokio::time::timeout_at(deadline, raw.recv()).await {
            Ok(Ok(note)) => announced.extend(haven_tools::announce::event_ids(note.payload())),
            _ => break,
        }
    }
    // Nothing more (no duplicate) follows.
    while let Ok(Ok(note)) = tokio::time::timeout(Duration::from_millis(500), raw.recv()).await {
        announced.extend(haven_tools::announce::event_ids(note.payload()));
    }
    announced.sort();
    let unique = announced.len();
    announced.dedup();
    assert_eq!(unique, announced.len(), "no id announced twice");
    assert_eq!(
        announced, ids,
        "exactly the committed updates were announced"
    );
    stop.cancel();
}
