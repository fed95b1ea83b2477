//! A connector's changes are audited as the user acting through that OAuth client: the audit row
//! names credential kind `oauth` and the client id.

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{client, spawn, tokens_for};

#[tokio::test]
async fn a_connectors_change_names_its_oauth_client_in_the_audit_row() {
    let app = spawn().await;
    let user = app.user("connector-user@haven.test").await;
    let admin = app
        .user_with_role("connector-admin@haven.test", "admin")
        .await;
    let client_id = client(&app).await;
    let t = tokens_for(&app, &client_id, &user, &[]).await;
    let access = t["access_token"].as_str().unwrap().to_string();
    let (is_error, key) = app
        .tool(
            Some(&access),
            "createApiKey",
            json!({ "description": "via connector" }),
        )
        .await;
    assert!(!is_error, "{key}");
    let (s, body) = app
        .rest(
            Method::GET,
            &format!(
                "/platformadmin-api/v1/auditlogs?objectId={}",
                key["id"].as_str().unwrap()
            ),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let row = &body["auditLogs"][0];
    assert_eq!(row["operation"], "createApiKey");
    assert_eq!(row["face"], "mcp");
    assert_eq!(row["credentialKind"], "oauth");
    assert_eq!(row["oauthClientId"], client_id.as_str());
    assert_eq!(row["performedBy"], user.id.to_string());
}
