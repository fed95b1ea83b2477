//! The property catalog over real HTTP and MCP: listing CRUD and access, bad input, guest search,
//! localized reads with their joins, and calendar entries against the holds constraint.

use chrono::{Days, NaiveDate, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const LISTINGS: &str = "/propertycatalog-api/v1/listings";
const CALENDARS: &str = "/propertycatalog-api/v1/listingcalendars";

/// A valid createListing body in `city`, with `extra` fields merged over it.
pub fn listing_body(city: &str, extra: Value) -> Value {
    let mut body = json!({
        "title": format!("Flat in {city}"),
        "description": "Bright flat near the river",
        "address": "Rua Augusta 1",
        "pricePerNight": 100,
        "propertyType": "apartment",
        "location": { "city": city, "country": "PT", "latitude": 38.7, "longitude": -9.1 },
        "currency": "EUR",
        "approvalType": "instant",
        "isPublished": true,
        "maxGuests": 4
    });
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    body
}

/// Creates a listing over REST as `token`; returns its JSON.
pub async fn create_listing(app: &TestApp, token: &str, body: Value) -> Value {
    let (s, b) = app
        .rest(Method::POST, LISTINGS, Some(token), Some(body))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    b["listing"].clone()
}

/// GET `path` as `token` (anonymous when None).
pub async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Value) {
    app.rest(Method::GET, path, token, None).await
}

/// PATCH `body` onto `path` as `token`.
pub async fn patch(app: &TestApp, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    app.rest(Method::PATCH, path, Some(token), Some(body)).await
}

/// PATCHes `body` (carrying an outdated `recordVersion`) onto `path` as `token` and expects the
/// 409 that names `recordVersion`.
pub async fn patch_is_stale(app: &TestApp, path: &str, token: &str, body: Value) {
    let (s, b) = patch(app, path, token, body).await;
    assert_error(s, &b, StatusCode::CONFLICT, "recordVersion");
}

/// DELETE `path` as `token`.
pub async fn delete(app: &TestApp, path: &str, token: &str) -> (StatusCode, Value) {
    app.rest(Method::DELETE, path, Some(token), None).await
}

/// Deletes `path` as `token`, checks the soft-deleted last state under `data_name` and that the
/// object is gone from reads; returns that last state.
pub async fn delete_and_check_gone(
    app: &TestApp,
    path: &str,
    token: &str,
    data_name: &str,
) -> Value {
    let (s, b) = delete(app, path, token).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b[data_name]["isActive"], false);
    let (s, _) = get(app, path, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    b[data_name].clone()
}

/// The usual cast: a host, a guest and an admin.
pub async fn cast(app: &TestApp) -> (TestUser, TestUser, TestUser) {
    (
        app.user("host@haven.test").await,
        app.user("guest@haven.test").await,
        app.user_with_role("boss@haven.test", "admin").await,
    )
}

/// Creates, as `host`, a published listing in Lisbon and an unpublished one (`draft_extra` merged
/// over it); returns (published, draft).
pub async fn public_and_draft(
    app: &TestApp,
    host: &TestUser,
    draft_extra: Value,
) -> (Value, Value) {
    let public = create_listing(app, &host.token, listing_body("Lisbon", json!({}))).await;
    let mut extra = json!({ "isPublished": false });
    if let (Value::Object(e), Value::Object(d)) = (&mut extra, draft_extra) {
        e.extend(d);
    }
    let draft = create_listing(app, &host.token, listing_body("Lisbon", extra)).await;
    (public, draft)
}

/// A date `days` from today.
pub fn day(days: u64) -> NaiveDate {
    Utc::now()
        .date_naive()
        .checked_add_days(Days::new(days))
        .unwrap()
}

