//! API keys: created by any user for themself, shown once, stored hashed, revocable; admins see
//! and revoke all.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn keys_act_as_their_owner_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let user = app.user("keys@haven.test").await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/platformadmin-api/v1/apikeys",
            Some(&user.token),
            Some(json!({ "description": "Cursor" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let key = body["apiKey"]["key"].as_str().unwrap().to_string();
    let key_id = body["apiKey"]["id"].as_str().unwrap().to_string();
    assert!(key.starts_with("sk_haven_"));
    assert_eq!(body["apiKey"]["createdBy"], user.id.to_string());

    // stored hashed only
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM platformadmin.api_keys WHERE key_hash = $1 OR key_prefix = $1",
    )
    .bind(&key)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(stored, 0, "the plaintext key is not in the database");

    // the key works over MCP and REST, as the owner
    let (is_error, me) = app.tool(Some(&key), "getCurrentUser", json!({})).await;
    assert!(!is_error);
    assert_eq!(me["email"], "keys@haven.test");
    assert_eq!(me["credential"], "apiKey");
    let last_used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM platformadmin.api_keys")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(last_used.is_some());

    // listing never shows the secret
    let (s, list) = app
        .rest(
            Method::GET,
            "/platformadmin-api/v1/apikeys",
            Some(&key),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(list["rowCount"], 1);
    assert!(list["apiKeys"][0].get("key").is_none());
    assert!(key.starts_with(list["apiKeys"][0]["keyPrefix"].as_str().unwrap()));

    // revoke, then the key is refused at once and cannot be re-enabled
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/platformadmin-api/v1/apikeys/{key_id}"),
            Some(&user.token),
            Some(json!({ "active": false })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(body["apiKey"]["revokedAt"].is_string());
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/platformadmin-api/v1/apikeys/{key_id}"),
            Some(&user.token),
            Some(json!({ "active": true })),
        )
        .await;
    assert_error(s, &body, StatusCode::UNPROCESSABLE_ENTITY, "re-enabled");
}

#[tokio::test]
async fn keys_are_private_to_their_owner_except_for_admins() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice@haven.test").await;
    let bob = app.user("bob@haven.test").await;
    let admin = app.user_with_role("adm@haven.test", "admin").await;
    let (_, created) = app
        .tool(
            Some(&alice.token),
            "createApiKey",
            json!({ "description": "alice's" }),
        )
        .await;
    let key_id = created["id"].as_str().unwrap().to_string();
    let key = created["key"].as_str().unwrap().to_string();

    let (_, bobs) = app.tool(Some(&bob.token), "listApiKeys", json!({})).await;
    assert_eq!(bobs["apiKeys"].as_array().unwrap().len(), 0);
    let (is_error, text) = app
        .tool(
            Some(&bob.token),
            "updateApiKey",
            json!({ "apiKeyId": key_id, "active": false }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("not found"),
        "{text}"
    );
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::OK, "bob's refused revoke changed nothing");

    let (_, all) = app.tool(Some(&admin.token), "listApiKeys", json!({})).await;
    assert_eq!(all["apiKeys"].as_array().unwrap().len(), 1);
    let (is_error, _) = app
        .tool(
            Some(&admin.token),
            "updateApiKey",
            json!({ "apiKeyId": key_id, "revokedAt": chrono::Utc::now() }),
        )
        .await;
    assert!(!is_error);
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn clients_cannot_choose_key_material_or_owner() {
    let app = TestApp::spawn().await;
    let user = app.user("mass@haven.test").await;
    let before = app.count("platformadmin.api_keys").await;
    for (field, value) in [
        ("key", json!("sk_haven_mine")),
        ("createdBy", json!(uuid::Uuid::new_v4())),
        ("id", json!(uuid::Uuid::new_v4())),
    ] {
        let (s, body) = app
            .rest(
                Method::POST,
                "/platformadmin-api/v1/apikeys",
                Some(&user.token),
                Some(json!({ field: value })),
            )
            .await;
        assert_error(s, &body, StatusCode::BAD_REQUEST, field);
    }
    assert_eq!(app.count("platformadmin.api_keys").await, before);
}

#[tokio::test]
async fn a_users_keys_die_with_the_user() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("adm@haven.test", "admin").await;
    let user = app.user("gone@haven.test").await;
    let (_, created) = app.tool(Some(&user.token), "createApiKey", json!({})).await;
    let key = created["key"].as_str().unwrap().to_string();
    let (s, _) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/users/{}", user.id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}
