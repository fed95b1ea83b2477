//! User groups and memberships over REST; avatar files over MCP.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Groups and memberships
// ---------------------------------------------------------------------------------------------

async fn create_group(app: &TestApp, admin: &TestUser, name: &str) -> Value {
    let (status, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/usergroups",
            Some(&admin.token),
            Some(json!({ "groupName": name })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["userGroup"].clone()
}

async fn add_member(
    app: &TestApp,
    admin: &TestUser,
    group: &str,
    user: Uuid,
) -> (StatusCode, Value) {
    app.rest(
        Method::POST,
        "/auth-api/v1/usergroupmembers",
        Some(&admin.token),
        Some(json!({ "groupId": group, "userId": user })),
    )
    .await
}

fn members(body: &Value) -> &Vec<Value> {
    body["userGroupMembers"]
        .as_array()
        .unwrap_or_else(|| panic!("no userGroupMembers in {body}"))
}

#[tokio::test]
async fn only_admins_create_groups_and_anyone_reads_them() {
    let app = TestApp::spawn().await;
    let admin = app
        .user_with_role("admin.groups@example.com", "admin")
        .await;
    let user = app.user("plain.groups@example.com").await;

    let group = create_group(&app, &admin, "Hosts of Lisbon").await;
    assert_eq!(group["groupName"], "Hosts of Lisbon");
    assert_eq!(group["isActive"], true);
    assert_eq!(
        group["_owner"],
        admin.id.to_string(),
        "the creating admin owns the group: {group}"
    );
    let id = group["id"].as_str().unwrap().to_string();

    // A plain user and an anonymous caller are refused, and nothing is written.
    let before = app.count("auth.user_groups").await;
    let (status, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/usergroups",
            Some(&user.token),
            Some(json!({ "groupName": "Mine" })),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "only an admin");
    let (status, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/usergroups",
            None,
            Some(json!({ "groupName": "Anon" })),
        )
        .await;
    assert_error(status, &body, StatusCode::UNAUTHORIZED, "needs a login");
    let (is_error, text) = app
        .tool(
            Some(&user.token),
            "createUserGroup",
            json!({ "groupName": "Via MCP" }),
        )
        .await;
    assert!(is_error, "a plain user created a group over MCP: {text}");
    assert_eq!(
        app.count("auth.user_groups").await,
        before,
        "refused creates must not write"
    );

    // Bad input names the field and writes nothing.
    let (status, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/usergroups",
            Some(&admin.token),
            Some(json!({ "groupName": "" })),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "groupName");
    assert_eq!(body["field"], "groupName", "{body}");
    let (status, body) = app
        .rest(
            Method::POST,
            "/auth-api/v1/usergroups",
            Some(&admin.token),
            Some(json!({ "groupName": "X", "colour": "red" })),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "colour");
    assert_eq!(app.count("auth.user_groups").await, before);

    // Anyone reads groups: REST and MCP, anonymous.
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/usergroups/{id}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["userGroup"]["groupName"], "Hosts of Lisbon");
    let (is_error, got) = app
        .tool(None, "getUserGroup", json!({ "userGroupId": id }))
        .await;
    assert!(!is_error, "{got}");
    assert_eq!(got["id"], id.as_str());

    create_group(&app, &admin, "Guests of Porto").await;
    let (status, body) = app
        .rest(Method::GET, "/auth-api/v1/usergroups", None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let names: Vec<&str> = body["userGroups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["groupName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["Guests of Porto", "Hosts of Lisbon"],
        "sorted by name"
    );
    assert_eq!(body["paging"]["totalRowCount"], 2, "{body}");

    let (is_error, listed) = app
        .tool(None, "listUserGroups", json!({ "groupName": "lisbon" }))
        .await;
    assert!(!is_error, "{listed}");
    let groups = listed["userGroups"].as_array().unwrap();
    assert_eq!(
        groups.len(),
        1,
        "partial, case-insensitive name filter: {listed}"
    );
    assert_eq!(groups[0]["id"], id.as_str());

    // An unknown group is a 404.
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/usergroups/{}", Uuid::new_v4()),
            None,
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "user group not found");
}

#[tokio::test]
async fn memberships_are_admin_managed_and_hide_emails_from_non_admins() {
    let app = TestApp::spawn().await;
    let admin = app
        .user_with_role("admin.members@example.com", "admin")
        .await;
    let alice = app.user("alice.members@example.com").await;
    let bob = app.user("bob.members@example.com").await;
    let group = create_group(&app, &admin, "Superhosts").await;
    let gid = group["id"].as_str().unwrap().to_string();

    // Add alice; adding her again is a conflict that writes nothing.
    let (status, body) = add_member(&app, &admin, &gid, alice.id).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let membership = body["userGroupMember"].clone();
    assert_eq!(membership["groupId"], gid.as_str());
    assert_eq!(membership["userId"], alice.id.to_string());
    assert_eq!(membership["ownerId"], admin.id.to_string());
    let mid = membership["id"].as_str().unwrap().to_string();
    let count = app.count("auth.user_group_members").await;
    let (status, body) = add_member(&app, &admin, &gid, alice.id).await;
    assert_error(status, &body, StatusCode::CONFLICT, "already a member");
    assert_eq!(app.count("auth.user_group_members").await, count);

    // A plain user may not add members; an unknown user or group is a 404.
    let (status, body) = add_member(&app, &alice, &gid, bob.id).await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "only an admin");
    let (status, body) = add_member(&app, &admin, &gid, Uuid::new_v4()).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "user not found");
    let (status, body) = add_member(&app, &admin, &Uuid::new_v4().to_string(), bob.id).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "user group not found");
    assert_eq!(
        app.count("auth.user_group_members").await,
        count,
        "refused adds must not write"
    );

    let (status, body) = add_member(&app, &admin, &gid, bob.id).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Anonymous: names but no emails.
    let path = format!("/auth-api/v1/listusergroupmembers/{gid}");
    let (status, body) = app.rest(Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(members(&body).len(), 2, "{body}");
    assert_eq!(body["paging"]["totalRowCount"], 2, "{body}");
    for m in members(&body) {
        assert_eq!(m["user"]["fullname"], "Test User", "{m}");
        assert!(
            m["user"].get("email").is_none(),
            "an anonymous caller must not see member emails: {m}"
        );
        assert_eq!(m["groupId"], gid.as_str());
    }
    // A plain member: still no emails.
    let (status, body) = app.rest(Method::GET, &path, Some(&alice.token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        members(&body)
            .iter()
            .all(|m| m["user"].get("email").is_none()),
        "a plain user must not see emails: {body}"
    );
    // Admin: emails.
    let (status, body) = app.rest(Method::GET, &path, Some(&admin.token), None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut emails: Vec<&str> = members(&body)
        .iter()
        .map(|m| m["user"]["email"].as_str().unwrap())
        .collect();
    emails.sort();
    assert_eq!(emails, vec![alice.email.as_str(), bob.email.as_str()]);

    // Filter by userId.
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("{path}?userId={}", bob.id),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(members(&body).len(), 1, "{body}");
    assert_eq!(members(&body)[0]["userId"], bob.id.to_string());
    assert_eq!(body["paging"]["totalRowCount"], 1, "{body}");
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("{path}?userId=not-a-uuid"),
            None,
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "userId");

    // The same list over MCP.
    let (is_error, listed) = app
        .tool(
            None,
            "listUserGroupMembers",
            json!({ "groupId": gid, "userId": alice.id }),
        )
        .await;
    assert!(!is_error, "{listed}");
    assert_eq!(
        listed["userGroupMembers"].as_array().unwrap().len(),
        1,
        "{listed}"
    );
    assert_eq!(
        listed["userGroupMembers"][0]["user"].get("email"),
        None,
        "{listed}"
    );

    // Get one membership, anonymously.
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/usergroupmembers/{mid}"),
            None,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["userGroupMember"]["userId"], alice.id.to_string());

    // Removing: plain users may not; the admin may, once.
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/usergroupmembers/{mid}"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "only an admin");
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/usergroupmembers/{mid}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["userGroupMember"]["isActive"], false, "{body}");
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/usergroupmembers/{mid}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::NOT_FOUND,
        "user group member not found",
    );
    let (status, body) = app.rest(Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let remaining: Vec<&str> = members(&body)
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert_eq!(
        remaining,
        vec![bob.id.to_string().as_str()],
        "alice was removed: {body}"
    );

    // Alice may be re-added after removal.
    let (status, body) = add_member(&app, &admin, &gid, alice.id).await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "re-adding a removed member: {body}"
    );

    // Deleting the group ends it and its memberships.
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/usergroups/{gid}"),
            Some(&alice.token),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "only an admin");
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/usergroups/{gid}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["userGroup"]["isActive"], false, "{body}");
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("/auth-api/v1/usergroups/{gid}"),
            None,
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "user group not found");
    let (status, body) = app.rest(Method::GET, &path, None, None).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "user group not found");
    let active: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM auth.user_group_members WHERE group_id = $1 AND is_active",
    )
    .bind(Uuid::parse_str(&gid).unwrap())
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(active, 0, "deleting a group ends its memberships");
    let (status, body) = app
        .rest(Method::GET, "/auth-api/v1/usergroups", None, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["userGroups"].as_array().unwrap().len(),
        0,
        "deleted groups are not listed: {body}"
    );
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/usergroups/{gid}"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "user group not found");
}

