//! What the public payment callback tells whom: anyone may trigger a re-check, but only the
//! reservation's guest, host and admins learn the amount, the provider's payment id and the ticket.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::{booked, listing};
use crate::helpers::{TestApp, TestUser};

const CALLBACK: &str = "/bookingmanagement-api/v1/callbackreservationpayment";

async fn callback(app: &TestApp, who: Option<&TestUser>, id: Uuid) -> Value {
    let (status, body) = app
        .rest(
            Method::POST,
            CALLBACK,
            who.map(|u| u.token.as_str()),
            Some(json!({ "reservationId": id })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn strangers_get_only_an_acknowledgement_from_the_payment_callback() {
    let app = TestApp::spawn().await;
    let host = app.user("host@leak.test").await;
    let guest = app.user("guest@leak.test").await;
    let stranger = app.user("stranger@leak.test").await;
    let admin = app.user_with_role("admin@leak.test", "admin").await;
    let home = listing(&app, &host, json!({})).await;
    let id = booked(&app, &guest, home, 10, 3).await;
    let (status, paid) = app
        .rest(
            Method::PATCH,
            &format!("/bookingmanagement-api/v1/startreservationpayment/{id}"),
            Some(&guest.token),
            Some(json!({ "paymentUserParams": { "paymentMethodId": "pm_card_visa" } })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    let payment_id = paid["paymentResult"]["paymentId"].as_str().unwrap();
    let ticket_id = paid["paymentResult"]["paymentTicketId"].as_str().unwrap();
    let amount = paid["paymentResult"]["amount"].to_string();

    for who in [None, Some(&stranger)] {
        let body = callback(&app, who, id).await;
        assert_eq!(body["acknowledgement"], "re-checked", "{body}");
        assert!(body["paymentResult"].is_null(), "{body}");
        assert!(body["reservation"].is_null(), "{body}");
        let text = body.to_string();
        for secret in [payment_id, ticket_id] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(!text.contains("\"amount\""), "the amount leaked: {text}");
    }
    let (err, text) = app
        .tool(
            None,
            "callbackReservationPayment",
            json!({ "reservationId": id }),
        )
        .await;
    assert!(!err, "{text}");
    assert!(text["paymentResult"].is_null() && !text.to_string().contains(payment_id));

    for party in [&guest, &host, &admin] {
        let body = callback(&app, Some(party), id).await;
        assert_eq!(body["acknowledgement"], "re-checked");
        assert_eq!(body["paymentResult"]["paymentId"], payment_id, "{body}");
        assert_eq!(body["paymentResult"]["paymentTicketId"], ticket_id);
        assert_eq!(body["paymentResult"]["amount"].to_string(), amount);
        assert_eq!(body["reservation"]["id"], id.to_string());
    }
}
