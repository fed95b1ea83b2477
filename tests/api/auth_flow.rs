//! The auth service end to end: register, login, read, update, logout, relogin, archive, roles.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn register_login_and_read_over_rest_and_mcp() {
    let app = TestApp::spawn().await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/registeruser",
            None,
            Some(json!({ "email": "Ada@Example.com", "password": "password123", "fullname": "Ada", "preferredLanguage": "en" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    assert_eq!(body["status"], "OK");
    assert_eq!(body["dataName"], "user");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["roleId"], "user");
    assert!(
        body["user"].get("password").is_none(),
        "passwords are never returned"
    );
    let id = body["user"]["id"].as_str().unwrap().to_string();

    let hash: String =
        sqlx::query_scalar("SELECT password_hash FROM auth.users WHERE email = 'ada@example.com'")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(hash.starts_with("$argon2id$"));

    // login over MCP, then use the token over REST and MCP
    let (err, session) = app
        .tool(
            None,
            "login",
            json!({ "username": "ada@example.com", "password": "password123" }),
        )
        .await;
    assert!(!err, "{session}");
    let token = session["accessToken"].as_str().unwrap();
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/users/{id}"),
            Some(token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["user"]["id"], id.as_str());
    let (err, user) = app
        .tool(Some(token), "getUser", json!({ "userId": id }))
        .await;
    assert!(!err);
    assert_eq!(user["fullname"], "Ada");

    // the spec's other token locations
    for req in [
        app.http
            .get(format!("{}/currentuser?access_token={token}", app.base)),
        app.http
            .get(format!("{}/currentuser", app.base))
            .header("haven-access-token", token),
        app.http
            .get(format!("{}/currentuser", app.base))
            .header("cookie", format!("haven-access-token={token}")),
    ] {
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let me: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(me["userId"], id.as_str());
    }

    // wrong password and unknown user look the same
    for username in ["ada@example.com", "who@example.com"] {
        let (s, body) = app
            .rest(
                Method::POST,
                "/auth-api/login",
                None,
                Some(json!({ "username": username, "password": "nope-nope" })),
            )
            .await;
        assert_error(
            s,
            &body,
            StatusCode::UNAUTHORIZED,
            "invalid username or password",
        );
    }
}

#[tokio::test]
async fn duplicate_email_is_a_conflict() {
    let app = TestApp::spawn().await;
    app.user("dup@haven.test").await;
    let before = app.count("auth.users").await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/registeruser",
            None,
            Some(json!({ "email": "DUP@haven.test", "password": "password123", "fullname": "X" })),
        )
        .await;
    assert_error(s, &body, StatusCode::CONFLICT, "already exists");
    assert_eq!(app.count("auth.users").await, before);
}

