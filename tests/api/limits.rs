//! Resource limits: body size, page size, pagination and filters; every change audited.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn oversized_bodies_get_413_on_rest_and_mcp() {
    let app = TestApp::spawn().await;
    let huge = "x".repeat(200 * 1024);
    let resp = app
        .http
        .post(format!("{}/auth-api/v1/registeruser", app.base))
        .json(&json!({ "email": "big@haven.test", "password": "password123", "fullname": huge }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": { "name": "registerUser", "arguments": { "fullname": huge } } }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(app.count("auth.users").await, 0);
}

#[tokio::test]
async fn pagination_and_filters() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("adm@haven.test", "admin").await;
    for i in 0..7 {
        app.user(&format!("page{i}@haven.test")).await;
    }
    let (s, body) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?email=page&pageRowCount=3&pageNumber=3",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["rowCount"], 1);
    assert_eq!(
        body["paging"],
        json!({ "pageNumber": 3, "pageRowCount": 3, "totalRowCount": 7, "pageCount": 3 })
    );
    let (_, all) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?pageNumber=0",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(all["rowCount"], 8, "pageNumber=0 turns pagination off");
    let (_, admins) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?roleId=ADMIN",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(admins["rowCount"], 1, "enum filters are case-insensitive");
    let (_, none) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?email=50%25_off",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(none["rowCount"], 0, "LIKE wildcards in filters are literal");
    let (s, body) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?pageRowCount=101",
            Some(&admin.token),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "pageRowCount");
    let (s, body) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?pageNumber=x",
            Some(&admin.token),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "pageNumber");
    let (s, body) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?colour=red",
            Some(&admin.token),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "colour");
    let (_, mcp) = app
        .tool(
            Some(&admin.token),
            "listUsers",
            json!({ "email": ["page1", "page2"] }),
        )
        .await;
    assert_eq!(mcp["users"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn every_change_is_audited_in_its_own_transaction() {
    let app = TestApp::spawn().await;
    let user = app.user("audit@haven.test").await;
    let audits: Vec<(String, Option<uuid::Uuid>)> = sqlx::query_as(
        "SELECT action_type, performed_by FROM platformadmin.audit_logs ORDER BY occurred_at",
    )
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert_eq!(
        audits.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(),
        vec!["registerUser", "login"]
    );
    assert!(audits.iter().all(|a| a.1 == Some(user.id)));
    let events = app.count("events.domain_events").await;
    assert_eq!(events, 2);
    // reads write nothing
    app.rest(
        Method::GET,
        &format!("/auth-api/v1/users/{}", user.id),
        Some(&user.token),
        None,
    )
    .await;
    assert_eq!(app.count("platformadmin.audit_logs").await, 2);
    // the log is append-only
    let err = sqlx::query("DELETE FROM platformadmin.audit_logs")
        .execute(&app.db)
        .await;
    assert!(err.is_err());
}
