//! Access rules, tested from the refused side.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn users_cannot_read_or_change_each_other() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@haven.test").await;
    let bob = app.user("bob@haven.test").await;
    let bob_before = app.user_row(bob.id).await;

    let (s, body) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/users/{}", bob.id),
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::NOT_FOUND, "not found");
    let (s, missing) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users/6f0c7a4e-0000-4000-8000-000000000000",
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        body["message"], missing["message"],
        "a hidden user looks exactly like a missing one"
    );

    let (s, _) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/profile/{}", bob.id),
            Some(&alice.token),
            Some(json!({ "bio": "pwned" })),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/archiveprofile/{}", bob.id),
            Some(&alice.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userpassword/{}", bob.id),
            Some(&alice.token),
            Some(json!({ "oldPassword": "password123", "newPassword": "stolen-pass" })),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (is_error, text) = app
        .tool(Some(&alice.token), "getUser", json!({ "userId": bob.id }))
        .await;
    assert!(is_error && text.as_str().unwrap().contains("not found"));
    assert_eq!(app.user_row(bob.id).await, bob_before);
}

#[tokio::test]
async fn plain_users_cannot_call_admin_operations() {
    let app = TestApp::spawn().await;
    let user = app.user("plain@haven.test").await;
    let other = app.user("other@haven.test").await;
    let tools = app.tool_names(Some(&user.token)).await;
    let admin_ops: Vec<&str> = haven::registry()
        .all()
        .filter(|op| {
            matches!(
                op.access,
                haven_tools::registry::Access::Admin | haven_tools::registry::Access::SuperAdmin
            )
        })
        .map(|op| op.name)
        .collect();
    assert!(admin_ops.len() >= 10);
    for name in &admin_ops {
        assert!(
            !tools.iter().any(|t| t == name),
            "{name} must not be listed for a user"
        );
        let (is_error, text) = app.tool(Some(&user.token), name, json!({})).await;
        assert!(is_error, "{name}");
        assert!(
            text.as_str().unwrap().contains("Forbidden"),
            "{name}: {text}"
        );
    }
    let before = app.user_row(other.id).await;
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userrole/{}", user.id),
            Some(&user.token),
            Some(json!({ "roleId": "admin" })),
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "admin");
    let (s, _) = app
        .rest(Method::GET, "/auth-api/v1/users", Some(&user.token), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/users/{}", other.id),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.user_row(other.id).await, before);
    let (_, me) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(me["roleId"], "user");
}

#[tokio::test]
async fn anonymous_callers_need_a_login() {
    let app = TestApp::spawn().await;
    let user = app.user("anon@haven.test").await;
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/users/{}", user.id),
            None,
            None,
        )
        .await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, "login");
    let (is_error, text) = app
        .tool(None, "getUser", json!({ "userId": user.id }))
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("Unauthenticated"),
        "{text}"
    );
}

#[tokio::test]
async fn mcp_can_require_auth() {
    let mut config = test_config();
    config.mcp_require_auth = true;
    let app = TestApp::spawn_with(config).await;
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("www-authenticate").is_some());
}

#[tokio::test]
async fn dns_rebinding_is_refused() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .header("host", "evil.example")
        .header("accept", "application/json, text/event-stream")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}