#[tokio::test]
async fn logout_revokes_and_relogin_rotates() {
    let app = TestApp::spawn().await;
    let user = app.user("out@haven.test").await;
    let (s, fresh) = app
        .rest(Method::GET, "/auth-api/relogin", Some(&user.token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let new_token = fresh["accessToken"].as_str().unwrap().to_string();
    assert_ne!(new_token, user.token);
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "relogin ends the old session");
    let (s, _) = app
        .rest(Method::POST, "/auth-api/logout", Some(&new_token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = app
        .rest(Method::GET, "/currentuser", Some(&new_token), None)
        .await;
    assert_error(s, &body, StatusCode::UNAUTHORIZED, "invalid or expired");
    let (s, _) = app.rest(Method::POST, "/auth-api/logout", None, None).await;
    assert_eq!(s, StatusCode::OK, "logout always succeeds");
}

#[tokio::test]
async fn profile_update_archive_and_brief() {
    let app = TestApp::spawn().await;
    let user = app.user("me@haven.test").await;
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/profile/{}", user.id),
            Some(&user.token),
            Some(json!({ "bio": "Hi", "fullname": "Me Myself" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["user"]["bio"], "Hi");
    assert_eq!(body["user"]["recordVersion"], 2);
    // stale version
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/profile/{}", user.id),
            Some(&user.token),
            Some(json!({ "bio": "x", "recordVersion": 1 })),
        )
        .await;
    assert_error(s, &body, StatusCode::CONFLICT, "recordVersion");
    // public brief profile
    let (s, body) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/briefuser/{}", user.id),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["user"]["fullname"], "Me Myself");
    assert!(
        body["user"].get("email").is_none(),
        "the public profile hides the email"
    );
    // archive
    let (s, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/archiveprofile/{}", user.id),
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["user"]["isActive"], false);
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "an archived user's tokens stop working"
    );
    let (s, _) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/briefuser/{}", user.id),
            None,
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn roles_and_admin_operations() {
    let app = TestApp::spawn().await;
    let root = app.user_with_role("root@haven.test", "superAdmin").await;
    let admin = app.user_with_role("adm@haven.test", "admin").await;
    let user = app.user("u@haven.test").await;

    // admin promotes a user to admin; the change shows on the user's next request
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userrole/{}", user.id),
            Some(&admin.token),
            Some(json!({ "roleId": "admin" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (_, me) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(me["roleId"], "admin");
    // admins cannot grant superAdmin nor touch admins; superAdmin can
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userrole/{}", user.id),
            Some(&admin.token),
            Some(json!({ "roleId": "user" })),
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "superAdmin");
    let (s, _) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userrole/{}", user.id),
            Some(&root.token),
            Some(json!({ "roleId": "user" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userrole/{}", user.id),
            Some(&admin.token),
            Some(json!({ "roleId": "superAdmin" })),
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "superAdmin");
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userrole/{}", user.id),
            Some(&admin.token),
            Some(json!({ "roleId": "owner" })),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "roleId");

    // admin creates, lists, searches and deletes users
    let (s, body) = app
        .rest(Method::POST, "/auth-api/v1/users", Some(&admin.token), Some(json!({ "email": "new@haven.test", "password": "password123", "fullname": "Newbie" })))
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let new_id = body["user"]["id"].as_str().unwrap().to_string();
    let (s, body) = app
        .rest(
            Method::GET,
            "/auth-api/v1/users?email=new@&email=u@haven&pageRowCount=10",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["rowCount"], 2);
    assert_eq!(body["paging"]["totalRowCount"], 2);
    let (s, body) = app
        .rest(
            Method::GET,
            "/auth-api/v1/searchusers?keyword=newb",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["users"][0]["email"], "new@haven.test");
    let (s, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/users/{new_id}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body["user"]["isActive"], false);
    let (s, _) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/users/{}", root.id),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "admins cannot delete a superAdmin"
    );
}

#[tokio::test]
async fn password_changes() {
    let app = TestApp::spawn().await;
    let root = app.user_with_role("root@haven.test", "superAdmin").await;
    let admin = app.user_with_role("adm@haven.test", "admin").await;
    let user = app.user("pw@haven.test").await;
    let other_session = app.login("pw@haven.test", "password123").await;

    let path = format!("/auth-api/v1/userpassword/{}", user.id);
    let (s, body) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&user.token),
            Some(json!({ "oldPassword": "wrong-one", "newPassword": "brand-new-pw" })),
        )
        .await;
    assert_error(s, &body, StatusCode::BAD_REQUEST, "oldPassword");
    let (s, _) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&user.token),
            Some(json!({ "oldPassword": "password123", "newPassword": "brand-new-pw" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&other_session), None)
        .await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "other sessions end on a password change"
    );
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "the changing session stays");
    app.login("pw@haven.test", "brand-new-pw").await;

    // admin resets a user's password, but not a superAdmin's nor an admin's
    let (s, _) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userpasswordbyadmin/{}", user.id),
            Some(&admin.token),
            Some(json!({ "password": "reset-by-admin" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    app.login("pw@haven.test", "reset-by-admin").await;
    let root_before = app.user_row(root.id).await;
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userpasswordbyadmin/{}", root.id),
            Some(&admin.token),
            Some(json!({ "password": "hijacked-pw" })),
        )
        .await;
    assert_error(s, &body, StatusCode::FORBIDDEN, "superAdmin");
    assert_eq!(app.user_row(root.id).await, root_before, "nothing changed");
    let (s, _) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userpasswordbyadmin/{}", admin.id),
            Some(&root.token),
            Some(json!({ "password": "root-sets-this" })),
        )
        .await;
    assert_eq!(
        s,
        StatusCode::OK,
        "superAdmin may change an admin's password"
    );
}

#[tokio::test]
async fn permissions_and_public_key() {
    let app = TestApp::spawn().await;
    let user = app.user("perm@haven.test").await;
    let (s, body) = app
        .rest(Method::GET, "/permissions", Some(&user.token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    let names: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["permissionName"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"updateProfile") && !names.contains(&"updateUserRole"));
    let (_, yes) = app
        .rest(Method::GET, "/permissions/getUser", Some(&user.token), None)
        .await;
    assert_eq!(yes["canDo"], true);
    let (_, no) = app
        .rest(
            Method::GET,
            "/permissions/updateUserRole",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(no["canDo"], false);
    let (s, _) = app.rest(Method::GET, "/permissions", None, None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (s, key) = app
        .rest(Method::GET, "/auth-api/publickey", None, None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(key["keyData"]
        .as_str()
        .unwrap()
        .starts_with("-----BEGIN PUBLIC KEY-----"));
    let (s, _) = app
        .rest(Method::GET, "/auth-api/publickey?keyId=nope", None, None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
