//! Bad input gets a clear error naming the field, over REST and MCP, and changes nothing.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn register_rejects_bad_fields_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let before = (
        app.count("auth.users").await,
        app.count("platformadmin.audit_logs").await,
    );
    let cases = [
        (
            json!({ "email": "a@b.io", "password": "password123", "fullname": "A", "nickname": "x" }),
            "nickname",
        ),
        (
            json!({ "email": "a@b.io", "password": "password123" }),
            "fullname",
        ),
        (
            json!({ "email": "a@b.io", "password": "password123", "fullname": 42 }),
            "fullname",
        ),
        (
            json!({ "email": "not-an-email", "password": "password123", "fullname": "A" }),
            "email",
        ),
        (
            json!({ "email": "a@b.io", "password": "short", "fullname": "A" }),
            "password",
        ),
        (
            json!({ "email": "a@b.io", "password": "password123", "fullname": "A", "id": "00000000-0000-0000-0000-000000000001" }),
            "id",
        ),
        (
            json!({ "email": "a@b.io", "password": "password123", "fullname": "A", "roleId": "superAdmin" }),
            "roleId",
        ),
        (
            json!({ "email": "a@b.io", "password": "password123", "fullname": "A", "emailVerified": true }),
            "emailVerified",
        ),
        (
            json!({ "email": "a@b.io", "password": "password123", "fullname": "A", "preferredLanguage": "english!" }),
            "preferredLanguage",
        ),
        (
            json!({ "email": "a@b.io", "password": "password123", "fullname": "A", "avatar": "javascript:alert(1)" }),
            "avatar",
        ),
    ];
    for (body, field) in cases {
        let (s, resp) = app
            .rest(
                Method::POST,
                "/auth-api/v1/registeruser",
                None,
                Some(body.clone()),
            )
            .await;
        assert_error(s, &resp, StatusCode::BAD_REQUEST, field);
        assert_eq!(resp["field"], field, "{resp}");
        let (is_error, text) = app.tool(None, "registerUser", body).await;
        assert!(is_error);
        assert!(text.as_str().unwrap().contains(field), "{text}");
    }
    assert_eq!(
        (
            app.count("auth.users").await,
            app.count("platformadmin.audit_logs").await
        ),
        before
    );
}

#[tokio::test]
async fn server_owned_fields_on_update_are_refused_and_nothing_changes() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("adm@haven.test", "admin").await;
    let user = app.user("victim@haven.test").await;
    let before = app.user_row(user.id).await;
    for (path, token, field, value) in [
        (
            format!("/auth-api/v1/profile/{}", user.id),
            &user.token,
            "roleId",
            json!("admin"),
        ),
        (
            format!("/auth-api/v1/profile/{}", user.id),
            &user.token,
            "emailVerified",
            json!(true),
        ),
        (
            format!("/auth-api/v1/profile/{}", user.id),
            &user.token,
            "password",
            json!("new-password"),
        ),
        (
            format!("/auth-api/v1/profile/{}", user.id),
            &user.token,
            "id",
            json!("00000000-0000-0000-0000-000000000001"),
        ),
        (
            format!("/auth-api/v1/profile/{}", user.id),
            &user.token,
            "email",
            json!("other@haven.test"),
        ),
        (
            format!("/auth-api/v1/users/{}", user.id),
            &admin.token,
            "password",
            json!("new-password"),
        ),
        (
            format!("/auth-api/v1/users/{}", user.id),
            &admin.token,
            "roleId",
            json!("superAdmin"),
        ),
    ] {
        let body = json!({ "fullname": "Changed", field: value });
        let (s, resp) = app
            .rest(Method::PATCH, &path, Some(token), Some(body))
            .await;
        assert_error(s, &resp, StatusCode::BAD_REQUEST, field);
    }
    assert_eq!(
        app.user_row(user.id).await,
        before,
        "no refused update changed the row"
    );
}

#[tokio::test]
async fn wrong_types_and_malformed_bodies() {
    let app = TestApp::spawn().await;
    let user = app.user("types@haven.test").await;
    let (s, body) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users/not-a-uuid",
            Some(&user.token),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "userId");
    let (is_error, text) = app
        .tool(Some(&user.token), "getUser", json!({ "userId": 12 }))
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("userId"),
        "{text}"
    );
    let (is_error, text) = app.tool(Some(&user.token), "getUser", json!({})).await;
    assert!(
        is_error && text.as_str().unwrap().contains("userId"),
        "{text}"
    );
    let resp = app
        .http
        .post(format!("{}/auth-api/v1/registeruser", app.base))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Only JSON's white space counts as an empty body: a form feed is not JSON.
    for (body, status) in [
        ("\x0c", StatusCode::BAD_REQUEST),
        (" \r\n\t", StatusCode::OK),
    ] {
        let resp = app
            .http
            .post(format!("{}/bff-api/v1/ReviewDisplayView/list", app.base))
            .bearer_auth(&user.token)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), status, "{body:?}");
    }
    let (s, body) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?pageRowCount=1000",
            Some(&user.token),
            None,
        )
        .await;
    assert!(
        s == StatusCode::FORBIDDEN,
        "users may not list users: {body}"
    );
}

#[tokio::test]
async fn fuzzed_arguments_never_crash_the_server() {
    let app = TestApp::spawn().await;
    // A superAdmin API key reaches every operation and survives logout/relogin being fuzzed.
    let root = app.user_with_role("fuzz@haven.test", "superAdmin").await;
    let (_, created) = app.tool(Some(&root.token), "createApiKey", json!({})).await;
    let key = created["key"].as_str().unwrap().to_string();
    let weird = [
        json!(null),
        json!([]),
        json!("string"),
        json!({ "userId": null }),
        json!({ "userId": { "nested": [1, 2, 3] } }),
        json!({ "email": "\u{0000}", "password": "\u{202e}".repeat(9), "fullname": "x".repeat(10_000) }),
        json!({ "pageNumber": -1, "pageRowCount": 1e30 }),
    ];
    for op in haven::registry().all() {
        for args in &weird {
            let r = app
                .mcp(
                    Some(&key),
                    "tools/call",
                    json!({ "name": op.name, "arguments": args }),
                )
                .await;
            assert!(
                r["result"].is_object() || r["error"].is_object(),
                "{} with {args}: {r}",
                op.name
            );
        }
    }
    let (s, _) = app.rest(Method::GET, "/health", None, None).await;
    assert_eq!(s, StatusCode::OK);
}

/// Every operation in the registry refuses an unknown field and a server-owned field, naming
/// it, and writes nothing (no audit row, no domain event).
#[tokio::test]
async fn every_operation_names_unknown_and_server_owned_fields_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let root = app.user_with_role("strict@haven.test", "superAdmin").await;
    let audit_before = app.count("platformadmin.audit_logs").await;
    let events_before = app.count("events.domain_events").await;
    for op in haven::registry().all() {
        let mut probes = vec![("zzUnknownField", json!({ "zzUnknownField": 1 }))];
        if !op.fields().contains_key("id") {
            probes.push(("id", json!({ "id": uuid::Uuid::new_v4() })));
        }
        for (field, args) in probes {
            let (is_error, text) = app.tool(Some(&root.token), op.name, args).await;
            assert!(is_error, "{} accepted {field}: {text}", op.name);
            let text = text.as_str().unwrap_or_default();
            assert!(
                text.starts_with("BadInput") && text.contains(field),
                "{} with {field}: {text}",
                op.name
            );
        }
    }
    assert_eq!(app.count("platformadmin.audit_logs").await, audit_before);
    assert_eq!(app.count("events.domain_events").await, events_before);
}
