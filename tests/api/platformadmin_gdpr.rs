//! GDPR requests end to end: an export holding every kind of object made for the user, an
//! erasure after which no personal value of theirs is left in any text column of any table,
//! consent records, the refused side (others' requests, statuses), and a job resumed after a
//! crashed worker.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::*;
use crate::helpers::*;

const PA: &str = "/platformadmin-api/v1";
const NAME: &str = "Zelda Quixote-Marlowe";
const EMAIL: &str = "zelda.quixote@haven.test";
const PHONE: &str = "+351 912 345 678";
const MOBILE: &str = "+351936661234";
const PUSH_TOKEN: &str = "fcm-zelda-7c1f0e9a4b";

/// Waits (up to 20 s) until the request is no longer pending; returns it.
async fn settled(app: &TestApp, who: &TestUser, id: &str) -> Value {
    for _ in 0..80 {
        let (_, list) = app
            .tool(Some(&who.token), "listGdprActions", json!({}))
            .await;
        if let Some(found) = list["gdprActions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
        {
            if found["status"] != "pending" {
                return found.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("GDPR request {id} still pending");
}

/// Every text, varchar, json and jsonb column of every table (and text arrays), with the number
/// of rows whose value contains `needle` (case-insensitive).
async fn occurrences(app: &TestApp, needle: &str) -> (usize, Vec<String>) {
    let columns: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT c.table_schema::text, c.table_name::text, c.column_name::text
         FROM information_schema.columns c
         JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE t.table_type = 'BASE TABLE'
           AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
           AND (c.data_type IN ('text', 'character varying', 'character', 'json', 'jsonb')
                OR (c.data_type = 'ARRAY' AND c.udt_name IN ('_text', '_varchar')))
         ORDER BY 1, 2, 3",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    let mut found = Vec::new();
    for (schema, table, column) in &columns {
        let n: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM \"{schema}\".\"{table}\" WHERE \"{column}\"::text ILIKE $1"
        ))
        .bind(format!("%{needle}%"))
        .fetch_one(&app.db)
        .await
        .unwrap();
        if n > 0 {
            found.push(format!("{schema}.{table}.{column}: {n}"));
        }
    }
    (columns.len(), found)
}

#[tokio::test]
async fn export_holds_everything_and_erasure_leaves_nothing_personal() {
    let (fake, base) = crate::scripted_llm::fake_provider(vec![]).await;
    let mut config = test_config();
    config.llm_base_url = Some(base);
    let app = TestApp::spawn_with(config).await;
    let admin = app.user_with_role("g-admin@haven.test", "admin").await;
    let other = app.user("g-other@haven.test").await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/registeruser",
            None,
            Some(
                json!({ "email": EMAIL, "password": "password123", "fullname": NAME,
                          "bio": format!("Call me on {PHONE}") }),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let me = TestUser {
        id: Uuid::parse_str(body["user"]["id"].as_str().unwrap()).unwrap(),
        email: EMAIL.into(),
        token: app.login(EMAIL, "password123").await,
    };

    let (is_error, profile) = app
        .tool(
            Some(&me.token),
            "updateProfile",
            json!({ "userId": me.id, "mobile": MOBILE }),
        )
        .await;
    assert!(!is_error, "{profile}");

    // Everything a user makes: a group membership, an API key, a listing with a text and a
    // calendar entry, a stay booked and paid with a note, a dispute, reviews both ways, an agent
    // run, a consent.
    let (_, group) = app
        .tool(
            Some(&admin.token),
            "createUserGroup",
            json!({ "groupName": "Superhosts" }),
        )
        .await;
    let (is_error, m) = app
        .tool(
            Some(&admin.token),
            "createUserGroupMember",
            json!({ "groupId": group["id"], "userId": me.id }),
        )
        .await;
    assert!(!is_error, "{m}");
    let (_, key) = app
        .tool(
            Some(&me.token),
            "createApiKey",
            json!({ "description": "laptop" }),
        )
        .await;
    let key_secret = key["key"].as_str().unwrap().to_string();
    let mine = listing(&app, &me, json!({ "title": "Zelda's attic" })).await;
    let (is_error, t) = app
        .tool(
            Some(&me.token),
            "createListingLocaleText",
            json!({ "listingId": mine, "languageCode": "pt", "localizedTitle": "Sótão",
                    "localizedDescription": "Claro." }),
        )
        .await;
    assert!(!is_error, "{t}");
    let (is_error, c) = app
        .tool(
            Some(&me.token),
            "createListingCalendar",
            json!({ "listingId": mine, "date": day(40), "isAvailable": false }),
        )
        .await;
    assert!(!is_error, "{c}");
    let theirs = listing(&app, &other, json!({})).await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/bookingmanagement-api/v1/reservations",
            Some(&me.token),
            Some(json!({ "listingId": theirs, "checkIn": day(10), "checkOut": day(13), "guestCount": 1,
                          "guestNote": format!("{NAME} arriving late, {PHONE}") })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let stay = Uuid::parse_str(body["reservation"]["id"].as_str().unwrap()).unwrap();
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/bookingmanagement-api/v1/startreservationpayment/{stay}"),
            Some(&me.token),
            Some(json!({ "paymentUserParams": { "paymentMethodId": "pm_card_visa" } })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (is_error, d) = app
        .tool(
            Some(&me.token),
            "createDispute",
            json!({ "reservationId": stay, "issueType": "noise",
                    "description": format!("Loud. Reach me at {PHONE} or {EMAIL}.") }),
        )
        .await;
    assert!(!is_error, "{d}");
    // A conversation with the host about the stay (the user's own message quotes their phone,
    // the host's reply their name), and a phone registered for push.
    let (is_error, thread) = app
        .tool(
            Some(&me.token),
            "createMessageThread",
            json!({ "reservationId": stay }),
        )
        .await;
    assert!(!is_error, "{thread}");
    for (who, content) in [
        (
            &me,
            format!("Hi, it's {NAME}. Call me on {PHONE} when you can."),
        ),
        (&other, format!("Sure {NAME}, see you soon.")),
    ] {
        let (is_error, m) = app
            .tool(
                Some(&who.token),
                "createMessage",
                json!({ "threadId": thread["id"], "content": content }),
            )
            .await;
        assert!(!is_error, "{m}");
    }
    let (is_error, device) = app
        .tool(
            Some(&me.token),
            "registerDevice",
            json!({ "platform": "android", "pushToken": PUSH_TOKEN, "deviceName": format!("{NAME}'s phone") }),
        )
        .await;
    assert!(!is_error, "{device}");
    let guest_of_mine = app.user("g-guest@haven.test").await;
    let (_, past) = seed_stay(&app, other.id, me.id, "complete").await;
    let (is_error, r) = app
        .tool(
            Some(&me.token),
            "createReview",
            json!({ "reservationId": past, "revieweeType": "host", "revieweeId": other.id,
                    "rating": 5, "reviewText": "Lovely host." }),
        )
        .await;
    assert!(!is_error, "{r}");
    let (is_error, r) = app
        .tool(
            Some(&other.token),
            "createReview",
            json!({ "reservationId": past, "revieweeType": "guest", "revieweeId": me.id,
                    "rating": 4, "reviewText": "Tidy guest." }),
        )
        .await;
    assert!(!is_error, "{r}");
    let hosted = booked(&app, &guest_of_mine, mine, 5, 2).await;
    fake.push([
        crate::scripted_llm::tool_turn(
            "call_1",
            "listListings",
            json!({ "pageRowCount": 5 }),
            (50, 10),
        ),
        crate::scripted_llm::text_turn(&format!("Hello {NAME}, here are flats."), (50, 10)),
    ]);
    let (s, run) = app
        .rest(
            Method::POST,
            "/agenthub-api/v1/agents/guest-booking-assistant/run",
            Some(&me.token),
            Some(json!({ "input": format!("I am {NAME} ({PHONE}), find me a flat") })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "success", "{run}");
    let (is_error, consent) = app
        .tool(
            Some(&me.token),
            "createGdprAction",
            json!({ "actionType": "consent", "consent": { "purpose": "marketingEmails", "granted": true } }),
        )
        .await;
    assert!(!is_error, "{consent}");
    assert_eq!(
        settled(&app, &me, consent["id"].as_str().unwrap()).await["status"],
        "complete"
    );
    assert_eq!(app.count("platformadmin.consents").await, 1);

    // Refused: filing for someone else, consent without its details, statuses by non-admins,
    // `complete` by hand — nothing written.
    let before = app.count("platformadmin.gdpr_actions").await;
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{PA}/gdpractions"),
            Some(&other.token),
            Some(json!({ "actionType": "delete", "userId": me.id })),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "only for yourself");
    let (is_error, text) = app
        .tool(
            Some(&me.token),
            "createGdprAction",
            json!({ "actionType": "consent" }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("`consent`"),
        "{text}"
    );
    let (is_error, text) = app
        .tool(
            Some(&me.token),
            "createGdprAction",
            json!({ "actionType": "export", "processedAt": "2027-01-01T00:00:00Z" }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("processedAt"),
        "{text}"
    );
    let consent_id = consent["id"].as_str().unwrap();
    for who in [&me, &other] {
        let (s, b) = app
            .rest(
                Method::PATCH,
                &format!("{PA}/gdpractions/{consent_id}"),
                Some(&who.token),
                Some(json!({ "status": "failed" })),
            )
            .await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
    }
    let (s, b) = app
        .rest(
            Method::PATCH,
            &format!("{PA}/gdpractions/{consent_id}"),
            Some(&admin.token),
            Some(json!({ "status": "pending" })),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "complete");
    assert_eq!(app.count("platformadmin.gdpr_actions").await, before);
    let (_, others) = app
        .tool(Some(&other.token), "listGdprActions", json!({}))
        .await;
    assert_eq!(
        others["gdprActions"],
        json!([]),
        "a user sees only their own requests"
    );
    let err = sqlx::query("DELETE FROM platformadmin.gdpr_actions")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");

    // The export: one JSON document with every kind of object, downloadable by the user only.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{PA}/gdpractions"),
            Some(&me.token),
            Some(json!({ "actionType": "export" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["gdprAction"]["status"], "pending");
    let export_id = b["gdprAction"]["id"].as_str().unwrap().to_string();
    let done = settled(&app, &me, &export_id).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["exportReady"], true);
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{PA}/gdpractions/{export_id}/export"),
            Some(&other.token),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not found");
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{PA}/gdpractions/{export_id}/export"),
            Some(&me.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let data = &b["gdprExport"]["document"]["data"];
    let nonempty = |path: &[&str]| {
        let mut v = data;
        for p in path {
            v = &v[*p];
        }
        assert!(
            v.as_array().is_some_and(|a| !a.is_empty()) || v.is_object(),
            "export lacks {path:?}: {v}"
        );
        v.clone()
    };
    assert_eq!(data["profile"]["email"], EMAIL);
    assert_eq!(data["profile"]["fullname"], NAME);
    assert_eq!(data["profile"]["mobile"], MOBILE);
    assert!(data["profile"].get("password_hash").is_none());
    nonempty(&["groups"]);
    let keys = nonempty(&["credentials", "apiKeys"]);
    assert!(!keys.to_string().contains(&key_secret) && !keys.to_string().contains("key_hash"));
    nonempty(&["credentials", "sessions"]);
    let listings = nonempty(&["listings"]);
    assert!(listings[0]["localeTexts"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    assert!(listings[0]["calendar"]
        .as_array()
        .is_some_and(|a| !a.is_empty()));
    let reservations = nonempty(&["reservations"]);
    let as_guest = reservations
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == stay.to_string())
        .expect("the stay booked");
    assert!(as_guest["timeline"]
        .as_array()
        .is_some_and(|t| t.len() >= 2));
    assert!(reservations
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == hosted.to_string() && r["role"] == "host"));
    nonempty(&["payments", "ledger"]);
    nonempty(&["payments", "tickets"]);
    nonempty(&["disputes"]);
    nonempty(&["reviews", "written"]);
    nonempty(&["reviews", "received"]);
    let runs = nonempty(&["agentRuns"]);
    assert!(
        runs[0]["toolCalls"]
            .as_array()
            .is_some_and(|c| !c.is_empty()),
        "{runs}"
    );
    let threads = nonempty(&["messaging", "threads"]);
    assert_eq!(
        threads[0]["messages"].as_array().map(Vec::len),
        Some(2),
        "{threads}"
    );
    assert!(
        threads.to_string().contains(PHONE),
        "the user's own message: {threads}"
    );
    nonempty(&["notifications", "notifications"]);
    let devices = nonempty(&["notifications", "devices"]);
    assert!(
        !devices.to_string().contains(PUSH_TOKEN),
        "a device's push token is a credential: {devices}"
    );
    nonempty(&["gdpr", "consents"]);
    nonempty(&["gdpr", "requests"]);
    nonempty(&["auditTrail"]);

    // Before the erasure the values are there to find (so the search below proves something).
    for needle in [EMAIL, NAME, PHONE, MOBILE, PUSH_TOKEN] {
        let (_, found) = occurrences(&app, needle).await;
        assert!(
            !found.is_empty(),
            "{needle} should be stored before erasure"
        );
    }

    // The erasure.
    let ledger = app.count("booking.payment_records").await;
    let audit = app.count("platformadmin.audit_logs").await;
    let (is_error, erase) = app
        .tool(
            Some(&me.token),
            "createGdprAction",
            json!({ "actionType": "delete" }),
        )
        .await;
    assert!(!is_error, "{erase}");
    let done = settled(&app, &admin, erase["id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "complete", "{done}");

    // Every credential is revoked.
    for credential in [&me.token, &key_secret] {
        let (s, _) = app
            .rest(Method::GET, "/currentuser", Some(credential), None)
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // What the law keeps is kept; counterparts see a deleted user.
    assert_eq!(app.count("booking.payment_records").await, ledger);
    assert!(app.count("platformadmin.audit_logs").await >= audit);
    let (_, r) = app
        .tool(
            Some(&other.token),
            "getReservation",
            json!({ "reservationId": stay }),
        )
        .await;
    assert_eq!(r["guestId"], me.id.to_string());
    let (is_error, brief) = app
        .tool(
            Some(&other.token),
            "getBriefUser",
            json!({ "userId": me.id }),
        )
        .await;
    assert!(!is_error, "{brief}");
    assert_eq!(brief["fullname"], "Deleted user");
    assert_eq!(brief["isActive"], false);

    // No personal value is left in any text column of any table.
    let mut total = 0;
    for needle in [
        EMAIL,
        NAME,
        PHONE,
        "912 345 678",
        MOBILE,
        "936661234",
        PUSH_TOKEN,
    ] {
        let (columns, found) = occurrences(&app, needle).await;
        println!(
            "erasure check: {columns} columns searched for {needle:?}: {} found {found:?}",
            found.len()
        );
        total += found.len();
    }
    assert_eq!(total, 0, "personal values left after erasure");

    // The email is free again.
    let (s, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/registeruser",
            None,
            Some(json!({ "email": EMAIL, "password": "password123", "fullname": "Someone New" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn a_crashed_erasure_resumes_where_it_stopped_and_admins_stop_or_requeue_requests() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("c-admin@haven.test", "admin").await;
    let subject = app.user("c-subject@haven.test").await;

    // A worker died after the first three steps (credentials, groups, avatar files) of an
    // erasure: its job still holds a lease that has run out.
    let action: Uuid = sqlx::query_scalar(
        "INSERT INTO platformadmin.gdpr_actions (user_id, action_type, requested_by, owner_id)
         VALUES ($1, 'delete', $1, $1) RETURNING id",
    )
    .bind(subject.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO platformadmin.gdpr_jobs (gdpr_action_id, step, attempts, locked_until)
         VALUES ($1, 3, 1, now() - interval '1 second')",
    )
    .bind(action)
    .execute(&app.db)
    .await
    .unwrap();
    let done = settled(&app, &admin, &action.to_string()).await;
    assert_eq!(done["status"], "complete", "{done}");
    let (email, erased, open_sessions): (String, bool, i64) = sqlx::query_as(
        "SELECT email, erased_at IS NOT NULL,
            (SELECT count(*) FROM auth.sessions s WHERE s.user_id = u.id AND s.revoked_at IS NULL)
         FROM auth.users u WHERE id = $1",
    )
    .bind(subject.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert!(erased && email.starts_with("deleted-"), "{email}");
    assert_eq!(
        open_sessions, 1,
        "step 0 (credentials) had run before the crash: not run again"
    );
    let (step, state): (i32, String) =
        sqlx::query_as("SELECT step, state FROM platformadmin.gdpr_jobs WHERE gdpr_action_id = $1")
            .bind(action)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(state, "done");
    assert!(step > 3);

    // A job whose lease is held by a live worker is left alone; an admin stops the request, then
    // queues it again, and a worker finishes it.
    let other = app.user("c-other@haven.test").await;
    let export: Uuid = sqlx::query_scalar(
        "INSERT INTO platformadmin.gdpr_actions (user_id, action_type, requested_by, owner_id)
         VALUES ($1, 'export', $1, $1) RETURNING id",
    )
    .bind(other.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO platformadmin.gdpr_jobs (gdpr_action_id, attempts, locked_until)
         VALUES ($1, 1, now() + interval '1 hour')",
    )
    .bind(export)
    .execute(&app.db)
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (is_error, stopped) = app
        .tool(
            Some(&admin.token),
            "updateGdprAction",
            json!({ "gdprActionId": export, "status": "failed" }),
        )
        .await;
    assert!(!is_error, "{stopped}");
    assert_eq!(stopped["status"], "failed");
    assert_eq!(stopped["status_idx"], 2);
    assert!(stopped["processedAt"].is_string());
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{PA}/gdpractions/{export}/export"),
            Some(&other.token),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "not ready");
    let (is_error, again) = app
        .tool(
            Some(&admin.token),
            "updateGdprAction",
            json!({ "gdprActionId": export, "status": "pending" }),
        )
        .await;
    assert!(!is_error, "{again}");
    let done = settled(&app, &other, &export.to_string()).await;
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["exportReady"], true);
}
