//! Booking administration: disputes and their lifecycle, the append-only payment ledger, payment
//! tickets, payment customers/methods and the reservation activity timeline — each tested from
//! the allowed and the refused side.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const BM: &str = "/bookingmanagement-api/v1";

/// A REST call under the booking prefix as `who`.
async fn bm(
    app: &TestApp,
    method: Method,
    path: &str,
    who: &TestUser,
    body: Option<Value>,
) -> (StatusCode, Value) {
    app.rest(method, &format!("{BM}{path}"), Some(&who.token), body)
        .await
}

/// One refused call: method, path under the prefix, caller, body, expected status, message part.
type Refusal<'a> = (
    Method,
    String,
    &'a TestUser,
    Option<Value>,
    StatusCode,
    &'a str,
);

/// Asserts that every call in `cases` is refused as stated.
async fn expect_refused(app: &TestApp, cases: Vec<Refusal<'_>>) {
    for (method, path, who, body, status, needle) in cases {
        let (s, b) = bm(app, method, &path, who, body).await;
        assert_error(s, &b, status, needle);
    }
}

/// `paging.totalRowCount` of a list call under the prefix as `who`.
async fn total(app: &TestApp, path: &str, who: &TestUser) -> i64 {
    let (s, b) = bm(app, Method::GET, path, who, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b["paging"]["totalRowCount"].as_i64().unwrap()
}

/// The four people of a booking dispute.
struct Cast {
    guest: TestUser,
    host: TestUser,
    admin: TestUser,
    stranger: TestUser,
}

async fn cast(app: &TestApp) -> Cast {
    Cast {
        guest: app.user("guest@haven.test").await,
        host: app.user("host@haven.test").await,
        admin: app.user_with_role("admin@haven.test", "admin").await,
        stranger: app.user("stranger@haven.test").await,
    }
}

/// The reservation's stored (disputeStatus, recordVersion).
async fn dispute_status(app: &TestApp, reservation: Uuid) -> (String, i32) {
    sqlx::query_as("SELECT dispute_status, record_version FROM booking.reservations WHERE id = $1")
        .bind(reservation)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// The timeline as `token` reads it over REST, newest first.
async fn timeline(app: &TestApp, token: &str, reservation: Uuid) -> Vec<Value> {
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("{BM}/reservations/{reservation}/activities"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["reservationActivities"].as_array().unwrap().clone()
}

fn kinds(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

async fn admin_record(app: &TestApp, admin: &TestUser, reservation: Uuid) -> Value {
    let (s, body) = bm(
        app,
        Method::POST,
        "/paymentrecords",
        admin,
        Some(json!({
            "reservationId": reservation, "paymentIntentId": "pi_manual_1",
            "currency": "eur", "amountPaid": 300.0, "paymentStatus": "paid",
            "platformFee": 30.5, "payoutAmountHost": 291.0, "cityTax": 0
        })),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    body["paymentRecord"].clone()
}

#[tokio::test]
async fn all_booking_admin_operations_are_registered() {
    let registry = haven::registry();
    for name in [
        "listReservationActivities",
        "createPaymentRecord",
        "getPaymentRecord",
        "listPaymentRecords",
        "getReservationPayment",
        "listReservationPayments",
        "createReservationPayment",
        "updateReservationPayment",
        "deleteReservationPayment",
        "getReservationPaymentByOrderId",
        "getReservationPaymentByPaymentId",
        "getPaymentCustomerByUserId",
        "listPaymentCustomers",
        "listPaymentCustomerMethods",
        "createDispute",
        "updateDispute",
        "getDispute",
        "listDisputes",
    ] {
        assert!(registry.get(name).is_some(), "{name} is not registered");
    }
    for gone in [
        "updatePaymentRecord",
        "deletePaymentRecord",
        "deleteDispute",
    ] {
        assert!(registry.get(gone).is_none(), "{gone} must not exist");
    }
}

#[tokio::test]
async fn dispute_lifecycle_drives_reservation_status_and_timeline() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (_, rid) = seed_stay(&app, c.host.id, c.guest.id, "confirmed").await;
    let (_, other_rid) = seed_stay(&app, c.host.id, c.stranger.id, "confirmed").await;
    let record = admin_record(&app, &c.admin, rid).await;
    let other_record = admin_record(&app, &c.admin, other_rid).await;
    let activities_before = app.count("booking.reservation_activities").await;
    let (_, version_before) = dispute_status(&app, rid).await;

    // Server-owned fields are refused by name, foreign payments, strangers (who cannot even see
    // the reservation) and non-party admins too; nothing is written.
    let new = json!({ "reservationId": rid, "issueType": "damage", "description": "Broken lamp" });
    let post = |who, patch: Value, status, needle| {
        let mut body = new.clone();
        body.as_object_mut()
            .unwrap()
            .extend(patch.as_object().unwrap().clone());
        (
            Method::POST,
            "/disputes".to_string(),
            who,
            Some(body),
            status,
            needle,
        )
    };
    let bad = StatusCode::BAD_REQUEST;
    expect_refused(
        &app,
        vec![
            post(&c.guest, json!({ "raisedBy": c.host.id }), bad, "raisedBy"),
            post(
                &c.guest,
                json!({ "resolutionStatus": "resolved" }),
                bad,
                "resolutionStatus",
            ),
            post(
                &c.guest,
                json!({ "reportedAt": "2020-01-01T00:00:00Z" }),
                bad,
                "reportedAt",
            ),
            post(&c.guest, json!({ "adminId": c.admin.id }), bad, "adminId"),
            post(
                &c.guest,
                json!({ "relatedPaymentId": other_record["id"] }),
                bad,
                "relatedPaymentId",
            ),
            post(
                &c.stranger,
                json!({}),
                StatusCode::NOT_FOUND,
                "reservation not found",
            ),
            post(
                &c.admin,
                json!({}),
                StatusCode::FORBIDDEN,
                "guest or the host",
            ),
        ],
    )
    .await;
    assert_eq!(app.count("booking.disputes").await, 0);
    assert_eq!(
        app.count("booking.reservation_activities").await,
        activities_before
    );
    assert_eq!(
        dispute_status(&app, rid).await,
        ("none".into(), version_before)
    );

    // The guest opens a dispute: pending, reservation requested, two timeline entries.
    let mut new = new;
    new["relatedPaymentId"] = record["id"].clone();
    let (s, b) = bm(&app, Method::POST, "/disputes", &c.guest, Some(new)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let dispute = b["dispute"].clone();
    let did = dispute["id"].as_str().unwrap().to_string();
    assert_eq!(dispute["resolutionStatus"], "pending");
    assert_eq!(dispute["resolutionStatus_idx"], 0);
    assert_eq!(dispute["raisedBy"], json!(c.guest.id));
    assert!(dispute["adminId"].is_null() && dispute["reportedAt"].is_string());
    assert_eq!(
        dispute_status(&app, rid).await,
        ("requested".into(), version_before + 1)
    );
    let t = timeline(&app, &c.host.token, rid).await;
    assert_eq!(
        kinds(&t)[..3],
        [
            "dispute_status_changed",
            "dispute_opened",
            "payment_recorded"
        ]
    );
    assert_eq!(
        (t[0]["oldValue"].clone(), t[0]["newValue"].clone()),
        (json!("none"), json!("requested"))
    );
    assert_eq!(t[0]["actorId"], json!(c.guest.id));
    assert_eq!(
        t[1]["newValue"],
        json!({ "disputeId": did, "issueType": "damage" })
    );
    let (s, only) = bm(
        &app,
        Method::GET,
        &format!("/reservations/{rid}/activities?kind=dispute_opened"),
        &c.guest,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(only["paging"]["totalRowCount"], 1);

    // One open dispute per reservation.
    let noise = json!({ "reservationId": rid, "issueType": "noise", "description": "Party" });
    let (s, b) = bm(
        &app,
        Method::POST,
        "/disputes",
        &c.host,
        Some(noise.clone()),
    )
    .await;
    assert_error(s, &b, StatusCode::CONFLICT, "open dispute");
    assert_eq!(app.count("booking.disputes").await, 1);

    // Strangers get 404 on every id-taking operation; lists show them nothing.
    let dispute_path = format!("/disputes/{did}");
    let nf = StatusCode::NOT_FOUND;
    let edit = || Some(json!({ "description": "x" }));
    expect_refused(
        &app,
        vec![
            (
                Method::GET,
                dispute_path.clone(),
                &c.stranger,
                None,
                nf,
                "dispute not found",
            ),
            (
                Method::PATCH,
                dispute_path.clone(),
                &c.stranger,
                edit(),
                nf,
                "dispute not found",
            ),
            (
                Method::GET,
                format!("/reservations/{rid}/activities"),
                &c.stranger,
                None,
                nf,
                "reservation not found",
            ),
        ],
    )
    .await;
    let (s, b) = bm(&app, Method::GET, "/disputes", &c.stranger, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["disputes"], json!([]));

    // The raiser edits while pending; the other party and non-admin status changes are refused.
    let patch = |who, body: Value, status, needle| {
        (
            Method::PATCH,
            dispute_path.clone(),
            who,
            Some(body),
            status,
            needle,
        )
    };
    expect_refused(
        &app,
        vec![
            patch(
                &c.host,
                json!({ "description": "No" }),
                StatusCode::FORBIDDEN,
                "raised",
            ),
            patch(
                &c.guest,
                json!({ "resolutionStatus": "resolved" }),
                StatusCode::FORBIDDEN,
                "only admins",
            ),
        ],
    )
    .await;
    let edit = json!({ "description": "Broken lamp and a torn curtain", "recordVersion": 1 });
    let (s, b) = bm(&app, Method::PATCH, &dispute_path, &c.guest, Some(edit)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["dispute"]["recordVersion"], 2);
    assert_eq!(dispute_status(&app, rid).await.0, "requested");

    // Illegal transitions name both states; refundApproved only with resolved; stale version;
    // only admins can be assigned.
    let unprocessable = StatusCode::UNPROCESSABLE_ENTITY;
    expect_refused(
        &app,
        vec![
            patch(
                &c.admin,
                json!({ "resolutionStatus": "resolved" }),
                unprocessable,
                "from `pending` to `resolved`",
            ),
            patch(
                &c.admin,
                json!({ "resolutionStatus": "reviewing", "refundApproved": true }),
                unprocessable,
                "refundApproved",
            ),
            patch(
                &c.admin,
                json!({ "resolutionStatus": "reviewing", "recordVersion": 1 }),
                StatusCode::CONFLICT,
                "recordVersion",
            ),
            patch(
                &c.admin,
                json!({ "adminId": c.guest.id }),
                StatusCode::BAD_REQUEST,
                "adminId",
            ),
        ],
    )
    .await;

    // An admin takes it into review (over MCP): assigned to the caller, reservation active.
    let (is_error, reviewing) = app
        .tool(
            Some(&c.admin.token),
            "updateDispute",
            json!({ "disputeId": did, "resolutionStatus": "reviewing" }),
        )
        .await;
    assert!(!is_error, "{reviewing}");
    assert_eq!(reviewing["resolutionStatus"], "reviewing");
    assert_eq!(reviewing["adminId"], json!(c.admin.id));
    assert!(reviewing["resolvedAt"].is_null());
    assert_eq!(dispute_status(&app, rid).await.0, "active");
    let t = timeline(&app, &c.guest.token, rid).await;
    assert_eq!(
        kinds(&t)[..2],
        ["dispute_status_changed", "dispute_resolution"]
    );
    assert_eq!(
        (t[0]["oldValue"].clone(), t[0]["newValue"].clone()),
        (json!("requested"), json!("active"))
    );
    assert_eq!(t[1]["newValue"]["resolutionStatus"], "reviewing");
    assert_eq!(t[1]["oldValue"]["resolutionStatus"], "pending");
    assert_eq!(t[1]["actorId"], json!(c.admin.id));

    // Under review the raiser can no longer edit.
    let more = json!({ "description": "More" });
    expect_refused(
        &app,
        vec![patch(&c.guest, more, StatusCode::FORBIDDEN, "reviewing")],
    )
    .await;

    // Resolved with a refund: resolvedAt set, reservation resolved, outcome in the timeline.
    let (s, b) = bm(
        &app,
        Method::PATCH,
        &dispute_path,
        &c.admin,
        Some(json!({ "resolutionStatus": "resolved", "refundApproved": true })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["dispute"]["resolutionStatus_idx"], 2);
    assert_eq!(b["dispute"]["refundApproved"], true);
    assert!(b["dispute"]["resolvedAt"].is_string());
    assert_eq!(dispute_status(&app, rid).await.0, "resolved");
    let t = timeline(&app, &c.host.token, rid).await;
    assert_eq!(
        kinds(&t)[..2],
        ["dispute_status_changed", "dispute_resolution"]
    );
    assert_eq!(t[0]["newValue"], "resolved");
    assert_eq!(t[1]["newValue"]["refundApproved"], true);

    // Closed disputes are final.
    let reject = json!({ "resolutionStatus": "rejected" });
    expect_refused(&app, vec![patch(&c.admin, reject, unprocessable, "closed")]).await;

    // Everyone involved reads it; a new dispute may now be opened, then rejected.
    for who in [&c.guest, &c.host, &c.admin] {
        let (s, b) = bm(&app, Method::GET, &dispute_path, who, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    let (s, b) = bm(&app, Method::POST, "/disputes", &c.host, Some(noise)).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let second = b["dispute"]["id"].as_str().unwrap().to_string();
    assert_eq!(dispute_status(&app, rid).await.0, "requested");
    for status in ["reviewing", "rejected"] {
        let (s, b) = bm(
            &app,
            Method::PATCH,
            &format!("/disputes/{second}"),
            &c.admin,
            Some(json!({ "resolutionStatus": status })),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
    }
    assert_eq!(dispute_status(&app, rid).await.0, "resolved");

    // Lists: filtered, visible to the parties.
    let (s, b) = bm(
        &app,
        Method::GET,
        "/disputes?resolutionStatus=rejected",
        &c.guest,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["disputes"].as_array().unwrap().len(), 1);
    assert_eq!(b["disputes"][0]["raisedBy"], json!(c.host.id));
    let path = format!("/disputes?raisedBy={}", c.guest.id);
    assert_eq!(total(&app, &path, &c.admin).await, 1);
}

#[tokio::test]
async fn payment_records_are_an_append_only_ledger() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (_, rid) = seed_stay(&app, c.host.id, c.guest.id, "confirmed").await;

    // Only admins append; the currency must be the reservation's; the status is the enum.
    for (who, currency, status, code, needle) in [
        (&c.guest, "EUR", "paid", StatusCode::FORBIDDEN, "admin"),
        (&c.admin, "USD", "paid", StatusCode::BAD_REQUEST, "currency"),
        (
            &c.admin,
            "EUR",
            "settled",
            StatusCode::BAD_REQUEST,
            "paymentStatus",
        ),
    ] {
        let body = json!({ "reservationId": rid, "paymentIntentId": "pi_x", "currency": currency,
            "amountPaid": 1, "paymentStatus": status });
        let (s, b) = bm(&app, Method::POST, "/paymentrecords", who, Some(body)).await;
        assert_error(s, &b, code, needle);
    }
    assert_eq!(app.count("booking.payment_records").await, 0);

    let record = admin_record(&app, &c.admin, rid).await;
    let id = record["id"].as_str().unwrap().to_string();
    assert_eq!(record["amountPaid"], 300.0);
    assert_eq!(record["platformFee"], 30.5);
    assert_eq!(record["paymentStatus_idx"], 1);
    assert_eq!(record["currency"], "EUR");
    assert!(record["paymentDate"].is_string());
    let (is_error, refund) = app
        .tool(
            Some(&c.admin.token),
            "createPaymentRecord",
            json!({ "reservationId": rid, "paymentIntentId": "pi_manual_1", "currency": "EUR",
                "amountPaid": 0, "paymentStatus": "refunded", "refundAmount": 120.25,
                "paymentDate": "2030-01-20T10:00:00Z" }),
        )
        .await;
    assert!(!is_error, "{refund}");
    assert_eq!(refund["refundAmount"], 120.25);
    assert_eq!(refund["paymentDate"], "2030-01-20T10:00:00Z");
    let t = timeline(&app, &c.guest.token, rid).await;
    assert_eq!(kinds(&t), ["payment_recorded", "payment_recorded"]);
    assert_eq!(t[0]["newValue"]["paymentRecordId"], refund["id"]);

    // Guest and host read; a stranger cannot tell it exists.
    let path = format!("/paymentrecords/{id}");
    for who in [&c.guest, &c.host, &c.admin] {
        let (s, b) = bm(&app, Method::GET, &path, who, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["paymentRecord"]["id"], json!(id));
    }
    let (s, b) = bm(&app, Method::GET, &path, &c.stranger, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "payment record not found");
    let (s, b) = bm(&app, Method::GET, "/paymentrecords", &c.stranger, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["paymentRecords"], json!([]));
    let (_, b) = bm(
        &app,
        Method::GET,
        "/paymentrecords?paymentStatus=refunded",
        &c.host,
        None,
    )
    .await;
    assert_eq!(b["paymentRecords"].as_array().unwrap().len(), 1);
    assert_eq!(b["paymentRecords"][0]["refundAmount"], 120.25);
    let by_reservation = format!("/paymentrecords?reservationId={rid}");
    let (_, b) = bm(&app, Method::GET, &by_reservation, &c.admin, None).await;
    assert_eq!(b["paging"]["totalRowCount"], 2);
    assert_eq!(b["paymentRecords"][0]["id"], refund["id"], "newest first");
    assert_eq!(b["paymentRecords"][1]["id"], record["id"]);

    // No route changes a record, and the database itself refuses.
    for method in [Method::PATCH, Method::DELETE] {
        let (s, _) = bm(
            &app,
            method.clone(),
            &path,
            &c.admin,
            Some(json!({ "amountPaid": 1 })),
        )
        .await;
        assert!(
            s == StatusCode::NOT_FOUND || s == StatusCode::METHOD_NOT_ALLOWED,
            "{method} answered {s}"
        );
    }
    let err = sqlx::query("UPDATE booking.payment_records SET amount_paid = 1 WHERE id = $1::uuid")
        .bind(&id)
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    let err = sqlx::query("DELETE FROM booking.payment_records")
        .execute(&app.db)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(app.count("booking.payment_records").await, 2);
}

#[tokio::test]
async fn payment_tickets_follow_the_access_matrix() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (_, rid) = seed_stay(&app, c.host.id, c.guest.id, "pending").await;
    let new = json!({ "orderId": rid, "paymentId": "pi_ticket_1", "paymentStatus": "requires_confirmation",
        "statusLiteral": "pending", "redirectUrl": "https://app.haven.test/paid" });

    // Creation is admin-only; the owner, amount and currency come from the reservation.
    let mut forged = new.clone();
    forged["ownerId"] = json!(c.stranger.id);
    let create = "/reservationpayment";
    expect_refused(
        &app,
        vec![
            (
                Method::POST,
                create.to_string(),
                &c.guest,
                Some(new.clone()),
                StatusCode::FORBIDDEN,
                "admin",
            ),
            (
                Method::POST,
                create.to_string(),
                &c.admin,
                Some(forged),
                StatusCode::BAD_REQUEST,
                "ownerId",
            ),
        ],
    )
    .await;
    let (s, b) = bm(&app, Method::POST, create, &c.admin, Some(new.clone())).await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let ticket = b["sys_reservationPayment"].clone();
    let tid = ticket["id"].as_str().unwrap().to_string();
    assert_eq!(ticket["ownerId"], json!(c.guest.id));
    assert_eq!(ticket["amount"], 300.0);
    assert_eq!(ticket["currency"], "EUR");
    assert_eq!(ticket["platform"], "local");
    let (s, b) = bm(&app, Method::POST, create, &c.admin, Some(new)).await;
    assert_error(
        s,
        &b,
        StatusCode::CONFLICT,
        "already has an active payment ticket",
    );
    assert_eq!(app.count("booking.reservation_payments").await, 1);

    // Reads: guest, host and admin by id, order and payment id; strangers get 404 everywhere.
    let reads = [
        format!("/reservationpayment/{tid}"),
        format!("/reservationpaymentbyorderid/{rid}"),
        "/reservationpaymentbypaymentid/pi_ticket_1".to_string(),
    ];
    for path in &reads {
        for who in [&c.guest, &c.host, &c.admin] {
            let (s, b) = bm(&app, Method::GET, path, who, None).await;
            assert_eq!(s, StatusCode::OK, "{path}: {b}");
            assert_eq!(b["sys_reservationPayment"]["id"], json!(tid));
        }
        let (s, b) = bm(&app, Method::GET, path, &c.stranger, None).await;
        assert_error(s, &b, StatusCode::NOT_FOUND, "payment ticket not found");
    }
    let (is_error, text) = app
        .tool(
            Some(&c.stranger.token),
            "getReservationPayment",
            json!({ "sys_reservationPaymentId": tid }),
        )
        .await;
    assert!(is_error && text.as_str().unwrap().contains("not found"));
    for who in [&c.stranger, &c.guest] {
        let (s, b) = bm(
            &app,
            Method::PATCH,
            &reads[0],
            who,
            Some(json!({ "statusLiteral": "paid" })),
        )
        .await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
        let (s, b) = bm(&app, Method::DELETE, &reads[0], who, None).await;
        assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
    }

    // Lists are scoped: the stranger sees nothing, the host sees the listing's ticket.
    let list = "/reservationpayments?paymentId=TICKET".to_string();
    let (_, b) = bm(&app, Method::GET, &list, &c.stranger, None).await;
    assert_eq!(b["sys_reservationPayments"], json!([]));
    for who in [&c.host, &c.guest, &c.admin] {
        assert_eq!(total(&app, &list, who).await, 1);
    }
    let path = format!("/reservationpayments?ownerId={}", c.host.id);
    assert_eq!(total(&app, &path, &c.admin).await, 0);

    // Admin update (optimistic concurrency) and soft delete.
    let (s, b) = bm(
        &app,
        Method::PATCH,
        &reads[0],
        &c.admin,
        Some(json!({ "statusLiteral": "paid", "recordVersion": 9 })),
    )
    .await;
    assert_error(s, &b, StatusCode::CONFLICT, "recordVersion");
    let (s, b) = bm(
        &app,
        Method::PATCH,
        &reads[0],
        &c.admin,
        Some(json!({ "statusLiteral": "paid", "paymentStatus": "succeeded", "recordVersion": 1 })),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["sys_reservationPayment"]["statusLiteral"], "paid");
    assert_eq!(
        b["sys_reservationPayment"]["redirectUrl"],
        "https://app.haven.test/paid"
    );
    assert_eq!(b["sys_reservationPayment"]["recordVersion"], 2);
    let (s, b) = bm(&app, Method::DELETE, &reads[0], &c.admin, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["sys_reservationPayment"]["isActive"], false);
    let (s, _) = bm(&app, Method::GET, &reads[1], &c.guest, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn payment_customers_are_readable_by_self_and_admins() {
    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    sqlx::query(
        "INSERT INTO booking.payment_customers (user_id, customer_id, platform)
         VALUES ($1, 'cus_guest', 'local')",
    )
    .bind(c.guest.id)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO booking.payment_methods (payment_method_id, user_id, customer_id,
            card_holder_name, card_holder_zip, platform, card_info)
         VALUES ('pm_card_visa', $1, 'cus_guest', 'Gina Guest', '1000', 'local',
                 '{\"brand\": \"visa\", \"last4\": \"4242\"}'),
                ('pm_card_mastercard', $1, 'cus_guest', 'Gina Guest', '1000', 'local',
                 '{\"brand\": \"mastercard\", \"last4\": \"4444\"}')",
    )
    .bind(c.guest.id)
    .execute(&app.db)
    .await
    .unwrap();

    let customer = format!("/paymentcustomers/{}", c.guest.id);
    for who in [&c.guest, &c.admin] {
        let (s, b) = bm(&app, Method::GET, &customer, who, None).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["sys_paymentCustomer"]["customerId"], "cus_guest");
    }
    let (s, b) = bm(&app, Method::GET, &customer, &c.stranger, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "payment customer not found");
    let (s, _) = bm(
        &app,
        Method::GET,
        &format!("/paymentcustomers/{}", c.host.id),
        &c.host,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "the host never paid");

    let (s, b) = bm(&app, Method::GET, "/paymentcustomers", &c.guest, None).await;
    assert_error(s, &b, StatusCode::FORBIDDEN, "admin");
    let (s, b) = bm(
        &app,
        Method::GET,
        "/paymentcustomers?customerId=GUEST&platform=loc",
        &c.admin,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["sys_paymentCustomers"][0]["userId"], json!(c.guest.id));

    let methods = format!("/paymentcustomermethods/{}", c.guest.id);
    let (s, b) = bm(&app, Method::GET, &methods, &c.guest, None).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["paging"]["totalRowCount"], 2);
    let (_, b) = bm(
        &app,
        Method::GET,
        &format!("{methods}?cardInfo=visa"),
        &c.admin,
        None,
    )
    .await;
    assert_eq!(b["sys_paymentMethods"].as_array().unwrap().len(), 1);
    assert_eq!(b["sys_paymentMethods"][0]["cardInfo"]["last4"], "4242");
    let (s, b) = bm(&app, Method::GET, &methods, &c.stranger, None).await;
    assert_error(s, &b, StatusCode::NOT_FOUND, "not found");
    let (is_error, _) = app
        .tool(
            Some(&c.stranger.token),
            "listPaymentCustomerMethods",
            json!({ "userId": [c.stranger.id, c.guest.id] }),
        )
        .await;
    assert!(is_error);
}

#[tokio::test]
async fn payment_flow_helpers_upsert_and_deduplicate() {
    use haven_tools::booking::payments::{customers, provider::MethodInfo, records, tickets};
    use haven_tools::money::Money;
    use std::sync::Arc;

    let app = TestApp::spawn().await;
    let c = cast(&app).await;
    let (_, rid) = seed_stay(&app, c.host.id, c.guest.id, "pending").await;
    let tokens = haven_tools::auth::tokens::TokenService::load_or_create(
        &app.db,
        "haven",
        "haven-api",
        std::time::Duration::from_secs(600),
    )
    .await
    .unwrap();
    let services = haven_tools::Services {
        db: app.db.clone(),
        tokens: Arc::new(tokens),
        settings: Arc::new(haven_tools::Settings::default()),
        payments: Arc::new(haven_tools::booking::payments::local::LocalProvider::new(
            app.db.clone(),
        )),
        extension: None,
        limits: Arc::default(),
        announcer: haven_tools::announce::Announcer::start(&app.db),
    };
    // A system context (webhook-like): no principal; everything stays in its transaction.
    let ctx = haven_tools::Ctx::new(services, None, "test".into(), None);

    // One active ticket per order: the second upsert updates it and keeps the redirect URL.
    assert!(tickets::load_ticket_for_order(&ctx, rid)
        .await
        .unwrap()
        .is_none());
    let amount = Money::from_cents(30000);
    let first = tickets::upsert_ticket(
        &ctx,
        c.guest.id,
        rid,
        "pi_flow",
        "processing",
        "processing",
        "local",
        amount,
        "EUR",
        Some("https://app.haven.test/done"),
    )
    .await
    .unwrap();
    let second = tickets::upsert_ticket(
        &ctx,
        c.guest.id,
        rid,
        "pi_flow",
        "succeeded",
        "paid",
        "local",
        amount,
        "EUR",
        None,
    )
    .await
    .unwrap();
    assert_eq!((second.id, second.meta.record_version), (first.id, 2));
    assert_eq!(
        second.redirect_url.as_deref(),
        Some("https://app.haven.test/done")
    );
    let loaded = tickets::load_ticket_for_order(&ctx, rid)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.status_literal, "paid");

    // A replayed provider fact appends nothing the second time.
    let draft = records::RecordDraft {
        reservation_id: rid,
        payment_intent_id: "pi_flow".into(),
        stripe_charge_id: Some("ch_flow".into()),
        currency: "EUR".into(),
        amount_paid: amount,
        payment_status: "paid",
        city_tax: None,
        platform_fee: Some(Money::from_cents(2700)),
        payout_amount_host: Some(Money::from_cents(26190)),
        refund_amount: None,
        dedupe_key: "pi_flow:paid".into(),
    };
    let appended = records::append_record(&ctx, draft.clone()).await.unwrap();
    assert_eq!(appended.unwrap().payment_status, "paid");
    assert!(records::append_record(&ctx, draft).await.unwrap().is_none());

    // Customers and methods are upserted, one per user and platform (and method id).
    customers::remember_customer(&ctx, c.guest.id, "local", "cus_1")
        .await
        .unwrap();
    customers::remember_customer(&ctx, c.guest.id, "local", "cus_2")
        .await
        .unwrap();
    let found = customers::find_customer(&ctx, c.guest.id, "local")
        .await
        .unwrap();
    assert_eq!(found.as_deref(), Some("cus_2"));
    assert!(customers::find_customer(&ctx, c.host.id, "local")
        .await
        .unwrap()
        .is_none());
    let mut info = MethodInfo {
        id: "pm_card_visa".into(),
        card: Some(json!({ "brand": "visa", "last4": "4242" })),
        holder_name: Some("Gina".into()),
        holder_zip: None,
    };
    customers::remember_method(&ctx, c.guest.id, "local", "cus_2", &info)
        .await
        .unwrap();
    info.holder_zip = Some("1000".into());
    customers::remember_method(&ctx, c.guest.id, "local", "cus_2", &info)
        .await
        .unwrap();

    let mut db = ctx.db().await.unwrap();
    let counts: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM booking.reservation_payments),
                (SELECT count(*) FROM booking.payment_records),
                (SELECT count(*) FROM booking.reservation_activities WHERE kind = 'payment_recorded'),
                (SELECT count(*) FROM booking.payment_customers),
                (SELECT count(*) FROM booking.payment_methods WHERE card_holder_zip = '1000')",
    )
    .fetch_one(&mut *db)
    .await
    .unwrap();
    assert_eq!(counts, (1, 1, 1, 1, 1));
}