#[tokio::test]
async fn group_updates_respect_record_version() {
    let app = TestApp::spawn().await;
    let admin = app
        .user_with_role("admin.versions@example.com", "admin")
        .await;
    let user = app.user("plain.versions@example.com").await;
    let group = create_group(&app, &admin, "Original").await;
    let gid = group["id"].as_str().unwrap().to_string();
    let version = group["recordVersion"].as_i64().expect("recordVersion");
    let path = format!("/auth-api/v1/usergroups/{gid}");

    // A plain user may not update.
    let (status, body) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&user.token),
            Some(json!({ "groupName": "Hijacked" })),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "only an admin");

    // The current version is accepted and bumps the version.
    let (status, body) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(json!({ "groupName": "Renamed", "recordVersion": version })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["userGroup"]["groupName"], "Renamed");
    assert_eq!(body["userGroup"]["recordVersion"], version + 1, "{body}");

    // The old version is now stale: 409, nothing changes.
    let (status, body) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(json!({ "groupName": "Stale write", "recordVersion": version })),
        )
        .await;
    assert_error(status, &body, StatusCode::CONFLICT, "recordVersion");
    let (status, body) = app.rest(Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body["userGroup"]["groupName"], "Renamed",
        "a stale update must not change the group: {body}"
    );
    assert_eq!(body["userGroup"]["recordVersion"], version + 1);

    // Over MCP too.
    let (is_error, text) = app
        .tool(
            Some(&admin.token),
            "updateUserGroup",
            json!({ "userGroupId": gid, "groupName": "X", "recordVersion": version + 7 }),
        )
        .await;
    assert!(is_error, "{text}");
    let text = text.as_str().unwrap_or_default();
    assert!(
        text.contains("Conflict") && text.contains("recordVersion"),
        "{text}"
    );

    // Without a version the update just applies.
    let (status, body) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(json!({ "groupName": "Final" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["userGroup"]["recordVersion"], version + 2);

    // Server-owned fields are refused by name.
    let (status, body) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&admin.token),
            Some(json!({ "isActive": false })),
        )
        .await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "isActive");
    let (status, body) = app.rest(Method::GET, &path, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["userGroup"]["isActive"], true);
}

