//! The amenity dictionary (admin-curated, public reads) and listing translations (host-written,
//! readable wherever the listing is), over REST and MCP.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::catalog::{
    cast, delete, delete_and_check_gone, get, id_of, listing_body, patch, patch_is_stale,
    public_and_draft,
};
use crate::helpers::*;

const AMENITIES: &str = "/propertycatalog-api/v1/listingamenities";
const TEXTS: &str = "/propertycatalog-api/v1/listinglocaletexts";

#[tokio::test]
async fn admins_curate_amenities_everyone_reads_them() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("boss@haven.test", "admin").await;
    let user = app.user("user@haven.test").await;

    let (s, b) = app
        .rest(
            Method::POST,
            AMENITIES,
            Some(&admin.token),
            Some(json!({ "name": "Wifi", "iconUrl": "https://icons.test/wifi.svg" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let wifi = b["listingAmenity"].clone();
    assert_eq!(wifi["name"], "Wifi");
    assert_eq!(wifi["_owner"], json!(admin.id));
    let id = id_of(&wifi);
    let (err, pool) = app
        .tool(
            Some(&admin.token),
            "createListingAmenity",
            json!({ "name": "Pool" }),
        )
        .await;
    assert!(!err, "{pool}");

    let count = app.count("catalog.amenities").await;
    let (s, b) = app
        .rest(
            Method::POST,
            AMENITIES,
            Some(&admin.token),
            Some(json!({ "name": "  WIFI " })),
        )
        .await;
    assert_error(s, &b, StatusCode::CONFLICT, "already exists");
    let (s, _) = app
        .rest(
            Method::POST,
            AMENITIES,
            Some(&user.token),
            Some(json!({ "name": "Sauna" })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .rest(
            Method::POST,
            AMENITIES,
            None,
            Some(json!({ "name": "Sauna" })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, b) = app
        .rest(
            Method::POST,
            AMENITIES,
            Some(&admin.token),
            Some(json!({ "name": "Sauna", "iconUrl": "javascript:alert(1)" })),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "iconUrl");
    assert_eq!(app.count("catalog.amenities").await, count);

    // Public reads.
    let amenity_path = format!("{AMENITIES}/{id}");
    let (s, b) = get(&app, &amenity_path, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        b["listingAmenity"]["iconUrl"],
        "https://icons.test/wifi.svg"
    );
    let (s, b) = get(&app, AMENITIES, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let names = field_of(&b["listingAmenities"], "name");
    assert_eq!(names, vec!["Pool", "Wifi"]);
    let (err, got) = app
        .tool(None, "listListingAmenities", json!({ "name": "wi" }))
        .await;
    assert!(!err, "{got}");
    assert_eq!(got["listingAmenities"].as_array().unwrap().len(), 1);

    // Update: icon only, admins only, versioned.
    let (s, b) = patch(
        &app,
        &amenity_path,
        &admin.token,
        json!({ "name": "Wi-Fi" }),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "name");
    let (s, _) = patch(
        &app,
        &amenity_path,
        &user.token,
        json!({ "iconUrl": "https://evil.test/x.svg" }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, b) = patch(
        &app,
        &amenity_path,
        &admin.token,
        json!({ "iconUrl": "https://icons.test/wifi2.svg", "recordVersion": 1 }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["listingAmenity"]["recordVersion"], 2);
    patch_is_stale(
        &app,
        &amenity_path,
        &admin.token,
        json!({ "iconUrl": "https://icons.test/old.svg", "recordVersion": 1 }),
    )
    .await;

    // Delete: soft, then gone from reads; the name is free again.
    let (s, _) = delete(&app, &amenity_path, &user.token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let path = format!("{AMENITIES}/{id}");
    delete_and_check_gone(&app, &path, &admin.token, "listingAmenity").await;
    let (s, b) = app
        .rest(
            Method::POST,
            AMENITIES,
            Some(&admin.token),
            Some(json!({ "name": "wifi" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // A deleted amenity can no longer be put on a listing.
    let (s, b) = app
        .rest(
            Method::POST,
            "/propertycatalog-api/v1/listings",
            Some(&user.token),
            Some(listing_body("Lisbon", json!({ "amenityIds": [id] }))),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "amenityIds");
}

async fn add_text(app: &TestApp, token: &str, listing: &Value, code: &str) -> (StatusCode, Value) {
    app.rest(
        Method::POST,
        TEXTS,
        Some(token),
        Some(json!({ "listingId": listing["id"], "languageCode": code,
                     "localizedTitle": format!("Title {code}"),
                     "localizedDescription": format!("Description {code}") })),
    )
    .await
}

#[tokio::test]
async fn hosts_translate_their_listings() {
    let app = TestApp::spawn().await;
    let (host, other, admin) = cast(&app).await;
    let (listing, draft) = public_and_draft(&app, &host, json!({})).await;

    let (s, b) = add_text(&app, &host.token, &listing, "pt-BR").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let text = b["listingLocaleText"].clone();
    assert_eq!(text["languageCode"], "pt-br");
    assert_eq!(text["listingId"], listing["id"]);
    let tid = id_of(&text);

    let count = app.count("catalog.listing_locale_texts").await;
    let (s, b) = add_text(&app, &host.token, &listing, "PT-br").await;
    assert_error(s, &b, StatusCode::CONFLICT, "already has a text");
    for bad in ["english", "e", "de_DE", "de-", "x-"] {
        let (s, b) = add_text(&app, &host.token, &listing, bad).await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, "languageCode");
    }
    let (s, b) = add_text(&app, &other.token, &listing, "fr").await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "host");
    let (s, _) = add_text(&app, &other.token, &draft, "fr").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(app.count("catalog.listing_locale_texts").await, count);

    // The admin may add one; over MCP too.
    let (err, fr) = app
        .tool(
            Some(&admin.token),
            "createListingLocaleText",
            json!({ "listingId": listing["id"], "languageCode": "fr",
                    "localizedTitle": "Appartement", "localizedDescription": "Lumineux" }),
        )
        .await;
    assert!(!err, "{fr}");
    let (s, b) = add_text(&app, &host.token, &draft, "de").await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let draft_text = id_of(&b["listingLocaleText"]);

    // Reads: public for the published listing, host/admin only for the draft.
    let text_path = format!("{TEXTS}/{tid}");
    let (s, b) = get(&app, &text_path, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["listingLocaleText"]["localizedTitle"], "Title pt-BR");
    let draft_text_path = format!("{TEXTS}/{draft_text}");
    let (s, _) = get(&app, &draft_text_path, Some(&other.token)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = get(&app, &draft_text_path, Some(&host.token)).await;
    assert_eq!(s, StatusCode::OK);
    let codes = |b: &Value| -> Vec<String> {
        b["listingLocaleTexts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["languageCode"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, b) = get(&app, TEXTS, None).await;
    assert_eq!(codes(&b), vec!["fr", "pt-br"]);
    let (_, b) = get(&app, TEXTS, Some(&admin.token)).await;
    assert_eq!(codes(&b).len(), 3);
    let (_, b) = app
        .rest(
            Method::GET,
            &format!(
                "{TEXTS}?listingId={}&languageCode=PT",
                listing["id"].as_str().unwrap()
            ),
            None,
            None,
        )
        .await;
    assert_eq!(codes(&b), vec!["pt-br"]);
    let (s, b) = get(&app, &format!("{TEXTS}?listingId=nope"), None).await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "listingId");

    // Update and delete: host or admin, versioned; language is fixed.
    let (s, b) = patch(
        &app,
        &text_path,
        &host.token,
        json!({ "languageCode": "es" }),
    )
    .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "languageCode");
    let (s, b) = patch(
        &app,
        &text_path,
        &other.token,
        json!({ "localizedTitle": "Hacked" }),
    )
    .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "host");
    let (s, b) = patch(
        &app,
        &text_path,
        &host.token,
        json!({ "localizedTitle": "Apartamento", "recordVersion": 1 }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["listingLocaleText"]["localizedTitle"], "Apartamento");
    assert_eq!(
        b["listingLocaleText"]["localizedDescription"],
        "Description pt-BR"
    );
    patch_is_stale(
        &app,
        &text_path,
        &host.token,
        json!({ "localizedTitle": "Old", "recordVersion": 1 }),
    )
    .await;
    let (s, _) = delete(&app, &text_path, &other.token).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let path = format!("{TEXTS}/{tid}");
    delete_and_check_gone(&app, &path, &host.token, "listingLocaleText").await;
    let (s, b) = add_text(&app, &host.token, &listing, "pt-br").await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "a deleted language can be added again: {b}"
    );
}
