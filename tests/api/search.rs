//! The BFF read side over real HTTP: every index and view sees exactly what its owning `get`
//! allows, for anonymous callers, two users and an admin, whatever filters and `q` they craft;
//! the filter syntax, sorting, counting, schemas and saved filters; the refusals.

use std::collections::BTreeSet;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, seed_stay, TestApp, TestUser};

/// Every index and the owning get route its visibility must equal (`{}` is the id).
const OWNERS: &[(&str, &str)] = &[
    ("listing", "/propertycatalog-api/v1/listings/{}"),
    (
        "listingAmenity",
        "/propertycatalog-api/v1/listingamenities/{}",
    ),
    (
        "listingLocaleText",
        "/propertycatalog-api/v1/listinglocaletexts/{}",
    ),
    (
        "listingCalendar",
        "/propertycatalog-api/v1/listingcalendars/{}",
    ),
    ("reservation", "/bookingmanagement-api/v1/reservations/{}"),
    (
        "paymentRecord",
        "/bookingmanagement-api/v1/paymentrecords/{}",
    ),
    ("dispute", "/bookingmanagement-api/v1/disputes/{}"),
    ("review", "/reviewsystem-api/v1/reviews/{}"),
    (
        "reviewAggregate",
        "/reviewsystem-api/v1/reviewaggregates/{}",
    ),
    ("user", "/auth-api/v1/briefuser/{}"),
    (
        "BookingListView",
        "/bookingmanagement-api/v1/reservations/{}",
    ),
    ("ReviewDisplayView", "/reviewsystem-api/v1/reviews/{}"),
    (
        "PaymentRecordView",
        "/bookingmanagement-api/v1/paymentrecords/{}",
    ),
    ("disputeDetailView", "/bookingmanagement-api/v1/disputes/{}"),
    (
        "ReservationDetailView",
        "/bookingmanagement-api/v1/reservations/{}",
    ),
    ("ListingDetailView", "/propertycatalog-api/v1/listings/{}"),
    ("messageThread", "/messaging-api/v1/messagethreads/{}"),
    ("message", "/messaging-api/v1/messages/{}"),
    ("MessageThreadView", "/messaging-api/v1/messagethreads/{}"),
    ("chatContext", "/messaging-api/v1/messagethreads/{}"),
    ("messageReport", "/messaging-api/v1/messagereports/{}"),
];

struct World {
    app: TestApp,
    alice: TestUser,
    bob: TestUser,
    carol: TestUser,
    admin: TestUser,
    alice_draft: Uuid,
    alice_stay: Uuid,
    bob_stay: Uuid,
    /// Bob (guest) and Alice (host) about Alice's stay: messages `door`, `code`, `moderated`
    /// (hidden by an admin) and `deleted` (by its sender), in that order.
    alice_thread: Uuid,
    /// The messages of `alice_thread`, in order.
    alice_messages: [Uuid; 4],
    /// Carol asking Bob about his harbour house (an inquiry): Carol's question, Bob's answer.
    carol_thread: Uuid,
}

/// A REST call that must succeed; returns the `dataName` payload.
async fn ok(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &TestUser,
    body: Value,
    key: &str,
) -> Value {
    let (status, out) = app.rest(method, path, Some(&user.token), Some(body)).await;
    assert!(status.is_success(), "{path}: {status} {out}");
    out[key].clone()
}

fn uuid_of(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}"))).unwrap()
}

/// Posts `content` in `thread` as `user`; returns the message's id.
async fn say(app: &TestApp, user: &TestUser, thread: Uuid, content: &str) -> Uuid {
    let message = ok(
        app,
        Method::POST,
        "/messaging-api/v1/messages",
        user,
        json!({"threadId": thread, "content": content}),
        "message",
    )
    .await;
    uuid_of(&message)
}

async fn exec(app: &TestApp, sql: &str, ids: &[Uuid]) -> Uuid {
    let mut q = sqlx::query_scalar::<_, Uuid>(sql);
    for id in ids {
        q = q.bind(*id);
    }
    q.fetch_one(&app.db).await.unwrap()
}