// ---------------------------------------------------------------------------------------------
// Avatar files
// ---------------------------------------------------------------------------------------------

/// The 8-byte PNG signature plus a few bytes: enough to be "an image" here.
const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
];

async fn upload(app: &TestApp, user: &TestUser, name: &str) -> Value {
    let (is_error, file) = app
        .tool(
            Some(&user.token),
            "uploadUserAvatarsFile",
            json!({ "fileName": name, "mimeType": "image/png", "fileData": BASE64.encode(PNG), "metadata": { "alt": "me" } }),
        )
        .await;
    assert!(!is_error, "upload: {file}");
    file
}

fn text_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

#[tokio::test]
async fn avatar_files_are_private_unless_shared_by_access_key() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice.avatar@example.com").await;
    let bob = app.user("bob.avatar@example.com").await;

    let file = upload(&app, &alice, "me.png").await;
    let id = file["id"].as_str().expect("file id").to_string();
    let access_key = file["accessKey"].as_str().expect("accessKey").to_string();
    assert_eq!(access_key.len(), 12, "{file}");
    assert!(
        access_key.chars().all(|c| c.is_ascii_alphanumeric()),
        "{access_key}"
    );
    assert_eq!(file["fileSize"], PNG.len(), "{file}");
    assert_eq!(file["mimeType"], "image/png");
    assert_eq!(file["fileName"], "me.png");
    assert_eq!(file["ownerId"], alice.id.to_string());
    assert_eq!(file["userId"], alice.id.to_string());
    assert_eq!(file["metadata"]["alt"], "me");
    assert!(
        file.get("fileData").is_none(),
        "the upload answer is metadata only: {file}"
    );

    // The owner gets the very same bytes back.
    let (is_error, got) = app
        .tool(
            Some(&alice.token),
            "getUserAvatarsFile",
            json!({ "userAvatarsFileId": id }),
        )
        .await;
    assert!(!is_error, "{got}");
    assert_eq!(got["fileData"], BASE64.encode(PNG));
    assert_eq!(
        BASE64.decode(got["fileData"].as_str().unwrap()).unwrap(),
        PNG
    );
    assert_eq!(got["accessKey"], access_key.as_str());

    // Someone else: hidden without the key, a wrong key, or anonymously; visible with it.
    let (is_error, text) = app
        .tool(
            Some(&bob.token),
            "getUserAvatarsFile",
            json!({ "userAvatarsFileId": id }),
        )
        .await;
    assert!(is_error, "bob read alice's file without the key: {text}");
    assert!(text_of(&text).contains("not found"), "{text}");
    let (is_error, text) = app
        .tool(
            Some(&bob.token),
            "getUserAvatarsFile",
            json!({ "userAvatarsFileId": id, "accessKey": "wrongwrong12" }),
        )
        .await;
    assert!(is_error, "a wrong key opened the file: {text}");
    assert!(text_of(&text).contains("not found"), "{text}");
    let (is_error, text) = app
        .tool(
            None,
            "getUserAvatarsFile",
            json!({ "userAvatarsFileId": id, "accessKey": access_key }),
        )
        .await;
    assert!(is_error, "anonymous callers must log in: {text}");
    let (is_error, shared) = app
        .tool(
            Some(&bob.token),
            "getUserAvatarsFile",
            json!({ "userAvatarsFileId": id, "accessKey": access_key }),
        )
        .await;
    assert!(!is_error, "the access key must open the file: {shared}");
    assert_eq!(shared["fileData"], BASE64.encode(PNG));

    // An admin reads it without the key.
    let admin = app
        .user_with_role("admin.avatar@example.com", "admin")
        .await;
    let (is_error, got) = app
        .tool(
            Some(&admin.token),
            "getUserAvatarsFile",
            json!({ "userAvatarsFileId": id }),
        )
        .await;
    assert!(!is_error, "{got}");
    assert_eq!(got["id"], id.as_str());

    // An unknown id.
    let (is_error, text) = app
        .tool(
            Some(&alice.token),
            "getUserAvatarsFile",
            json!({ "userAvatarsFileId": Uuid::new_v4() }),
        )
        .await;
    assert!(is_error);
    assert!(text_of(&text).contains("avatar file not found"), "{text}");
}

