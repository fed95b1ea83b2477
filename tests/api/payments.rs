//! The payment flow end to end: the local provider (the default) and Stripe through the fake
//! Stripe server — charges, declines and retries, settling later, refunds per the cancellation
//! snapshot, and signed webhooks that are verified, deduplicated and never move a state backwards.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fake_stripe::{payment_intent_event, sign, FakeStripe};
use crate::fixtures::{act, activity_kinds, booked, listing};
use crate::helpers::{assert_error, test_config, TestApp, TestUser};

async fn pay(app: &TestApp, guest: &TestUser, id: Uuid, method: &str) -> (StatusCode, Value) {
    app.rest(
        Method::PATCH,
        &format!("/bookingmanagement-api/v1/startreservationpayment/{id}"),
        Some(&guest.token),
        Some(json!({ "paymentUserParams": { "paymentMethodId": method } })),
    )
    .await
}

/// `(payment_status, amount_paid, refund_amount)` of a reservation's ledger, oldest first.
async fn ledger(app: &TestApp, id: Uuid) -> Vec<(String, i64, Option<i64>)> {
    sqlx::query_as(
        "SELECT payment_status, amount_paid, refund_amount FROM booking.payment_records
          WHERE reservation_id = $1 ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&app.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn the_local_provider_settles_a_card_and_the_ledger_carries_the_fees() {
    let app = TestApp::spawn().await;
    let host = app.user("host@pay.test").await;
    let guest = app.user("guest@pay.test").await;
    let home = listing(&app, &host, json!({})).await;
    let id = booked(&app, &guest, home, 10, 3).await;
    let (status, body) = pay(&app, &guest, id, "pm_card_visa").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["dataName"], "reservation");
    assert_eq!(body["reservation"]["bookingStatus"], "confirmed");
    assert_eq!(body["reservation"]["paymentConfirmation"], "paid");
    let result = &body["paymentResult"];
    assert_eq!(result["success"], true);
    assert_eq!(result["statusLiteral"], "paid");
    assert_eq!(result["paymentStatus"], "succeeded");
    assert_eq!(result["amount"], 378.0);
    assert!(result["paymentId"]
        .as_str()
        .unwrap()
        .starts_with("pi_local_"));
    let (fee, payout, tax): (i64, i64, i64) = sqlx::query_as(
        "SELECT platform_fee, payout_amount_host, city_tax FROM booking.payment_records WHERE reservation_id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    // Service fee 33.00 + 3 % host commission of 330.00 (9.90); payout 330 − 9.90; tax 15.00.
    assert_eq!((fee, payout, tax), (4290, 32010, 1500));
    assert_eq!(ledger(&app, id).await, vec![("paid".into(), 37800, None)]);
    // Paying twice is refused and charges nothing.
    let (status, reply) = pay(&app, &guest, id, "pm_card_visa").await;
    assert_error(
        status,
        &reply,
        StatusCode::UNPROCESSABLE_ENTITY,
        "already paid",
    );
    assert_eq!(app.count("booking.local_payment_intents").await, 1);
    // The ticket, customer and method were stored.
    let (status, ticket) = app
        .rest(
            Method::GET,
            &format!("/bookingmanagement-api/v1/reservationpaymentbyorderid/{id}"),
            Some(&guest.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{ticket}");
    assert_eq!(ticket["sys_reservationPayment"]["statusLiteral"], "paid");
    assert_eq!(app.count("booking.payment_customers").await, 1);
    assert_eq!(app.count("booking.payment_methods").await, 1);
    // Only the guest pays; the host is refused.
    let other = booked(&app, &guest, home, 20, 2).await;
    let (status, reply) = pay(&app, &host, other, "pm_card_visa").await;
    assert_error(status, &reply, StatusCode::FORBIDDEN, "guest");
}

#[tokio::test]
async fn a_declined_card_can_be_retried_and_a_processing_payment_settles_on_refresh() {
    let app = TestApp::spawn().await;
    let host = app.user("host@pay.test").await;
    let guest = app.user("guest@pay.test").await;
    let home = listing(&app, &host, json!({})).await;
    let id = booked(&app, &guest, home, 10, 3).await;
    let (status, body) = pay(&app, &guest, id, "pm_card_chargeDeclined").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["paymentResult"]["success"], false);
    assert!(body["paymentResult"]["description"]
        .as_str()
        .unwrap()
        .contains("declined"));
    assert_eq!(body["reservation"]["bookingStatus"], "pending");
    let (status, reply) = pay(&app, &guest, id, "not_a_method").await;
    assert_error(status, &reply, StatusCode::BAD_REQUEST, "paymentMethodId");

    let (status, body) = pay(&app, &guest, id, "pm_card_processing").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["paymentConfirmation"], "processing");
    let refresh = format!("/bookingmanagement-api/v1/refreshreservationpayment/{id}");
    sqlx::query(
        "UPDATE booking.local_payment_intents SET created_at = created_at - interval '1 minute'",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let (status, body) = app
        .rest(Method::PATCH, &refresh, Some(&host.token), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["bookingStatus"], "confirmed");
    assert_eq!(
        ledger(&app, id)
            .await
            .iter()
            .map(|r| r.0.as_str())
            .collect::<Vec<_>>(),
        vec!["failed", "paid"]
    );
    // A public callback re-reads the provider but shows strangers nothing but the acknowledgement
    // (tests/api/leaks.rs checks it for every kind of stranger).
    let (status, body) = app
        .rest(
            Method::POST,
            "/bookingmanagement-api/v1/callbackreservationpayment",
            None,
            Some(json!({ "reservationId": id })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"], Value::Null);
    assert_eq!(body["paymentResult"], Value::Null);
    assert_eq!(body["acknowledgement"], "re-checked");
}

#[tokio::test]
async fn cancellations_refund_per_the_policy_snapshot() {
    let app = TestApp::spawn().await;
    let host = app.user("host@pay.test").await;
    let guest = app.user("guest@pay.test").await;
    let policy = json!({ "cancellationPolicy": { "freeCancellationDays": 30, "refundPercentAfterDeadline": 50 } });
    let home = listing(&app, &host, policy).await;
    let late = booked(&app, &guest, home, 10, 3).await;
    pay(&app, &guest, late, "pm_card_visa").await;
    // The host makes the policy stricter afterwards: the snapshot still rules.
    app.rest(
        Method::PATCH,
        &format!("/propertycatalog-api/v1/listings/{home}"),
        Some(&host.token),
        Some(json!({ "cancellationPolicy": { "freeCancellationDays": 60, "refundPercentAfterDeadline": 0 } })),
    )
    .await;
    let (status, body) = act(
        &app,
        &guest,
        late,
        "cancel",
        json!({ "reason": "plans changed" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["bookingStatus"], "cancelled");
    assert_eq!(body["reservation"]["paymentConfirmation"], "paid");
    assert_eq!(body["reservation"]["refundAmount"], 189.0, "half of 378");
    assert_eq!(
        ledger(&app, late).await[1],
        ("refunded".into(), 0, Some(18900))
    );
    assert!(activity_kinds(&app, late)
        .await
        .contains(&"refund_issued".to_string()));

    // A host cancellation refunds everything, whatever the policy.
    let early = booked(&app, &guest, home, 40, 2).await;
    pay(&app, &guest, early, "pm_card_visa").await;
    let (status, body) = act(&app, &host, early, "cancel", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["reservation"]["refundAmount"],
        body["reservation"]["totalPrice"]
    );
}

#[tokio::test]
async fn stripe_webhooks_are_verified_deduplicated_and_monotonic() {
    let stripe = FakeStripe::start("sk_test_haven").await;
    let mut config = test_config();
    config.payment_provider = Some("stripe".into());
    config.stripe_api_base = stripe.base.clone();
    config.stripe_secret_key = Some("sk_test_haven".into());
    config.stripe_webhook_secret = Some("whsec_test".into());
    let app = TestApp::spawn_with(config).await;
    let host = app.user("host@stripe.test").await;
    let guest = app.user("guest@stripe.test").await;
    let home = listing(&app, &host, json!({})).await;
    let id = booked(&app, &guest, home, 10, 3).await;

    // 3-D Secure: the intent waits for the customer.
    let (status, body) = pay(&app, &guest, id, "pm_card_authenticationRequired").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["reservation"]["paymentConfirmation"], "processing");
    assert!(body["paymentResult"]["paymentIntentInfo"]["clientSecret"].is_string());
    let intent_id = body["paymentResult"]["paymentId"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(stripe
        .idempotency_keys()
        .contains(&format!("resv:{id}:pay:1")));

    let webhook = |payload: String, signature: String| {
        let app = &app;
        async move {
            let resp = app
                .http
                .post(format!(
                    "{}/bookingmanagement-api/v1/webhooks/stripe",
                    app.base
                ))
                .header("stripe-signature", signature)
                .body(payload)
                .send()
                .await
                .unwrap();
            let status = resp.status();
            (status, resp.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let now = chrono::Utc::now().timestamp();
    let succeeded = stripe.set_intent_status(&intent_id, "succeeded");
    let event = payment_intent_event("evt_1", &succeeded, now);

    // A bad signature is a 400 and changes nothing.
    let (status, _) = webhook(event.clone(), sign(&event, "whsec_other", now)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = webhook(event.clone(), sign(&event, "whsec_test", now - 301)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = webhook(
        event.replace("succeeded", "succeedex"),
        sign(&event, "whsec_test", now),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let state: (String, String) = sqlx::query_as(
        "SELECT booking_status, payment_confirmation FROM booking.reservations WHERE id = $1",
    )
    .bind(id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(state, ("pending".into(), "processing".into()));

    // The genuine event confirms the reservation.
    let (status, reply) = webhook(event.clone(), sign(&event, "whsec_test", now)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(reply["outcome"], "applied");
    let snapshot = |app: &TestApp| {
        let db = app.db.clone();
        async move {
            sqlx::query_as::<_, (String, String, i32, i64, i64)>(
                "SELECT booking_status, payment_confirmation, record_version,
                        (SELECT count(*) FROM booking.payment_records WHERE reservation_id = r.id),
                        (SELECT count(*) FROM booking.reservation_activities WHERE reservation_id = r.id)
                   FROM booking.reservations r WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&db)
            .await
            .unwrap()
        }
    };
    let after = snapshot(&app).await;
    assert_eq!((after.0.as_str(), after.1.as_str()), ("confirmed", "paid"));

    // Replays (also concurrent) change nothing.
    let replays = (0..5).map(|_| webhook(event.clone(), sign(&event, "whsec_test", now)));
    for (status, reply) in futures::future::join_all(replays).await {
        assert_eq!(status, StatusCode::OK);
        assert_eq!(reply["outcome"], "duplicate");
    }
    assert_eq!(snapshot(&app).await, after);

    // A late `processing` event never downgrades `paid`.
    let mut stale = succeeded.clone();
    stale["status"] = json!("processing");
    let late = payment_intent_event("evt_0", &stale, now - 10);
    let (status, _) = webhook(late.clone(), sign(&late, "whsec_test", now)).await;
    assert_eq!(status, StatusCode::OK);
    let unchanged = snapshot(&app).await;
    assert_eq!(
        (unchanged.0, unchanged.1),
        (after.0.clone(), after.1.clone())
    );
    assert_eq!(unchanged.3, after.3, "no new ledger row");

    // Cancelling refunds through Stripe with an idempotency key of our own.
    let (status, body) = act(&app, &host, id, "cancel", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(stripe.refunds().len(), 1);
    assert!(stripe
        .idempotency_keys()
        .contains(&format!("resv:{id}:refund:1")));
}