/// Alice hosts (a published listing with a stay by Bob, and a draft); Bob hosts a listing Alice
/// stayed at; each stay has payments, a dispute, reviews (published and not), aggregates (public
/// and hidden), texts and calendar entries.
async fn world() -> World {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@search.test").await;
    let bob = app.user("bob@search.test").await;
    let admin = app.user_with_role("admin@search.test", "admin").await;
    let carol = app.user("carol@search.test").await;
    for (user, name) in [
        (&alice, "Alice Ample"),
        (&bob, "Bob Bright"),
        (&carol, "Carol Clay"),
    ] {
        sqlx::query("UPDATE auth.users SET fullname = $2 WHERE id = $1")
            .bind(user.id)
            .bind(name)
            .execute(&app.db)
            .await
            .unwrap();
    }
    let (alice_listing, alice_stay) = seed_stay(&app, alice.id, bob.id, "complete").await;
    let (bob_listing, bob_stay) = seed_stay(&app, bob.id, alice.id, "confirmed").await;
    sqlx::query(
        "UPDATE catalog.listings SET title = 'Alice riverside loft', city = 'Lisbon' WHERE id = $1",
    )
    .bind(alice_listing)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "UPDATE catalog.listings SET title = 'Bob harbour house', city = 'Porto' WHERE id = $1",
    )
    .bind(bob_listing)
    .execute(&app.db)
    .await
    .unwrap();
    let alice_draft = exec(&app, "INSERT INTO catalog.listings (host_id, title, description, address, city,
            property_type, approval_type, price_per_night, currency, is_published, owner_id)
         VALUES ($1, 'Alice secret draft', 'hidden', '2 Draft Road', 'Lisbon', 'villa', 'manual', 50000,
            'EUR', false, $1) RETURNING id", &[alice.id]).await;
    exec(
        &app,
        "INSERT INTO catalog.amenities (name) VALUES ('Wifi') RETURNING id",
        &[],
    )
    .await;
    exec(
        &app,
        "INSERT INTO catalog.amenities (name) VALUES ('Pool') RETURNING id",
        &[],
    )
    .await;
    for listing in [alice_listing, alice_draft, bob_listing] {
        exec(
            &app,
            "INSERT INTO catalog.listing_locale_texts (listing_id, language_code, localized_title,
                localized_description) VALUES ($1, 'pt', 'Casa secreta', 'texto') RETURNING id",
            &[listing],
        )
        .await;
        exec(&app, "INSERT INTO catalog.listing_calendars (listing_id, date, end_date, is_available, price_override)
                VALUES ($1, current_date + 40, current_date + 42, false, NULL) RETURNING id", &[listing]).await;
    }
    for (stay, guest, host) in [(alice_stay, bob.id, alice.id), (bob_stay, alice.id, bob.id)] {
        let payment = exec(&app, "INSERT INTO booking.payment_records (reservation_id, payment_intent_id, currency,
                amount_paid, payment_status, owner_id) VALUES ($1, 'pi_secret_' || $1::text, 'EUR', 30000, 'paid', $2)
                RETURNING id", &[stay, guest]).await;
        exec(&app, "INSERT INTO booking.disputes (reservation_id, raised_by, issue_type, description,
                related_payment_id, owner_id) VALUES ($1, $2, 'damage', 'secret broken window', $3, $2) RETURNING id",
            &[stay, host, payment]).await;
        exec(
            &app,
            "INSERT INTO booking.reservation_activities (reservation_id, kind, actor_id, note)
                VALUES ($1, 'dispute_opened', $2, 'opened') RETURNING id",
            &[stay, host],
        )
        .await;
        // The guest's review is published; the host's is still blind.
        exec(&app, "INSERT INTO reviews.reviews (reservation_id, reviewer_id, reviewee_id, reviewee_type, rating,
                review_text, moderation_status, is_published, blind_submission_code, owner_id)
                VALUES ($1, $2, $3, 'host', 5, 'Lovely secret host', 'approved', true, 'blind-' || $1::text, $2)
                RETURNING id", &[stay, guest, host]).await;
        exec(&app, "INSERT INTO reviews.reviews (reservation_id, reviewer_id, reviewee_id, reviewee_type, rating,
                review_text, moderation_status, is_published, blind_submission_code, owner_id)
                VALUES ($1, $2, $3, 'guest', 2, 'Unpublished secret guest', 'approved', false, 'blind2-' || $1::text, $2)
                RETURNING id", &[stay, host, guest]).await;
    }
    exec(&app, "INSERT INTO reviews.review_aggregates (reviewee_id, reviewee_type, average_rating, review_count)
            VALUES ($1, 'host', 5, 1) RETURNING id", &[alice.id]).await;
    exec(&app, "INSERT INTO reviews.review_aggregates (reviewee_id, reviewee_type, average_rating, review_count,
            visibility_status) VALUES ($1, 'host', 5, 1, 'hidden') RETURNING id", &[bob.id]).await;
    let threads = "/messaging-api/v1/messagethreads";
    let alice_thread = uuid_of(
        &ok(
            &app,
            Method::POST,
            threads,
            &bob,
            json!({"reservationId": alice_stay}),
            "messageThread",
        )
        .await,
    );
    let door = say(&app, &bob, alice_thread, "Is there a secret door code?").await;
    let code = say(&app, &alice, alice_thread, "The secret code is 1234").await;
    let moderated = say(&app, &bob, alice_thread, "Secret moderated insult").await;
    let deleted = say(&app, &alice, alice_thread, "Secret deleted note").await;
    ok(
        &app,
        Method::PATCH,
        &format!("/messaging-api/v1/messages/{moderated}"),
        &admin,
        json!({"isModerated": true}),
        "message",
    )
    .await;
    let (status, out) = app
        .rest(
            Method::DELETE,
            &format!("/messaging-api/v1/messages/{deleted}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{out}");
    let carol_thread = uuid_of(
        &ok(
            &app,
            Method::POST,
            threads,
            &carol,
            json!({"listingId": bob_listing}),
            "messageThread",
        )
        .await,
    );
    let question = say(
        &app,
        &carol,
        carol_thread,
        "Is the harbour house secret garden open?",
    )
    .await;
    say(
        &app,
        &bob,
        carol_thread,
        "Yes Carol, the secret garden is open",
    )
    .await;
    // Alice reports Bob's question, Bob reports Carol's: reporter and sender see a report.
    for (reporter, message) in [(&alice, door), (&bob, question)] {
        ok(
            &app,
            Method::POST,
            "/messaging-api/v1/messagereports",
            reporter,
            json!({"messageId": message, "reportReason": "secret spam"}),
            "messageReport",
        )
        .await;
    }
    World {
        app,
        alice,
        bob,
        carol,
        admin,
        alice_draft,
        alice_stay,
        bob_stay,
        alice_thread,
        alice_messages: [door, code, moderated, deleted],
        carol_thread,
    }
}

fn ids(body: &Value) -> BTreeSet<String> {
    body["records"]
        .as_array()
        .unwrap_or_else(|| panic!("no records in {body}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

async fn search(
    app: &TestApp,
    token: Option<&str>,
    index: &str,
    body: Value,
) -> (StatusCode, Value) {
    app.rest(
        Method::POST,
        &format!("/bff-api/v1/{index}/list?limit=100"),
        token,
        Some(body),
    )
    .await
}

#[tokio::test]
async fn every_index_and_view_shows_each_caller_exactly_what_the_owning_get_allows() {
    let w = world().await;
    let app = &w.app;
    // Every index the server declares is covered here.
    let (_, schema) = app.rest(Method::GET, "/openapi.json", None, None).await;
    let declared: BTreeSet<String> = schema["paths"]["/bff-api/v1/{indexName}/list"]["post"]
        ["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "indexName")
        .unwrap()["schema"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let covered: BTreeSet<String> = OWNERS.iter().map(|(i, _)| i.to_string()).collect();
    assert_eq!(
        declared, covered,
        "every index needs its owning get in OWNERS"
    );

    let callers: Vec<(&str, Option<&str>)> = vec![
        ("anonymous", None),
        ("alice", Some(w.alice.token.as_str())),
        ("bob", Some(w.bob.token.as_str())),
        ("carol", Some(w.carol.token.as_str())),
        ("admin", Some(w.admin.token.as_str())),
    ];
    for (index, owner) in OWNERS {
        // Admins see everything the index holds: the universe to check against.
        let (status, all) = search(app, Some(&w.admin.token), index, json!({})).await;
        assert_eq!(status, StatusCode::OK, "{index}: {all}");
        let universe = ids(&all);
        assert!(
            universe.len() >= 2,
            "{index} needs rows of both users: {all}"
        );
        for (who, token) in &callers {
            let mut expected = BTreeSet::new();
            for id in &universe {
                let (status, _) = app
                    .rest(Method::GET, &owner.replace("{}", id), *token, None)
                    .await;
                if status == StatusCode::OK {
                    expected.insert(id.clone());
                }
            }
            // Plain, crafted id filter, crafted free text (words of the other user's rows).
            let everything: Vec<&String> = universe.iter().collect();
            // An index whose owning get needs a login refuses anonymous callers the same way.
            let (status, _) = search(app, *token, index, json!({})).await;
            if status == StatusCode::UNAUTHORIZED {
                assert!(
                    token.is_none() && expected.is_empty(),
                    "{index} refused {who}"
                );
                continue;
            }
            for body in [
                json!({}),
                json!({"filters": {"id": everything}}),
                json!({"filters": {"id": {"$in": everything}}}),
            ] {
                let (status, page) = search(app, *token, index, body.clone()).await;
                assert_eq!(status, StatusCode::OK, "{index} {who} {body}: {page}");
                assert_eq!(ids(&page), expected, "{index} as {who} with {body}");
                assert_eq!(
                    page["paging"]["totalRowCount"],
                    expected.len(),
                    "{index} {who}"
                );
            }
            for q in [
                "secret",
                "Alice",
                "Bob",
                "Carol",
                "Lisbon",
                "harbour",
                "moderated",
                "deleted",
            ] {
                let (_, page) = search(app, *token, index, json!({"q": q})).await;
                let found = ids(&page);
                assert!(
                    found.is_subset(&expected),
                    "{index} as {who}, q={q}: {found:?} ⊄ {expected:?}"
                );
            }
            let (_, count) = app
                .rest(
                    Method::GET,
                    &format!("/bff-api/v1/{index}/count"),
                    *token,
                    None,
                )
                .await;
            assert_eq!(
                count["count"],
                expected.len(),
                "{index} count as {who}: {count}"
            );
            for id in &universe {
                let (status, body) = app
                    .rest(
                        Method::GET,
                        &format!("/bff-api/v1/{index}/{id}"),
                        *token,
                        None,
                    )
                    .await;
                let want = if expected.contains(id) {
                    StatusCode::OK
                } else {
                    StatusCode::NOT_FOUND
                };
                assert_eq!(status, want, "{index}/{id} as {who}: {body}");
            }
        }
        // Secrets never leave: no hash, provider secret or blind code in any answer.
        let text = all.to_string();
        for secret in [
            "password",
            "pi_secret_",
            "blind-",
            "blind2-",
            "dedupe",
            "keyHash",
        ] {
            assert!(!text.contains(secret), "{index} leaks {secret}: {text}");
        }
    }
}

#[tokio::test]
async fn views_join_what_their_names_promise() {
    let w = world().await;
    let app = &w.app;
    let alice = Some(w.alice.token.as_str());
    let (status, row) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/BookingListView/{}", w.alice_stay),
            alice,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{row}");
    let row = &row["record"];
    assert_eq!(row["listingTitle"], "Alice riverside loft");
    assert_eq!(row["guest"]["id"], w.bob.id.to_string());
    assert_eq!(row["amountPaid"], 300.0);
    assert_eq!(row["lastPaymentStatus"], "paid");
    assert_eq!(row["nights"], 3);

    let (_, detail) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/ReservationDetailView/{}", w.bob_stay),
            alice,
            None,
        )
        .await;
    let d = &detail["record"];
    assert_eq!(d["listing"]["title"], "Bob harbour house", "{detail}");
    assert_eq!(d["host"]["id"], w.bob.id.to_string());
    assert_eq!(d["payments"].as_array().unwrap().len(), 1);
    assert_eq!(d["dispute"]["issueType"], "damage");
    assert_eq!(d["timeline"][0]["kind"], "dispute_opened");
    // Alice (the guest) sees her own published review; Bob's blind one about her stays hidden.
    let texts: Vec<&str> = d["reviews"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reviewText"].as_str().unwrap())
        .collect();
    assert_eq!(texts, vec!["Lovely secret host"], "{detail}");

    let (_, listing) = app
        .rest(
            Method::POST,
            "/bff-api/v1/ListingDetailView/list",
            None,
            Some(json!({"q": "riverside"})),
        )
        .await;
    let l = &listing["records"][0];
    assert_eq!(l["title"], "Alice riverside loft", "{listing}");
    assert_eq!(l["localeTexts"][0]["languageCode"], "pt");
    assert_eq!(
        l["calendar"]["blocked"].as_array().unwrap().len(),
        1,
        "{listing}"
    );
    assert_eq!(l["host"]["id"], w.alice.id.to_string());

    let (_, reviews) = app
        .rest(Method::GET, "/bff-api/v1/ReviewDisplayView", None, None)
        .await;
    let card = reviews["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["revieweeId"] == w.alice.id.to_string())
        .expect("alice's public review");
    assert_eq!(card["reviewer"]["id"], w.bob.id.to_string());
    assert_eq!(card["aggregate"]["reviewCount"], 1);
    // Bob's aggregate is hidden: his public review card carries none.
    let bob_card = reviews["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["revieweeId"] == w.bob.id.to_string())
        .unwrap();
    assert_eq!(bob_card["aggregate"], Value::Null);

    let (_, dispute) = app
        .rest(
            Method::GET,
            "/bff-api/v1/disputeDetailView",
            Some(&w.bob.token),
            None,
        )
        .await;
    assert_eq!(dispute["records"].as_array().unwrap().len(), 2, "{dispute}");
    assert_eq!(
        dispute["records"][0]["timeline"][0]["kind"],
        "dispute_opened"
    );
    assert_eq!(dispute["records"][0]["adminActions"], json!([]));

    let (_, pay) = app
        .rest(Method::GET, "/bff-api/v1/PaymentRecordView", alice, None)
        .await;
    assert_eq!(pay["records"].as_array().unwrap().len(), 2, "{pay}");

    // The draft is in the host's listing detail, not in anyone else's.
    let (_, mine) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/ListingDetailView/{}", w.alice_draft),
            alice,
            None,
        )
        .await;
    assert_eq!(mine["record"]["isPublished"], false);
    let (status, _) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/ListingDetailView/{}", w.alice_draft),
            Some(&w.bob.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn filters_sorting_counts_and_the_conventions_forms_work() {
    let w = world().await;
    let app = &w.app;
    let admin = Some(w.admin.token.as_str());
    let titles = |body: &Value| -> Vec<String> {
        body["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["title"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, page) = search(
        app,
        admin,
        "listing",
        json!({"filters": {"pricePerNight": {"$gte": 400}}}),
    )
    .await;
    assert_eq!(titles(&page), vec!["Alice secret draft"]);
    let (_, page) = search(
        app,
        admin,
        "listing",
        json!({"filters": {"pricePerNight": "$lt-400", "city": "porT"}}),
    )
    .await;
    assert_eq!(titles(&page), vec!["Bob harbour house"]);
    let (_, page) = search(
        app,
        admin,
        "listing",
        json!({"filters": {"propertyType": ["VILLA", "house"]}}),
    )
    .await;
    assert_eq!(titles(&page), vec!["Alice secret draft"]);
    let (_, page) = app
        .rest(
            Method::GET,
            "/bff-api/v1/listing/list?sortBy=pricePerNight&sortOrder=desc",
            admin,
            None,
        )
        .await;
    assert_eq!(titles(&page)[0], "Alice secret draft", "{page}");
    // Typos in places still match (pg_trgm), prefixes match (full text).
    let (_, page) = app
        .rest(Method::GET, "/bff-api/v1/listing/list?q=lisbn", None, None)
        .await;
    assert_eq!(titles(&page), vec!["Alice riverside loft"], "{page}");
    let (_, page) = app
        .rest(Method::GET, "/bff-api/v1/listing/list?q=harb", None, None)
        .await;
    assert_eq!(titles(&page), vec!["Bob harbour house"]);
    let (_, page) = search(app, admin, "reservation", json!({"filters": {"checkIn": "$btw-2000-01-01-2999-01-01", "bookingStatus": {"$ne": "complete"}}})).await;
    assert_eq!(ids(&page), BTreeSet::from([w.bob_stay.to_string()]));
    let (_, count) = app
        .rest(
            Method::POST,
            "/bff-api/v1/ReservationDetailView/count",
            admin,
            Some(json!({"filters": {"totalPrice": 300}})),
        )
        .await;
    assert_eq!(count["count"], 2, "{count}");
    let (_, page) = app
        .rest(
            Method::GET,
            "/bff-api/v1/reservation/list?limit=1&page=2",
            admin,
            None,
        )
        .await;
    assert_eq!(page["paging"]["pageCount"], 2);
    assert_eq!(page["records"].as_array().unwrap().len(), 1);
    let (_, page) = search(
        app,
        admin,
        "reservation",
        json!({"filters": {"guestNote": null}}),
    )
    .await;
    assert_eq!(page["paging"]["totalRowCount"], 2);

    // The schema is derived from the document type.
    let (status, schema) = app
        .rest(
            Method::GET,
            "/bff-api/v1/ReservationDetailView/schema",
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{schema}");
    let field = |name: &str| {
        schema["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .cloned()
            .unwrap()
    };
    assert_eq!(field("bookingStatus")["type"], "enum");
    assert_eq!(field("bookingStatus")["values"][0], "pending");
    assert_eq!(field("totalPrice")["sortable"], true);
    assert_eq!(field("payments")["filterable"], false);
    assert_eq!(schema["schema"]["accessRuleOf"], "getReservation");
}

#[tokio::test]
async fn bad_searches_are_refused_naming_what_is_valid() {
    let w = world().await;
    let app = &w.app;
    let t = Some(w.alice.token.as_str());
    let (s, b) = search(app, t, "nope", json!({})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "BookingListView");
    let (s, b) = search(app, t, "listing", json!({"filters": {"passwordHash": "x"}})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "pricePerNight");
    let (s, b) = search(
        app,
        t,
        "listing",
        json!({"filters": {"title": {"$gt": "a"}}}),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "$like");
    let (s, b) = search(
        app,
        t,
        "listing",
        json!({"filters": {"maxGuests": {"$regex": ".*"}}}),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "$btw");
    let (s, b) = search(app, t, "listing", json!({"filters": {"id": "not-a-uuid"}})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "UUID");
    let (s, b) = search(app, t, "listing", json!({"filters": "city=Lisbon"})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "filters");
    let (s, b) = app
        .rest(Method::GET, "/bff-api/v1/listing/list?limit=101", t, None)
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "limit");
    let (s, b) = app
        .rest(
            Method::GET,
            "/bff-api/v1/listing/list?sortBy=photos",
            t,
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "sortable fields");
    let (s, b) = app
        .rest(
            Method::GET,
            "/bff-api/v1/listing/list?sortOrder=up",
            t,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    // Login-only indexes refuse anonymous callers; text that is all punctuation matches nothing.
    let (s, _) = app
        .rest(Method::GET, "/bff-api/v1/reservation/list", None, None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = app
        .rest(
            Method::GET,
            "/bff-api/v1/listing/list?q=%27%29%7C%21",
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["paging"]["totalRowCount"], 0);
}

#[tokio::test]
async fn saved_filters_belong_to_their_user_in_both_body_shapes() {
    let w = world().await;
    let app = &w.app;
    let alice = Some(w.alice.token.as_str());
    let bob = Some(w.bob.token.as_str());
    let (s, saved) = app
        .rest(
            Method::POST,
            "/bff-api/v1/reservation/filters",
            alice,
            Some(json!({"filterName": "Upcoming", "conditions": {"bookingStatus": "confirmed"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{saved}");
    let id = saved["savedFilter"]["id"].as_str().unwrap().to_string();
    let (s, other) = app
        .rest(
            Method::POST,
            "/bff-api/v1/ReservationDetailView/filters",
            alice,
            Some(json!({"filters": {"guestCount": {"$gte": 1}}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{other}");
    assert_eq!(other["savedFilter"]["indexName"], "ReservationDetailView");
    // Applying it: Alice's confirmed stay is Bob's listing.
    let (_, page) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/reservation/list?filterId={id}"),
            alice,
            None,
        )
        .await;
    assert_eq!(
        ids(&page),
        BTreeSet::from([w.bob_stay.to_string()]),
        "{page}"
    );
    let (_, mine) = app
        .rest(Method::GET, "/bff-api/v1/reservation/filters", alice, None)
        .await;
    assert_eq!(mine["savedFilters"].as_array().unwrap().len(), 1, "{mine}");
    let (_, theirs) = app
        .rest(Method::GET, "/bff-api/v1/reservation/filters", bob, None)
        .await;
    assert_eq!(theirs["savedFilters"], json!([]));
    // Bob can neither use nor delete it.
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/reservation/list?filterId={id}"),
            bob,
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "filterId");
    let (s, _) = app
        .rest(
            Method::DELETE,
            &format!("/bff-api/v1/reservation/filters/{id}"),
            bob,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // A filter naming an unknown field is refused and not saved.
    let before = app.count("bff.saved_filters").await;
    let (s, b) = app
        .rest(
            Method::POST,
            "/bff-api/v1/reservation/filters",
            alice,
            Some(json!({"conditions": {"secret": 1}})),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "bookingStatus");
    assert_eq!(app.count("bff.saved_filters").await, before);
    let (s, _) = app
        .rest(
            Method::DELETE,
            &format!("/bff-api/v1/reservation/filters/{id}"),
            alice,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .rest(
            Method::POST,
            "/bff-api/v1/reservation/filters",
            None,
            Some(json!({"conditions": {}})),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn search_tools_are_one_family_plus_one_per_view_read_only_on_mcp() {
    let w = world().await;
    let app = &w.app;
    let (is_error, out) = app
        .tool(
            Some(&w.alice.token),
            "searchIndex",
            json!({"indexName": "BookingListView", "q": "harbour"}),
        )
        .await;
    assert!(!is_error, "{out}");
    assert_eq!(out["records"][0]["id"], w.bob_stay.to_string(), "{out}");
    let (is_error, out) = app
        .tool(Some(&w.bob.token), "listReservationDetailView", json!({}))
        .await;
    assert!(!is_error, "{out}");
    assert_eq!(out["paging"]["totalRowCount"], 2);
    let (is_error, out) = app
        .tool(None, "countIndex", json!({"indexName": "reservation"}))
        .await;
    assert!(is_error, "{out}");
}

/// `thread`'s MessageThreadView row as `token` sees it.
async fn thread_row(app: &TestApp, token: Option<&str>, thread: Uuid) -> Value {
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/MessageThreadView/{thread}"),
            token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["record"].clone()
}

/// Marks message `id` read as `who` (its recipient).
async fn read(app: &TestApp, who: &TestUser, id: Uuid) {
    let (status, body) = app
        .rest(
            Method::PATCH,
            &format!("/messaging-api/v1/messages/{id}"),
            Some(&who.token),
            Some(json!({"isRead": true})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// The `content` of every message in `list`.
fn contents(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|m| m["content"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn conversations_search_for_their_participants_only_with_unread_counts_and_last_messages() {
    let w = world().await;
    let app = &w.app;
    let (alice, bob, carol, admin) = (
        Some(w.alice.token.as_str()),
        Some(w.bob.token.as_str()),
        Some(w.carol.token.as_str()),
        Some(w.admin.token.as_str()),
    );
    let [door, code, moderated, _deleted] = w.alice_messages;
    // The host's inbox row: Bob's door question unread (his moderated message is not counted),
    // the last message she can read is her own code (her deleted note is gone for her).
    let row = thread_row(app, alice, w.alice_thread).await;
    assert_eq!(row["unreadCount"], 1, "{row}");
    assert_eq!(row["lastMessage"]["id"], code.to_string(), "{row}");
    assert_eq!(row["otherParty"]["id"], w.bob.id.to_string());
    assert_eq!(row["listing"]["title"], "Alice riverside loft");
    assert_eq!(row["reservation"]["id"], w.alice_stay.to_string());
    assert_eq!(row["reservation"]["bookingStatus"], "complete");
    // Bob's: Alice's code unread, her deleted note not counted; the last he reads is the code.
    let row = thread_row(app, bob, w.alice_thread).await;
    assert_eq!(row["unreadCount"], 1, "{row}");
    assert_eq!(row["lastMessage"]["id"], code.to_string(), "{row}");
    assert_eq!(row["otherParty"]["id"], w.alice.id.to_string());
    // An admin (no participant) reads the deleted note as the last message; no other party.
    let row = thread_row(app, admin, w.alice_thread).await;
    assert_eq!(
        row["lastMessage"]["content"], "Secret deleted note",
        "{row}"
    );
    assert_eq!(row["lastMessage"]["isActive"], false);
    assert_eq!(row["otherParty"], Value::Null);
    assert_eq!(row["unreadCount"], 0);

    // Alice reads the question, Bob reads the code; then Bob writes again.
    read(app, &w.alice, door).await;
    read(app, &w.bob, code).await;
    assert_eq!(
        thread_row(app, alice, w.alice_thread).await["unreadCount"],
        0
    );
    let thanks = say(app, &w.bob, w.alice_thread, "Thanks, see you soon").await;
    let row = thread_row(app, alice, w.alice_thread).await;
    assert_eq!(row["unreadCount"], 1, "{row}");
    assert_eq!(row["lastMessage"]["id"], thanks.to_string());
    assert_eq!(
        row["lastMessage"]["senderName"],
        row["otherParty"]["fullname"]
    );
    let row = thread_row(app, bob, w.alice_thread).await;
    assert_eq!(row["unreadCount"], 0, "{row}");
    assert_eq!(row["lastMessage"]["id"], thanks.to_string());
    // What getMessageThread says agrees.
    let (_, got) = app
        .rest(
            Method::GET,
            &format!("/messaging-api/v1/messagethreads/{}", w.alice_thread),
            alice,
            None,
        )
        .await;
    assert_eq!(got["messageThread"]["unreadCount"], 1, "{got}");

    // Unread threads as a filter: Bob has read everything in Alice's thread, not Carol's question.
    let (_, page) = app
        .rest(
            Method::POST,
            "/bff-api/v1/MessageThreadView/list",
            bob,
            Some(json!({"filters": {"unreadCount": {"$gt": 0}}})),
        )
        .await;
    assert_eq!(
        ids(&page),
        BTreeSet::from([w.carol_thread.to_string()]),
        "{page}"
    );
    // Sorted by the last message: Alice's thread (Bob's thanks) is newer than Carol's.
    let (_, page) = app
        .rest(Method::GET, "/bff-api/v1/MessageThreadView", bob, None)
        .await;
    assert_eq!(
        page["records"][0]["id"],
        w.alice_thread.to_string(),
        "{page}"
    );
    assert_eq!(page["records"].as_array().unwrap().len(), 2);

    // The message index: the participants' visible messages, found by their words.
    let (_, page) = search(
        app,
        alice,
        "message",
        json!({"q": "code", "sortBy": "sentAt"}),
    )
    .await;
    assert_eq!(
        contents(&page["records"]),
        vec!["Is there a secret door code?", "The secret code is 1234"],
        "{page}"
    );
    let (_, page) = search(
        app,
        alice,
        "message",
        json!({"filters": {"threadId": w.alice_thread}}),
    )
    .await;
    assert_eq!(page["paging"]["totalRowCount"], 3, "{page}");
    let (_, page) = search(
        app,
        alice,
        "message",
        json!({"filters": {"isModerated": true}}),
    )
    .await;
    assert_eq!(page["paging"]["totalRowCount"], 0, "{page}");
    let (_, page) = search(app, admin, "message", json!({"q": "moderated insult"})).await;
    assert_eq!(
        ids(&page),
        BTreeSet::from([moderated.to_string()]),
        "{page}"
    );
    // A third user crafting filters and text for Alice's thread finds nothing of it.
    for body in [
        json!({"filters": {"threadId": w.alice_thread}}),
        json!({"q": "secret code"}),
        json!({"filters": {"senderId": w.bob.id}, "q": "door"}),
        json!({"filters": {"id": {"$in": w.alice_messages}}}),
    ] {
        let (status, page) = search(app, carol, "message", body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let found: Vec<String> = page["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["threadId"].as_str().unwrap().to_string())
            .collect();
        assert!(
            found.iter().all(|t| *t == w.carol_thread.to_string()),
            "{body}: {page}"
        );
        for index in ["messageThread", "MessageThreadView", "chatContext"] {
            let (_, page) = search(
                app,
                carol,
                index,
                json!({"filters": {"id": w.alice_thread}, "q": "Alice"}),
            )
            .await;
            assert_eq!(page["paging"]["totalRowCount"], 0, "{index}: {page}");
        }
    }
    let (status, _) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/chatContext/{}", w.alice_thread),
            carol,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = app
        .rest(Method::GET, "/bff-api/v1/chatContext/list", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // chatContext: the thread, both briefs, listing, reservation and the readable messages.
    let (status, ctx) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/chatContext/{}", w.alice_thread),
            alice,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ctx}");
    let c = &ctx["record"];
    assert_eq!(
        contents(&c["recentMessages"]),
        vec![
            "Is there a secret door code?",
            "The secret code is 1234",
            "Thanks, see you soon"
        ],
        "{ctx}"
    );
    assert_eq!(c["guest"]["id"], w.bob.id.to_string());
    assert_eq!(c["host"]["id"], w.alice.id.to_string());
    assert_eq!(c["listing"]["title"], "Alice riverside loft");
    assert_eq!(c["listing"]["pricePerNight"], 100.0);
    assert_eq!(c["reservation"]["nights"], 3);
    assert_eq!(c["reservation"]["totalPrice"], 300.0);
    assert_eq!(c["unreadCount"], 1);
    let (_, ctx) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/chatContext/{}", w.alice_thread),
            admin,
            None,
        )
        .await;
    assert_eq!(
        ctx["record"]["recentMessages"].as_array().unwrap().len(),
        5,
        "{ctx}"
    );

    // At most the last 20, in order.
    sqlx::query(
        "INSERT INTO messaging.messages (thread_id, sender_id, recipient_id, content, message_type, sent_at, owner_id)
         SELECT $1, $2, $3, 'note ' || g, 'text', now() + make_interval(secs => g), $2
           FROM generate_series(1, 25) g",
    )
    .bind(w.carol_thread)
    .bind(w.carol.id)
    .bind(w.bob.id)
    .execute(&app.db)
    .await
    .unwrap();
    let (_, page) = app
        .rest(Method::GET, "/bff-api/v1/chatContext/list", carol, None)
        .await;
    let recent = contents(&page["records"][0]["recentMessages"]);
    assert_eq!(recent.len(), 20, "{page}");
    assert_eq!(recent[0], "note 6");
    assert_eq!(recent[19], "note 25");
    let (_, row) = app
        .rest(
            Method::GET,
            &format!("/bff-api/v1/MessageThreadView/{}", w.carol_thread),
            bob,
            None,
        )
        .await;
    assert_eq!(row["record"]["unreadCount"], 26, "{row}");
    assert_eq!(row["record"]["lastMessage"]["content"], "note 25");

    // Bad searches of the new indexes name the field and what is valid.
    let (s, b) = app
        .rest(
            Method::POST,
            "/bff-api/v1/chatContext/list",
            bob,
            Some(json!({"filters": {"content": "x"}})),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "unreadCount");
    let (s, b) = app
        .rest(
            Method::POST,
            "/bff-api/v1/MessageThreadView/list",
            bob,
            Some(json!({"filters": {"lastMessage": "x"}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let (s, b) = app
        .rest(
            Method::GET,
            "/bff-api/v1/chatContext/list?sortBy=recentMessages",
            bob,
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "sortable fields");
    let (s, b) = search(app, bob, "message", json!({"filters": {"isRead": "maybe"}})).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "isRead");

    // Each view is its own read-only tool.
    let (is_error, out) = app
        .tool(bob, "listChatContext", json!({"q": "carol"}))
        .await;
    assert!(!is_error, "{out}");
    assert_eq!(
        ids(&out),
        BTreeSet::from([w.carol_thread.to_string()]),
        "{out}"
    );
    let (is_error, out) = app.tool(carol, "listMessageThreadView", json!({})).await;
    assert!(!is_error, "{out}");
    assert_eq!(
        out["records"][0]["otherParty"]["id"],
        w.bob.id.to_string(),
        "{out}"
    );
    let listed = app
        .mcp_at("/mcp?tools=all", admin, "tools/list", json!({}))
        .await;
    let tools = listed["result"]["tools"].as_array().unwrap();
    for name in ["listChatContext", "listMessageThreadView"] {
        let tool = tools
            .iter()
            .find(|t| t["name"] == name)
            .unwrap_or_else(|| panic!("{name}"));
        assert_eq!(tool["annotations"]["readOnlyHint"], true, "{tool}");
        assert_eq!(tool["annotations"]["destructiveHint"], false, "{tool}");
    }
}