#[tokio::test]
async fn avatar_uploads_are_validated() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice.badavatar@example.com").await;
    let before = app.count("auth.user_avatars_files").await;

    let cases = [
        (
            json!({ "fileName": "x.png", "mimeType": "image/png", "fileData": "!!! not base64 !!!" }),
            "fileData",
        ),
        (
            json!({ "fileName": "x.png", "mimeType": "image/png", "fileData": "" }),
            "fileData",
        ),
        (
            json!({ "fileName": "x.html", "mimeType": "text/html", "fileData": BASE64.encode(b"<script>") }),
            "mimeType",
        ),
        (
            json!({ "fileName": "x.png", "fileData": BASE64.encode(PNG) }),
            "mimeType",
        ),
        (
            json!({ "fileName": "", "mimeType": "image/png", "fileData": BASE64.encode(PNG) }),
            "fileName",
        ),
        (
            json!({ "fileName": "x.png", "mimeType": "image/png", "fileData": BASE64.encode(PNG), "ownerId": Uuid::new_v4() }),
            "ownerId",
        ),
        (
            json!({ "fileName": "x.png", "mimeType": "image/png", "fileData": BASE64.encode(PNG), "accessKey": "mine12345678" }),
            "accessKey",
        ),
    ];
    for (args, field) in cases {
        let (is_error, text) = app
            .tool(Some(&alice.token), "uploadUserAvatarsFile", args.clone())
            .await;
        assert!(is_error, "{args} was accepted: {text}");
        let text = text_of(&text);
        assert!(
            text.contains(field),
            "the error for {args} should name `{field}`: {text}"
        );
        assert!(text.starts_with("BadInput"), "{args}: {text}");
    }

    // Anonymous uploads are refused.
    let (is_error, text) = app
        .tool(
            None,
            "uploadUserAvatarsFile",
            json!({ "fileName": "x.png", "mimeType": "image/png", "fileData": BASE64.encode(PNG) }),
        )
        .await;
    assert!(is_error, "{text}");
    assert!(text_of(&text).starts_with("Unauthenticated"), "{text}");

    assert_eq!(
        app.count("auth.user_avatars_files").await,
        before,
        "refused uploads must not write"
    );
}

