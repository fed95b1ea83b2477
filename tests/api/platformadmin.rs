//! Platform admin: the audit log (enriched rows, admin-only reads, admin-recorded events,
//! append-only), localization settings and their enforcement, admin dispute actions and
//! financial reports computed from the ledger — each from the allowed and the refused side, over
//! REST and MCP against real Postgres.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::*;
use crate::helpers::*;

const PA: &str = "/platformadmin-api/v1";

fn id_of(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}"))).unwrap()
}

/// Audit rows about `object`, oldest first, as an admin reads them over REST.
async fn audit_rows(app: &TestApp, admin: &TestUser, query: &str) -> Vec<Value> {
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("{PA}/auditlogs?{query}&pageRowCount=100"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let mut rows = body["auditLogs"].as_array().unwrap().clone();
    rows.reverse();
    rows
}

#[tokio::test]
async fn audit_rows_say_who_how_and_what_changed_and_only_admins_read_them() {
    let app = TestApp::spawn().await;
    let host = app.user("audit-host@haven.test").await;
    let admin = app.user_with_role("audit-admin@haven.test", "admin").await;

    // A change over REST with an access token, one over MCP with an API key.
    let listing = listing(&app, &host, json!({})).await;
    let (_, key) = app
        .tool(
            Some(&host.token),
            "createApiKey",
            json!({ "description": "bot" }),
        )
        .await;
    let secret = key["key"].as_str().unwrap().to_string();
    let (is_error, _) = app
        .tool(
            Some(&secret),
            "updateListing",
            json!({ "listingId": listing, "pricePerNight": 120 }),
        )
        .await;
    assert!(!is_error);

    let rows = audit_rows(&app, &admin, &format!("objectId={listing}")).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (created, updated) = (&rows[0], &rows[1]);
    assert_eq!(created["operation"], "createListing");
    assert_eq!(created["face"], "rest");
    assert_eq!(created["credentialKind"], "session");
    assert_eq!(created["performedBy"], host.id.to_string());
    assert!(created["requestId"].as_str().is_some_and(|r| !r.is_empty()));
    assert_eq!(created["changes"]["operation"], "insert");
    assert_eq!(
        created["changes"]["fields"]["title"]["after"],
        "Sea view loft"
    );
    assert_eq!(updated["operation"], "updateListing");
    assert_eq!(updated["face"], "mcp");
    assert_eq!(updated["credentialKind"], "apiKey");
    assert_eq!(updated["apiKeyId"], key["id"]);
    let price = &updated["changes"]["fields"]["price_per_night"];
    assert_eq!(
        (price["before"].as_i64(), price["after"].as_i64()),
        (Some(10000), Some(12000)),
        "{updated}"
    );
    // Personal values only say that they changed.
    let (_, _) = app
        .tool(
            Some(&host.token),
            "updateProfile",
            json!({ "userId": host.id, "bio": "call me on 555 0100 200" }),
        )
        .await;
    let rows = audit_rows(
        &app,
        &admin,
        &format!("objectId={}&actionType=updateProfile", host.id),
    )
    .await;
    assert_eq!(
        rows[0]["changes"]["fields"]["bio"]["after"],
        "(personal data, not shown)"
    );

    // Filters: performer, partial action, date; a bad date names the field.
    let mine = audit_rows(
        &app,
        &admin,
        &format!("performedBy={}&actionType=LISTING", host.id),
    )
    .await;
    assert_eq!(mine.len(), 2);
    assert_eq!(
        audit_rows(&app, &admin, "occurredAt=$today&actionObject=listing")
            .await
            .len(),
        2
    );
    assert_eq!(
        audit_rows(&app, &admin, "occurredAt=$lt-2000-01-01")
            .await
            .len(),
        0
    );
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("{PA}/auditlogs?occurredAt=yesterday"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "occurredAt");

    // getAuditLog: admins only, over both faces.
    let row_id = created["id"].as_str().unwrap();
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("{PA}/auditlogs/{row_id}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["auditLog"]["operation"], "createListing");
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("{PA}/auditlogs/{row_id}"),
            Some(&host.token),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "admin");
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("{PA}/auditlogs"),
            Some(&host.token),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "admin");
    let (is_error, text) = app
        .tool(Some(&host.token), "listAuditLogs", json!({}))
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("admin"),
        "{text}"
    );

    // createAuditLog: admins record events; the server sets who, where and when.
    let before = app.count("platformadmin.audit_logs").await;
    let (is_error, text) = app
        .tool(
            Some(&host.token),
            "createAuditLog",
            json!({ "actionObject": "user", "actionType": "phoneCall" }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("admin"),
        "{text}"
    );
    let (s, body) = app
        .rest(
            Method::POST,
            &format!("{PA}/auditlogs"),
            Some(&admin.token),
            Some(json!({ "actionObject": "user", "actionType": "phoneCall", "performedBy": host.id })),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "performedBy");
    assert_eq!(
        app.count("platformadmin.audit_logs").await,
        before,
        "nothing written"
    );
    let (s, body) = app
        .rest(
            Method::POST,
            &format!("{PA}/auditlogs"),
            Some(&admin.token),
            Some(
                json!({ "actionObject": "user", "actionType": "phoneCall", "objectId": host.id,
                          "details": { "summary": "verified identity by phone" } }),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let row = &body["auditLog"];
    assert_eq!(row["performedBy"], admin.id.to_string());
    assert_eq!(row["recordedByAdmin"], true);
    assert_eq!(row["face"], "rest");
    assert_eq!(row["details"]["summary"], "verified identity by phone");
    assert_eq!(
        app.count("platformadmin.audit_logs").await,
        before + 1,
        "one row, not one for the event and one for the call"
    );

    // The trail is append-only: the database refuses to rewrite or remove a row.
    for statement in [
        "UPDATE platformadmin.audit_logs SET action_type = 'nothing'",
        "UPDATE platformadmin.audit_logs SET ip_address = NULL",
        "DELETE FROM platformadmin.audit_logs",
    ] {
        let err = sqlx::query(statement).execute(&app.db).await.unwrap_err();
        assert!(
            err.to_string().contains("append-only"),
            "{statement}: {err}"
        );
    }
    assert_eq!(app.count("platformadmin.audit_logs").await, before + 1);
}

/// Sends a GET with an `Accept-Language` header; returns the body.
async fn get_with_language(app: &TestApp, path: &str, language: &str) -> Value {
    let resp = app
        .http
        .get(format!("{}{path}", app.base))
        .header("accept-language", language)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn localization_settings_decide_which_languages_and_currencies_are_accepted() {
    let app = TestApp::spawn().await;
    let host = app.user("l10n-host@haven.test").await;
    let admin = app.user_with_role("l10n-admin@haven.test", "admin").await;
    let listing = listing(&app, &host, json!({})).await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/propertycatalog-api/v1/listinglocaletexts",
            Some(&host.token),
            Some(json!({ "listingId": listing, "languageCode": "de",
                          "localizedTitle": "Loft mit Meerblick", "localizedDescription": "Hell." })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let path = format!("/propertycatalog-api/v1/listings/{listing}");
    // No setting in effect: the caller's language as sent (no French text: the base title).
    assert_eq!(
        get_with_language(&app, &path, "fr").await["listing"]["title"],
        "Sea view loft"
    );

    // Only admins configure; anyone may read.
    let (is_error, text) = app
        .tool(
            Some(&host.token),
            "createLocalizationSetting",
            json!({ "languageCode": "en", "currencyCode": "EUR", "isCurrencyActive": true }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("admin"),
        "{text}"
    );
    assert_eq!(app.count("platformadmin.localization_settings").await, 0);
    for (language, currency, active, position) in [("de", "EUR", true, 0), ("en", "GBP", false, 1)]
    {
        let (s, body) = app
            .rest(
                Method::POST,
                &format!("{PA}/localizationsettings"),
                Some(&admin.token),
                Some(json!({ "languageCode": language, "currencyCode": currency,
                              "isCurrencyActive": active, "position": position })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{body}");
        assert_eq!(body["localizationSetting"]["inEffect"], true);
    }
    let (s, body) = app
        .rest(
            Method::POST,
            &format!("{PA}/localizationsettings"),
            Some(&admin.token),
            Some(json!({ "languageCode": "de", "currencyCode": "eur", "isCurrencyActive": true })),
        )
        .await;
    assert_error(s, &body, StatusCode::CONFLICT, "already configured");
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("{PA}/localizationsettings?isCurrencyActive=true"),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        field_of(&body["localizationSettings"], "languageCode"),
        ["de"]
    );

    // Accept-Language falls back along the supported languages: French is not one, so German.
    assert_eq!(
        get_with_language(&app, &path, "fr").await["listing"]["title"],
        "Loft mit Meerblick"
    );

    // Unsupported codes are refused with the field named, and nothing is written.
    let listings = app.count("catalog.listings").await;
    for (changes, field) in [
        (json!({ "currency": "USD" }), "currency"),
        (json!({ "currency": "GBP" }), "currency"),
        (
            json!({ "languagesSupported": ["de", "fr"] }),
            "languagesSupported[1]",
        ),
    ] {
        let mut body = json!({
            "title": "Flat", "description": "A flat.", "address": "2 Rua", "propertyType": "apartment",
            "location": { "city": "Lisbon", "country": "PT" }, "approvalType": "instant",
            "pricePerNight": 80, "currency": "EUR", "maxGuests": 2, "isPublished": true
        });
        body.as_object_mut()
            .unwrap()
            .extend(changes.as_object().unwrap().clone());
        let (s, b) = app
            .rest(
                Method::POST,
                "/propertycatalog-api/v1/listings",
                Some(&host.token),
                Some(body),
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, field);
        assert!(
            b["message"].as_str().unwrap().contains("not a supported"),
            "{b}"
        );
    }
    assert_eq!(app.count("catalog.listings").await, listings);
    let (is_error, text) = app
        .tool(
            Some(&host.token),
            "updateListing",
            json!({ "listingId": listing, "currency": "USD" }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("`currency`"),
        "{text}"
    );
    let (is_error, text) = app
        .tool(
            Some(&host.token),
            "createListingLocaleText",
            json!({ "listingId": listing, "languageCode": "fr", "localizedTitle": "Loft",
                    "localizedDescription": "Clair." }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("`languageCode`"),
        "{text}"
    );
    let (s, b) = app
        .rest(
            Method::POST,
            "/auth-api/v1/registeruser",
            None,
            Some(
                json!({ "email": "fr@haven.test", "password": "password123", "fullname": "Fr",
                          "preferredLanguage": "fr" }),
            ),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "preferredLanguage");
    let (is_error, text) = app
        .tool(
            Some(&host.token),
            "updateProfile",
            json!({ "userId": host.id, "preferredLanguage": "fr" }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("preferredLanguage"),
        "{text}"
    );
    // A supported language (by primary subtag) is accepted.
    let (is_error, me) = app
        .tool(
            Some(&host.token),
            "updateProfile",
            json!({ "userId": host.id, "preferredLanguage": "en-GB" }),
        )
        .await;
    assert!(!is_error, "{me}");

    // Retiring a setting lifts what it allowed.
    let (_, list) = app
        .tool(
            None,
            "listLocalizationSettings",
            json!({ "languageCode": "de" }),
        )
        .await;
    let de = list["localizationSettings"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (is_error, retired) = app
        .tool(
            Some(&admin.token),
            "updateLocalizationSetting",
            json!({ "localizationSettingId": de, "effectiveTo": "2001-01-01T00:00:00Z" }),
        )
        .await;
    assert!(!is_error, "{retired}");
    assert_eq!(retired["inEffect"], false);
    let (is_error, text) = app
        .tool(
            Some(&host.token),
            "createListingLocaleText",
            json!({ "listingId": listing, "languageCode": "de-AT", "localizedTitle": "Loft",
                    "localizedDescription": "Hell." }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("supported languages: en"),
        "{text}"
    );
}

/// A paid 3-night stay of `guest` at `listing` starting `from` days ahead; returns its id.
async fn paid_stay(app: &TestApp, guest: &TestUser, listing: Uuid, from: i64) -> Uuid {
    let id = booked(app, guest, listing, from, 3).await;
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/bookingmanagement-api/v1/startreservationpayment/{id}"),
            Some(&guest.token),
            Some(json!({ "paymentUserParams": { "paymentMethodId": "pm_card_visa" } })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["bookingStatus"], "confirmed", "{body}");
    id
}

#[tokio::test]
async fn admin_dispute_actions_drive_the_dispute_and_its_timeline() {
    let app = TestApp::spawn().await;
    let host = app.user("d-host@haven.test").await;
    let guest = app.user("d-guest@haven.test").await;
    let admin = app.user_with_role("d-admin@haven.test", "admin").await;
    let listing = listing(&app, &host, json!({})).await;
    let stay = paid_stay(&app, &guest, listing, 20).await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/bookingmanagement-api/v1/disputes",
            Some(&guest.token),
            Some(json!({ "reservationId": stay, "issueType": "cleanliness", "description": "Dirty." })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let dispute = id_of(&body["dispute"]);

    // Non-admins are refused, and nothing is written.
    for who in [&guest, &host] {
        let (s, b) = app
            .rest(
                Method::POST,
                &format!("{PA}/admindisputeactions"),
                Some(&who.token),
                Some(json!({ "disputeId": dispute, "actionTaken": "resolve" })),
            )
            .await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
        let (s, b) = app
            .rest(
                Method::GET,
                &format!("{PA}/admindisputeactions"),
                Some(&who.token),
                None,
            )
            .await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
    }
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{PA}/admindisputeactions"),
            Some(&admin.token),
            Some(json!({ "disputeId": dispute, "actionTaken": "settle" })),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "actionTaken");
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{PA}/admindisputeactions"),
            Some(&admin.token),
            Some(json!({ "disputeId": dispute, "actionTaken": "review", "refundApproved": true })),
        )
        .await;
    assert_error(s, &b, StatusCode::BAD_REQUEST, "refundApproved");
    assert_eq!(app.count("platformadmin.admin_dispute_actions").await, 0);

    // An admin resolves the pending dispute with a refund: review, then resolution.
    let (is_error, action) = app
        .tool(
            Some(&admin.token),
            "createAdminDisputeAction",
            json!({ "disputeId": dispute, "actionTaken": "resolve", "refundApproved": true,
                    "notes": "Photos confirm it.", "outcome": "full refund" }),
        )
        .await;
    assert!(!is_error, "{action}");
    assert_eq!(action["adminId"], admin.id.to_string());
    assert_eq!(action["resolutionBefore"], "pending");
    assert_eq!(action["resolutionAfter"], "resolved");
    let (_, d) = app
        .tool(
            Some(&admin.token),
            "getDispute",
            json!({ "disputeId": dispute }),
        )
        .await;
    assert_eq!(d["resolutionStatus"], "resolved");
    assert_eq!(d["refundApproved"], true);
    let (_, r) = app
        .tool(
            Some(&guest.token),
            "getReservation",
            json!({ "reservationId": stay }),
        )
        .await;
    assert_eq!(r["disputeStatus"], "resolved");
    assert_eq!(r["refundAmount"], r["totalPrice"], "{r}");
    let kinds = activity_kinds(&app, stay).await;
    for kind in [
        "dispute_resolution",
        "refund_issued",
        "admin_dispute_action",
    ] {
        assert!(kinds.contains(&kind.to_string()), "{kind} in {kinds:?}");
    }
    let rows = audit_rows(
        &app,
        &admin,
        &format!("objectId={}", action["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["actionType"], "createAdminDisputeAction");
    assert_eq!(rows[0]["performedBy"], admin.id.to_string());

    // A closed dispute takes notes only.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{PA}/admindisputeactions"),
            Some(&admin.token),
            Some(json!({ "disputeId": dispute, "actionTaken": "reject" })),
        )
        .await;
    assert_error(s, &b, StatusCode::UNPROCESSABLE_ENTITY, "closed");
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{PA}/admindisputeactions"),
            Some(&admin.token),
            Some(json!({ "disputeId": dispute, "actionTaken": "note", "notes": "Guest thanked us." })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{PA}/admindisputeactions?disputeId={dispute}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        field_of(&b["adminDisputeActions"], "actionTaken"),
        ["note", "resolve"]
    );

    // Actions are append-only.
    let err = sqlx::query("UPDATE platformadmin.admin_dispute_actions SET outcome = 'none'")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("immutable"), "{err}");
}

#[tokio::test]
async fn financial_reports_are_computed_from_the_ledger_and_never_change() {
    let app = TestApp::spawn().await;
    let host = app.user("f-host@haven.test").await;
    let guest = app.user("f-guest@haven.test").await;
    let admin = app.user_with_role("f-admin@haven.test", "admin").await;
    let lisbon = listing(&app, &host, json!({})).await;
    let porto = listing(
        &app,
        &host,
        json!({ "location": { "city": "Porto", "country": "PT" }, "cityTaxPercent": 2 }),
    )
    .await;
    let kept = paid_stay(&app, &guest, lisbon, 10).await;
    let also = paid_stay(&app, &guest, porto, 10).await;
    let refunded = paid_stay(&app, &guest, lisbon, 30).await;
    let (s, body) = act(&app, &host, refunded, "cancel", json!({})).await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // What the report must say, from the reservations' own price breakdowns (in cents).
    let cents = |v: &Value| (v.as_f64().unwrap() * 100.0).round() as i64;
    let mut gross = 0;
    let mut fees = 0;
    let mut platform = 0;
    let mut payouts = 0;
    let mut tax = std::collections::BTreeMap::<String, i64>::new();
    for (id, city) in [(kept, "Lisbon"), (also, "Porto"), (refunded, "Lisbon")] {
        let (_, r) = app
            .tool(
                Some(&guest.token),
                "getReservation",
                json!({ "reservationId": id }),
            )
            .await;
        let q = &r["priceBreakdown"];
        gross += cents(&r["totalPrice"]);
        fees += cents(&q["serviceFee"]);
        platform += cents(&q["platformFee"]);
        payouts += cents(&q["hostPayout"]);
        *tax.entry(city.to_string()).or_default() += cents(&q["cityTax"]);
    }
    let (_, r) = app
        .tool(
            Some(&guest.token),
            "getReservation",
            json!({ "reservationId": refunded }),
        )
        .await;
    let refunds = cents(&r["refundAmount"]);
    assert!(refunds > 0);

    // Refused: non-admins, client-sent totals, bad periods — nothing written.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{PA}/financialreports"),
            Some(&host.token),
            Some(json!({ "period": "2027" })),
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{PA}/financialreports"),
            Some(&guest.token),
            None,
        )
        .await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
    for (body, needle) in [
        (
            json!({ "period": "2027", "totalRevenue": 1 }),
            "totalRevenue",
        ),
        (
            json!({ "period": "2027", "cityTaxByLocation": {} }),
            "computed by the server",
        ),
        (json!({ "period": "2027-13" }), "period"),
    ] {
        let (s, b) = app
            .rest(
                Method::POST,
                &format!("{PA}/financialreports"),
                Some(&admin.token),
                Some(body),
            )
            .await;
        assert_error(s, &b, StatusCode::BAD_REQUEST, needle);
    }
    assert_eq!(app.count("platformadmin.financial_reports").await, 0);

    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let (is_error, report) = app
        .tool(
            Some(&admin.token),
            "createFinancialReport",
            json!({ "period": month, "currency": "EUR" }),
        )
        .await;
    assert!(!is_error, "{report}");
    let figures = &report["byCurrency"][0];
    assert_eq!(report["byCurrency"].as_array().unwrap().len(), 1);
    assert_eq!(figures["currency"], "EUR");
    assert_eq!(cents(&figures["grossBookings"]), gross);
    assert_eq!(cents(&figures["guestFees"]), fees);
    assert_eq!(cents(&figures["totalRevenue"]), platform);
    assert_eq!(cents(&figures["hostCommission"]), platform - fees);
    assert_eq!(cents(&figures["totalPayouts"]), payouts);
    assert_eq!(cents(&figures["totalRefunds"]), refunds);
    assert_eq!(cents(&report["totalRefunds"]), refunds);
    assert_eq!(figures["paymentCount"], 3);
    assert_eq!(figures["refundCount"], 1);
    for (city, amount) in &tax {
        assert_eq!(cents(&report["cityTaxByLocation"][city]), *amount, "{city}");
    }
    assert_eq!(cents(&figures["cityTax"]), tax.values().sum::<i64>());

    // A period without payments is a report of nothing; get and list read them back.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{PA}/financialreports"),
            Some(&admin.token),
            Some(json!({ "period": "2001-Q1" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["financialReport"]["byCurrency"], json!([]));
    let id = report["id"].as_str().unwrap();
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{PA}/financialreports/{id}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["financialReport"]["byCurrency"], report["byCurrency"]);
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{PA}/financialreports?period={month}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["paging"]["totalRowCount"], 1);

    // Reports and the ledger they come from never change.
    for (statement, needle) in [
        (
            "UPDATE platformadmin.financial_reports SET period = 'x'",
            "immutable",
        ),
        ("DELETE FROM platformadmin.financial_reports", "immutable"),
        (
            "UPDATE booking.payment_records SET amount_paid = 0",
            "append-only",
        ),
        ("DELETE FROM booking.payment_records", "append-only"),
    ] {
        let err = sqlx::query(statement).execute(&app.db).await.unwrap_err();
        assert!(err.to_string().contains(needle), "{statement}: {err}");
    }
}

#[tokio::test]
async fn an_agent_runs_changes_are_audited_with_the_run_and_the_agent_face() {
    let (fake, base) = crate::scripted_llm::fake_provider(vec![]).await;
    let mut config = test_config();
    config.llm_base_url = Some(base);
    let app = TestApp::spawn_with(config).await;
    let host = app.user("a-host@haven.test").await;
    let guest = app.user("a-guest@haven.test").await;
    let admin = app.user_with_role("a-admin@haven.test", "admin").await;
    let listing_id = listing(&app, &host, json!({})).await;
    fake.push([
        crate::scripted_llm::tool_turn(
            "call_1",
            "createReservation",
            json!({ "listingId": listing_id, "checkIn": day(10), "checkOut": day(13), "guestCount": 2 }),
            (100, 20),
        ),
        crate::scripted_llm::text_turn("Booked.", (100, 5)),
    ]);
    let (s, run) = app
        .rest(
            Method::POST,
            "/agenthub-api/v1/agents/guest-booking-assistant/run",
            Some(&guest.token),
            Some(json!({ "input": "Book the loft" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{run}");
    assert_eq!(run["status"], "success", "{run}");
    let execution = run["executionId"].as_str().unwrap();
    let rows = audit_rows(&app, &admin, &format!("agentExecutionId={execution}")).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["operation"], "createReservation");
    assert_eq!(rows[0]["face"], "agent");
    assert_eq!(rows[0]["performedBy"], guest.id.to_string());
    assert_eq!(rows[0]["credentialKind"], "session");
    assert_eq!(
        rows[0]["changes"]["fields"]["booking_status"]["after"],
        "pending"
    );
    assert_eq!(audit_rows(&app, &admin, "face=agent").await.len(), 1);
}