/// Inserts a pending (night-holding) reservation directly, as the booking service would.
pub async fn hold_nights(app: &TestApp, listing: &Value, guest: Uuid, from: u64, to: u64) -> Uuid {
    sqlx::query_scalar(
        "INSERT INTO booking.reservations (listing_id, guest_id, host_id, approval_type, check_in,
            check_out, guest_count, currency, total_price, price_breakdown,
            booking_policies_snapshot, cancellation_policy_snapshot)
         VALUES ($1, $2, $3, 'instant', $4, $5, 1, 'EUR', 10000, '{}', '{}', '{}') RETURNING id",
    )
    .bind(id_of(listing))
    .bind(guest)
    .bind(Uuid::parse_str(listing["hostId"].as_str().unwrap()).unwrap())
    .bind(day(from))
    .bind(day(to))
    .fetch_one(&app.db)
    .await
    .unwrap()
}

/// The `id` of an object.
pub fn id_of(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap()).unwrap()
}

async fn listing_row(app: &TestApp, id: Uuid) -> Value {
    sqlx::query_scalar("SELECT to_jsonb(l) FROM catalog.listings l WHERE id = $1")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

fn titles(body: &Value) -> Vec<String> {
    let mut t: Vec<String> = body["listings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["title"].as_str().unwrap().to_string())
        .collect();
    t.sort();
    t
}

#[tokio::test]
async fn listing_lifecycle_over_rest_and_mcp() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let listing = create_listing(
        &app,
        &host.token,
        listing_body(
            "Lisbon",
            json!({
                "pricePerNight": 120.5, "cleaningFee": 30, "cityTaxPercent": 3.5,
                "minStay": 2, "maxStay": 14, "photos": ["https://img.test/1.jpg"],
                "languagesSupported": ["en", "pt-BR"],
                "seasonalPricing": { "seasons": [{ "from": "07-01", "to": "08-31", "pricePerNight": 180 }] },
                "cancellationPolicy": { "freeCancellationDays": 5, "refundPercentAfterDeadline": 50 }
            }),
        ),
    )
    .await;
    assert_eq!(listing["hostId"], json!(host.id));
    assert_eq!(listing["_owner"], json!(host.id));
    assert_eq!(listing["pricePerNight"], json!(120.5));
    assert_eq!(listing["cleaningFee"], json!(30.0));
    assert_eq!(listing["cityTaxPercent"], json!(3.5));
    assert_eq!(listing["propertyType_idx"], 0);
    assert_eq!(listing["approvalType_idx"], 0);
    assert_eq!(listing["location"]["city"], "Lisbon");
    assert_eq!(listing["languagesSupported"], json!(["en", "pt-br"]));
    assert_eq!(
        listing["seasonalPricing"]["seasons"][0]["pricePerNight"],
        json!(180.0)
    );
    assert_eq!(listing["recordVersion"], 1);
    let id = id_of(&listing);
    let stored: String =
        sqlx::query_scalar("SELECT city_tax_percent::text FROM catalog.listings WHERE id = $1")
            .bind(id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(stored, "3.50");

    // Anyone reads a published listing.
    let listing_path = format!("{LISTINGS}/{id}");
    let (s, b) = get(&app, &listing_path, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["listing"]["title"], "Flat in Lisbon");
    assert_eq!(b["listing"]["rezervations"], Value::Null);

    let body = json!({ "title": "Sunny flat", "propertyType": "loft", "recordVersion": 1,
                       "location": { "city": "Porto" } });
    let (s, b) = patch(&app, &listing_path, &host.token, body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["listing"]["title"], "Sunny flat");
    assert_eq!(b["listing"]["propertyType_idx"], 5);
    assert_eq!(b["listing"]["location"]["city"], "Porto");
    assert_eq!(b["listing"]["location"]["latitude"], Value::Null);
    assert_eq!(b["listing"]["recordVersion"], 2);

    let before = listing_row(&app, id).await;
    patch_is_stale(
        &app,
        &listing_path,
        &host.token,
        json!({ "title": "Lost update", "recordVersion": 1 }),
    )
    .await;
    assert_eq!(listing_row(&app, id).await, before);

    // Over MCP: read and update.
    let (err, got) = app
        .tool(Some(&host.token), "getListing", json!({ "listingId": id }))
        .await;
    assert!(!err, "{got}");
    assert_eq!(got["title"], "Sunny flat");
    let (err, got) = app
        .tool(
            Some(&host.token),
            "updateListing",
            json!({ "listingId": id, "maxGuests": 6 }),
        )
        .await;
    assert!(!err, "{got}");
    assert_eq!(got["maxGuests"], 6);
    let (err, made) = app
        .tool(
            Some(&host.token),
            "createListing",
            listing_body("Faro", json!({ "isPublished": false })),
        )
        .await;
    assert!(!err, "{made}");
    assert_eq!(made["hostId"], json!(host.id));

    delete_and_check_gone(&app, &listing_path, &host.token, "listing").await;
}

#[tokio::test]
async fn only_the_host_or_an_admin_changes_a_listing_and_drafts_stay_hidden() {
    let app = TestApp::spawn().await;
    let (host, guest, admin) = cast(&app).await;
    let (public, draft) = public_and_draft(&app, &host, json!({ "title": "Secret" })).await;
    let (pid, did) = (id_of(&public), id_of(&draft));
    let before = listing_row(&app, pid).await;

    let public_path = format!("{LISTINGS}/{pid}");
    let (s, b) = patch(
        &app,
        &public_path,
        &guest.token,
        json!({ "pricePerNight": 1 }),
    )
    .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "host");
    let (s, _) = delete(&app, &public_path, &guest.token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .rest(
            Method::PATCH,
            &public_path,
            None,
            Some(json!({ "pricePerNight": 1 })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (err, text) = app
        .tool(
            Some(&guest.token),
            "updateListing",
            json!({ "listingId": pid, "title": "Mine now" }),
        )
        .await;
    assert!(err && text.as_str().unwrap().contains("host"), "{text}");
    assert_eq!(listing_row(&app, pid).await, before);

    // The draft: invisible (404) to others, in reads, lists and writes alike.
    let draft_path = format!("{LISTINGS}/{did}");
    for token in [None, Some(guest.token.as_str())] {
        let (s, _) = get(&app, &draft_path, token).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (_, b) = get(&app, LISTINGS, token).await;
        assert_eq!(titles(&b), vec!["Flat in Lisbon"]);
    }
    let (s, _) = patch(&app, &draft_path, &guest.token, json!({ "title": "x" })).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for token in [&host.token, &admin.token] {
        let (s, b) = get(&app, &draft_path, Some(token)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (_, b) = get(&app, LISTINGS, Some(token)).await;
        assert_eq!(titles(&b), vec!["Flat in Lisbon", "Secret"]);
    }
    let (_, b) = get(
        &app,
        &format!("{LISTINGS}?isPublished=false"),
        Some(&admin.token),
    )
    .await;
    assert_eq!(titles(&b), vec!["Secret"]);
    let (s, b) = patch(
        &app,
        &draft_path,
        &admin.token,
        json!({ "isPublished": true }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["listing"]["hostId"], json!(host.id));
    let (s, _) = get(&app, &draft_path, None).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn bad_and_server_owned_listing_fields_are_refused_by_name() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let listing = create_listing(&app, &host.token, listing_body("Lisbon", json!({}))).await;
    let id = id_of(&listing);
    let before = app.count("catalog.listings").await;
    let cases = [
        (json!({ "hostId": host.id }), "hostId"),
        (json!({ "bookingStatus": "confirmed" }), "bookingStatus"),
        (json!({ "pricePerNight": -5 }), "pricePerNight"),
        (json!({ "pricePerNight": 0 }), "pricePerNight"),
        (json!({ "pricePerNight": 10.123 }), "pricePerNight"),
        (json!({ "propertyType": "castle" }), "propertyType"),
        (json!({ "minStay": 5, "maxStay": 3 }), "maxStay"),
        (json!({ "amenityIds": [Uuid::new_v4()] }), "amenityIds"),
        (
            json!({ "location": { "city": "Lisbon", "latitude": 200 } }),
            "latitude",
        ),
        (json!({ "location": { "country": "PT" } }), "city"),
        (json!({ "maxGuests": 51 }), "maxGuests"),
        (json!({ "currency": "EURO" }), "currency"),
        (json!({ "photos": ["ftp://x"] }), "photos"),
        (json!({ "cityTaxPercent": 101 }), "cityTaxPercent"),
    ];
    let listing_path = format!("{LISTINGS}/{id}");
    for (extra, field) in cases {
        let (s, b) = app
            .rest(
                Method::POST,
                LISTINGS,
                Some(&host.token),
                Some(listing_body("Lisbon", extra.clone())),
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, field);
        let (s, b) = patch(&app, &listing_path, &host.token, extra).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, field);
    }
    // maxStay below the stored minStay is caught on update too.
    let (s, b) = patch(&app, &listing_path, &host.token, json!({ "minStay": 3 })).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let (s, b) = patch(&app, &listing_path, &host.token, json!({ "maxStay": 2 })).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "maxStay");
    let (err, text) = app
        .tool(
            Some(&host.token),
            "createListing",
            listing_body("Lisbon", json!({ "hostId": Uuid::new_v4() })),
        )
        .await;
    assert!(err && text.as_str().unwrap().contains("hostId"), "{text}");
    assert_eq!(app.count("catalog.listings").await, before);
    assert_eq!(listing_row(&app, id).await["min_stay"], 3);
}

#[tokio::test]
async fn search_returns_exactly_the_free_fitting_listings() {
    let app = TestApp::spawn().await;
    let (host, guest, admin) = cast(&app).await;
    let (_, wifi) = app
        .rest(
            Method::POST,
            "/propertycatalog-api/v1/listingamenities",
            Some(&admin.token),
            Some(json!({ "name": "Wifi" })),
        )
        .await;
    let wifi = wifi["listingAmenity"]["id"].clone();
    let mk = |title: &str, extra: Value| {
        let mut b = listing_body("Lisbon", extra);
        b["title"] = json!(title);
        b
    };
    let fits = create_listing(
        &app,
        &host.token,
        mk("Fits", json!({ "amenityIds": [wifi] })),
    )
    .await;
    create_listing(
        &app,
        &host.token,
        mk("Also fits", json!({ "pricePerNight": 80 })),
    )
    .await;
    let blocked = create_listing(&app, &host.token, mk("Blocked", json!({}))).await;
    let booked = create_listing(&app, &host.token, mk("Booked", json!({}))).await;
    create_listing(
        &app,
        &host.token,
        mk("Too small", json!({ "maxGuests": 2 })),
    )
    .await;
    create_listing(
        &app,
        &host.token,
        mk("Too dear", json!({ "pricePerNight": 500 })),
    )
    .await;
    create_listing(
        &app,
        &host.token,
        mk("Long stays only", json!({ "minStay": 7 })),
    )
    .await;
    create_listing(
        &app,
        &host.token,
        mk("Draft", json!({ "isPublished": false })),
    )
    .await;
    let mut porto = listing_body("Porto", json!({}));
    porto["title"] = json!("Elsewhere");
    create_listing(&app, &host.token, porto).await;

    // Blocked by a calendar entry on night 12; booked by a reservation over nights 9-11.
    let (s, b) = app
        .rest(
            Method::POST,
            CALENDARS,
            Some(&host.token),
            Some(json!({ "listingId": id_of(&blocked), "date": day(12), "isAvailable": false })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    hold_nights(&app, &booked, guest.id, 9, 12).await;

    let search = format!(
        "{LISTINGS}?city=lisbon&checkIn={}&checkOut={}&guestCount=3&minPrice=50&maxPrice=150",
        day(10),
        day(13)
    );
    let (s, b) = get(&app, &search, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(titles(&b), vec!["Also fits", "Fits"]);
    assert_eq!(b["paging"]["totalRowCount"], 2);

    // Back-to-back with the reservation is fine; amenity, price range and sort filters narrow.
    let (_, b) = app
        .rest(
            Method::GET,
            &format!(
                "{LISTINGS}?city=LISBON&city=porto&checkIn={}&checkOut={}&guestCount=3&maxPrice=150&sortBy=priceAsc",
                day(12),
                day(14)
            ),
            None,
            None,
        )
        .await;
    let order: Vec<&str> = b["listings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["title"].as_str().unwrap())
        .collect();
    assert_eq!(order, vec!["Also fits", "Elsewhere", "Booked", "Fits"]);
    let (_, b) = get(
        &app,
        &format!("{LISTINGS}?amenityIds={}", wifi.as_str().unwrap()),
        None,
    )
    .await;
    assert_eq!(titles(&b), vec!["Fits"]);
    assert_eq!(b["listings"][0]["amenities"][0]["name"], "Wifi");
    let (_, b) = get(&app, &format!("{LISTINGS}?pricePerNight=$btw-70-90"), None).await;
    assert_eq!(titles(&b), vec!["Also fits"]);
    let (_, b) = get(
        &app,
        &format!("{LISTINGS}?pricePerNight=$gte-400&city=porto"),
        None,
    )
    .await;
    assert_eq!(titles(&b), Vec::<String>::new());
    let (_, b) = get(&app, &format!("{LISTINGS}?q=dear"), None).await;
    assert_eq!(titles(&b), vec!["Too dear"]);
    let (err, got) = app
        .tool(
            None,
            "listListings",
            json!({ "city": "Lisbon", "checkIn": day(10), "checkOut": day(13), "guestCount": 3, "maxPrice": 150 }),
        )
        .await;
    assert!(!err, "{got}");
    assert_eq!(got["listings"].as_array().unwrap().len(), 2);
    assert!(got["listings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["id"] == fits["id"]));

    let (s, b) = get(&app, &format!("{LISTINGS}?checkIn={}", day(10)), None).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "checkOut");
    let (s, b) = get(&app, &format!("{LISTINGS}?pricePerNight=$gte-abc"), None).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "pricePerNight");
}

#[tokio::test]
async fn accept_language_picks_the_locale_text_and_get_returns_the_joins() {
    let app = TestApp::spawn().await;
    let (host, guest, admin) = cast(&app).await;
    let mut amenity_ids = Vec::new();
    for name in ["Wifi", "Pool"] {
        let (s, b) = app
            .rest(
                Method::POST,
                "/propertycatalog-api/v1/listingamenities",
                Some(&admin.token),
                Some(json!({ "name": name, "iconUrl": format!("https://icons.test/{name}.svg") })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
        amenity_ids.push(b["listingAmenity"]["id"].clone());
    }
    let listing = create_listing(
        &app,
        &host.token,
        listing_body("Lisbon", json!({ "amenityIds": amenity_ids })),
    )
    .await;
    let id = id_of(&listing);
    for (code, title) in [("de", "Helle Wohnung"), ("fr", "Appartement lumineux")] {
        let (s, b) = app
            .rest(
                Method::POST,
                "/propertycatalog-api/v1/listinglocaletexts",
                Some(&host.token),
                Some(
                    json!({ "listingId": id, "languageCode": code, "localizedTitle": title,
                             "localizedDescription": format!("{title}!") }),
                ),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    sqlx::query(
        "INSERT INTO reviews.review_aggregates (reviewee_id, reviewee_type, average_rating, review_count)
         VALUES ($1, 'listing', 4.5, 2)",
    )
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();
    let reservation = hold_nights(&app, &listing, guest.id, 20, 23).await;
    sqlx::query(
        "INSERT INTO reviews.reviews (reservation_id, reviewer_id, reviewee_id, reviewee_type, rating,
            review_text, moderation_status, is_published, blind_submission_code)
         VALUES ($1, $2, $3, 'listing', 5, 'Lovely', 'approved', true, 'x'),
                ($1, $2, $3, 'host', 1, 'Hidden: about the host', 'approved', true, 'y')",
    )
    .bind(reservation)
    .bind(guest.id)
    .bind(id)
    .execute(&app.db)
    .await
    .unwrap();

    let get = |lang: &'static str, token: Option<String>| {
        let app = &app;
        async move {
            let mut req = app
                .http
                .get(format!("{}{LISTINGS}/{id}", app.base))
                .header("accept-language", lang);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            let resp = req.send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK);
            resp.json::<Value>().await.unwrap()["listing"].clone()
        }
    };
    let l = get("de-CH, de;q=0.9, en;q=0.5", None).await;
    assert_eq!(l["title"], "Helle Wohnung");
    assert_eq!(l["description"], "Helle Wohnung!");
    assert_eq!(l["locale"], "de");
    let l = get("it, fr;q=0.8", None).await;
    assert_eq!(l["title"], "Appartement lumineux");
    let l = get("en", Some(guest.token.clone())).await;
    assert_eq!(l["title"], "Flat in Lisbon");
    assert_eq!(l["locale"], Value::Null);

    let names = field_of(&l["amenities"], "name");
    assert_eq!(names, vec!["Pool", "Wifi"]);
    assert_eq!(l["amenities"][0]["iconUrl"], "https://icons.test/Pool.svg");
    assert_eq!(l["localeTexts"].as_array().unwrap().len(), 2);
    assert_eq!(l["localeTexts"][0]["languageCode"], "de");
    assert_eq!(
        l["reviewAggregate"],
        json!({ "averageRating": 4.5, "reviewCount": 2 })
    );
    assert_eq!(l["reviews"].as_array().unwrap().len(), 1);
    assert_eq!(l["reviews"][0]["reviewText"], "Lovely");
    assert_eq!(l["rezervations"], Value::Null, "guest ids are private");
    let l = get("en", Some(host.token.clone())).await;
    assert_eq!(l["rezervations"][0]["id"], json!(reservation));
    assert_eq!(l["rezervations"][0]["bookingStatus"], "pending");
    assert_eq!(l["rezervations"][0]["bookingStatus_idx"], 0);
    assert_eq!(l["rezervations"][0]["guestId"], json!(guest.id));

    // Lists localize too and carry the aggregate.
    let resp = app
        .http
        .get(format!("{}{LISTINGS}?sortBy=rating", app.base))
        .header("accept-language", "de")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["listings"][0]["title"], "Helle Wohnung");
    assert_eq!(body["listings"][0]["reviewAggregate"]["reviewCount"], 2);
    assert_eq!(
        body["listings"][0]["amenities"].as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_full_page_of_listings_carries_its_own_joins() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let admin = app.user_with_role("boss@haven.test", "admin").await;
    let mut amenities = Vec::new();
    for i in 0..3 {
        let (_, b) = app
            .rest(
                Method::POST,
                "/propertycatalog-api/v1/listingamenities",
                Some(&admin.token),
                Some(json!({ "name": format!("Amenity {i}") })),
            )
            .await;
        amenities.push(b["listingAmenity"]["id"].clone());
    }
    for i in 0..30 {
        let mut body = listing_body(
            "Lisbon",
            json!({ "amenityIds": [amenities[i % 3]], "pricePerNight": 100 + i }),
        );
        body["title"] = json!(format!("Listing {i}"));
        let listing = create_listing(&app, &host.token, body).await;
        let (s, b) = app
            .rest(
                Method::POST,
                "/propertycatalog-api/v1/listinglocaletexts",
                Some(&host.token),
                Some(json!({ "listingId": listing["id"], "languageCode": "es",
                             "localizedTitle": format!("Anuncio {i}"),
                             "localizedDescription": "Piso" })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let resp = app
        .http
        .get(format!(
            "{}{LISTINGS}?pageRowCount=30&sortBy=priceAsc",
            app.base
        ))
        .header("accept-language", "es-MX")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    let listings = body["listings"].as_array().unwrap();
    assert_eq!(listings.len(), 30);
    for (i, l) in listings.iter().enumerate() {
        assert_eq!(l["title"], format!("Anuncio {i}"));
        assert_eq!(l["locale"], "es");
        assert_eq!(l["pricePerNight"], json!((100 + i) as f64));
        assert_eq!(l["amenities"].as_array().unwrap().len(), 1);
        assert_eq!(l["amenities"][0]["id"], amenities[i % 3]);
        assert_eq!(l["amenities"][0]["name"], format!("Amenity {}", i % 3));
    }
}

#[tokio::test]
async fn calendar_entries_block_nights_without_overlapping() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let guest = app.user("guest@haven.test").await;
    let listing = create_listing(&app, &host.token, listing_body("Lisbon", json!({}))).await;
    let lid = id_of(&listing);

    let (s, b) = app
        .rest(
            Method::POST,
            CALENDARS,
            Some(&host.token),
            Some(
                json!({ "listingId": lid, "date": day(5), "endDate": day(8), "isAvailable": true,
                         "priceOverride": 150, "minStay": 2, "externalCalendarIds": ["abc"] }),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let entry = b["listingCalendar"].clone();
    assert_eq!(entry["priceOverride"], json!(150.0));
    assert_eq!(entry["endDate"], json!(day(8)));
    let eid = id_of(&entry);

    let holds = app.count("catalog.listing_holds").await;
    let (s, b) = app
        .rest(
            Method::POST,
            CALENDARS,
            Some(&host.token),
            Some(json!({ "listingId": lid, "date": day(7), "isAvailable": false })),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::CONFLICT,
        "an entry already covers some of these dates",
    );
    hold_nights(&app, &listing, guest.id, 10, 12).await;
    let (s, b) = app
        .rest(
            Method::POST,
            CALENDARS,
            Some(&host.token),
            Some(json!({ "listingId": lid, "date": day(9), "endDate": day(11), "isAvailable": false })),
        )
        .await;
    assert_error(
        s,
        &b,
        StatusCode::CONFLICT,
        "some of these nights are already booked",
    );
    assert_eq!(app.count("catalog.listing_holds").await, holds + 1);

    for (body, field) in [
        (
            json!({ "listingId": lid, "date": day(0).pred_opt(), "isAvailable": false }),
            "date",
        ),
        (
            json!({ "listingId": lid, "date": day(30), "endDate": day(29), "isAvailable": false }),
            "endDate",
        ),
        (
            json!({ "listingId": lid, "date": day(30), "isAvailable": false, "bookedBy": guest.id }),
            "bookedBy",
        ),
        (
            json!({ "listingId": lid, "date": day(30), "isAvailable": true, "priceOverride": -1 }),
            "priceOverride",
        ),
    ] {
        let (s, b) = app
            .rest(Method::POST, CALENDARS, Some(&host.token), Some(body))
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, field);
    }
    let (s, _) = app
        .rest(
            Method::POST,
            CALENDARS,
            Some(&guest.token),
            Some(json!({ "listingId": lid, "date": day(40), "isAvailable": false })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Updating: blocking the existing entry works; stale versions are refused.
    let entry_path = format!("{CALENDARS}/{eid}");
    let (s, b) = patch(
        &app,
        &entry_path,
        &host.token,
        json!({ "isAvailable": false, "recordVersion": 1 }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(app.count("catalog.listing_holds").await, holds + 2);
    patch_is_stale(
        &app,
        &entry_path,
        &host.token,
        json!({ "minStay": 3, "recordVersion": 1 }),
    )
    .await;
    let (s, b) = patch(
        &app,
        &entry_path,
        &guest.token,
        json!({ "isAvailable": true }),
    )
    .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "host");

    // An available entry over booked nights is fine, but blocking it then collides.
    let (s, b) = app
        .rest(
            Method::POST,
            CALENDARS,
            Some(&host.token),
            Some(json!({ "listingId": lid, "date": day(10), "endDate": day(12), "isAvailable": true })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (err, text) = app
        .tool(
            Some(&host.token),
            "updateListingCalendar",
            json!({ "listingCalendarId": b["listingCalendar"]["id"], "isAvailable": false }),
        )
        .await;
    assert!(
        err && text.as_str().unwrap().contains("already booked"),
        "{text}"
    );

    // Reads are public for published listings; lists filter by dates.
    let (s, b) = get(&app, &entry_path, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["listingCalendar"]["isAvailable"], false);
    let list = |q: String| {
        let app = &app;
        async move {
            let (s, b) = get(app, &format!("{CALENDARS}?listingId={lid}&{q}"), None).await;
            assert_eq!(s, StatusCode::OK, "{b}");
            b["listingCalendars"].as_array().unwrap().len()
        }
    };
    assert_eq!(list(format!("date={}", day(6))).await, 1);
    assert_eq!(list(format!("date={}", day(8))).await, 0);
    assert_eq!(list(format!("date=$gte-{}", day(9))).await, 1);
    assert_eq!(list(format!("date=$lte-{}", day(9))).await, 1);
    assert_eq!(list("date=$week".to_string()).await, 1);
    assert_eq!(list("date=$month".to_string()).await, 2);
    assert_eq!(list("date=$today".to_string()).await, 0);
    assert_eq!(list(format!("from={}&to={}", day(8), day(10))).await, 0);
    assert_eq!(list(format!("from={}", day(7))).await, 2);
    let (s, b) = get(&app, &format!("{CALENDARS}?date=soon"), None).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "date");

    // Deleting frees the nights.
    let path = format!("{CALENDARS}/{eid}");
    delete_and_check_gone(&app, &path, &host.token, "listingCalendar").await;
    assert_eq!(app.count("catalog.listing_holds").await, holds + 1);

    // A draft's calendar is hidden from others.
    patch(
        &app,
        &format!("{LISTINGS}/{lid}"),
        &host.token,
        json!({ "isPublished": false }),
    )
    .await;
    assert_eq!(list(String::new()).await, 0);
    let (_, b) = get(
        &app,
        &format!("{CALENDARS}?listingId={lid}"),
        Some(&host.token),
    )
    .await;
    assert_eq!(b["listingCalendars"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn calendar_prices_and_minimum_stays_shape_quotes_and_bookings() {
    let app = TestApp::spawn().await;
    let host = app.user("host@haven.test").await;
    let guest = app.user("guest@haven.test").await;
    let listing = create_listing(&app, &host.token, listing_body("Lisbon", json!({}))).await;
    let lid = id_of(&listing);
    // Nights 5, 6 and 7 cost 150.25 each, and a stay arriving on one of them lasts 3 nights.
    let (s, b) = app
        .rest(
            Method::POST,
            CALENDARS,
            Some(&host.token),
            Some(
                json!({ "listingId": lid, "date": day(5), "endDate": day(8), "isAvailable": true,
                         "priceOverride": 150.25, "minStay": 3 }),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");

    // Arriving the night before: the base price, then the calendar's; no calendar minimum.
    let stay = |from: u64, to: u64| json!({ "listingId": lid, "checkIn": day(from), "checkOut": day(to), "guestCount": 1 });
    let (is_error, quote) = app
        .tool(Some(&guest.token), "quoteReservation", stay(4, 6))
        .await;
    assert!(!is_error, "{quote}");
    let nightly: Vec<(Value, Value)> = quote["nightly"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["price"].clone(), n["source"].clone()))
        .collect();
    assert_eq!(
        nightly,
        [
            (json!(100.0), json!("base")),
            (json!(150.25), json!("calendar"))
        ]
    );
    assert_eq!(quote["accommodation"], json!(250.25));

    // Arriving on a covered night: the calendar's minimum stay holds, for quotes and bookings.
    let (is_error, refused) = app
        .tool(Some(&guest.token), "quoteReservation", stay(5, 7))
        .await;
    assert!(is_error, "{refused}");
    assert!(refused.to_string().contains('3'), "{refused}");
    let (is_error, refused) = app
        .tool(Some(&guest.token), "createReservation", stay(5, 7))
        .await;
    assert!(is_error, "{refused}");
    let (is_error, booked) = app
        .tool(Some(&guest.token), "createReservation", stay(5, 8))
        .await;
    assert!(!is_error, "{booked}");
    assert_eq!(
        booked["totalPrice"].as_f64().map(|t| t > 450.0),
        Some(true),
        "{booked}"
    );
}