#[tokio::test]
async fn avatar_uploads_over_one_mebibyte_are_refused() {
    // The default test server caps bodies at 64 KiB; lift that so the avatar limit itself is hit.
    let app = TestApp::spawn_with(haven::config::Config {
        max_body_bytes: 4 * 1024 * 1024,
        ..test_config()
    })
    .await;
    let alice = app.user("alice.bigavatar@example.com").await;
    let before = app.count("auth.user_avatars_files").await;

    let too_big = vec![7u8; 1024 * 1024 + 1];
    let (is_error, text) = app
        .tool(
            Some(&alice.token),
            "uploadUserAvatarsFile",
            json!({ "fileName": "big.png", "mimeType": "image/png", "fileData": BASE64.encode(&too_big) }),
        )
        .await;
    assert!(is_error, "a file over 1 MiB was accepted: {text}");
    let text = text_of(&text);
    assert!(text.contains("fileData"), "{text}");
    assert!(
        text.contains("1048577"),
        "the error should give the size: {text}"
    );
    assert_eq!(app.count("auth.user_avatars_files").await, before);

    // Exactly 1 MiB is fine.
    let just_right = vec![7u8; 1024 * 1024];
    let (is_error, file) = app
        .tool(
            Some(&alice.token),
            "uploadUserAvatarsFile",
            json!({ "fileName": "max.png", "mimeType": "image/png", "fileData": BASE64.encode(&just_right) }),
        )
        .await;
    assert!(!is_error, "{file}");
    assert_eq!(file["fileSize"], 1024 * 1024);
    assert_eq!(app.count("auth.user_avatars_files").await, before + 1);
}

#[tokio::test]
async fn avatar_lists_and_deletes_respect_ownership() {
    let app = TestApp::spawn().await;
    let alice = app.user("alice.listavatar@example.com").await;
    let bob = app.user("bob.listavatar@example.com").await;
    let admin = app
        .user_with_role("admin.listavatar@example.com", "admin")
        .await;

    let a1 = upload(&app, &alice, "a1.png").await;
    let a2 = upload(&app, &alice, "a2.png").await;
    let b1 = upload(&app, &bob, "b1.png").await;
    let ids = |list: &Value| -> Vec<String> {
        let mut v: Vec<String> = list["userAvatarsFiles"]
            .as_array()
            .unwrap_or_else(|| panic!("no userAvatarsFiles in {list}"))
            .iter()
            .map(|f| f["id"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let id_of = |f: &Value| f["id"].as_str().unwrap().to_string();

    // Users see their own files only, even when filtering for someone else's.
    let (is_error, list) = app
        .tool(Some(&alice.token), "listUserAvatarsFiles", json!({}))
        .await;
    assert!(!is_error, "{list}");
    assert_eq!(ids(&list), sorted(vec![id_of(&a1), id_of(&a2)]));
    assert_eq!(list["paging"]["totalRowCount"], 2, "{list}");
    assert!(
        list["userAvatarsFiles"][0].get("fileData").is_none(),
        "lists carry no content: {list}"
    );
    let (is_error, list) = app
        .tool(
            Some(&alice.token),
            "listUserAvatarsFiles",
            json!({ "ownerId": bob.id }),
        )
        .await;
    assert!(!is_error, "{list}");
    assert!(
        ids(&list).is_empty(),
        "alice must not list bob's files: {list}"
    );
    let (is_error, list) = app
        .tool(Some(&bob.token), "listUserAvatarsFiles", json!({}))
        .await;
    assert!(!is_error, "{list}");
    assert_eq!(ids(&list), vec![id_of(&b1)]);

    // Admins see everyone's, and may filter.
    let (is_error, list) = app
        .tool(Some(&admin.token), "listUserAvatarsFiles", json!({}))
        .await;
    assert!(!is_error, "{list}");
    assert_eq!(ids(&list), sorted(vec![id_of(&a1), id_of(&a2), id_of(&b1)]));
    let (is_error, list) = app
        .tool(
            Some(&admin.token),
            "listUserAvatarsFiles",
            json!({ "ownerId": bob.id }),
        )
        .await;
    assert!(!is_error, "{list}");
    assert_eq!(ids(&list), vec![id_of(&b1)]);

    // Anonymous callers may not list.
    let (is_error, text) = app.tool(None, "listUserAvatarsFiles", json!({})).await;
    assert!(is_error, "{text}");

    // Bob may not delete alice's file (and learns nothing: not found); it stays.
    let (is_error, text) = app
        .tool(
            Some(&bob.token),
            "deleteUserAvatarsFile",
            json!({ "userAvatarsFileId": id_of(&a1) }),
        )
        .await;
    assert!(is_error, "bob deleted alice's file: {text}");
    assert!(text_of(&text).contains("not found"), "{text}");
    let active: bool =
        sqlx::query_scalar("SELECT is_active FROM auth.user_avatars_files WHERE id = $1")
            .bind(Uuid::parse_str(&id_of(&a1)).unwrap())
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(active, "a refused delete must not change the file");

    // Alice deletes it; it disappears from reads and lists; a second delete is not found.
    let (is_error, deleted) = app
        .tool(
            Some(&alice.token),
            "deleteUserAvatarsFile",
            json!({ "userAvatarsFileId": id_of(&a1) }),
        )
        .await;
    assert!(!is_error, "{deleted}");
    assert_eq!(deleted["isActive"], false, "{deleted}");
    assert_eq!(deleted["id"], id_of(&a1));
    let (is_error, text) = app
        .tool(
            Some(&alice.token),
            "getUserAvatarsFile",
            json!({ "userAvatarsFileId": id_of(&a1) }),
        )
        .await;
    assert!(is_error && text_of(&text).contains("not found"), "{text}");
    let (_, list) = app
        .tool(Some(&alice.token), "listUserAvatarsFiles", json!({}))
        .await;
    assert_eq!(ids(&list), vec![id_of(&a2)]);
    let (is_error, text) = app
        .tool(
            Some(&alice.token),
            "deleteUserAvatarsFile",
            json!({ "userAvatarsFileId": id_of(&a1) }),
        )
        .await;
    assert!(is_error && text_of(&text).contains("not found"), "{text}");

    // An admin may delete anyone's.
    let (is_error, deleted) = app
        .tool(
            Some(&admin.token),
            "deleteUserAvatarsFile",
            json!({ "userAvatarsFileId": id_of(&b1) }),
        )
        .await;
    assert!(!is_error, "{deleted}");
    let (_, list) = app
        .tool(Some(&bob.token), "listUserAvatarsFiles", json!({}))
        .await;
    assert!(ids(&list).is_empty(), "{list}");
}
