//! Messaging over REST and MCP against real Postgres: threads between a reservation's guest and
//! host and inquiries about published listings, one open thread per context, only the two
//! participants (and admins) reading, server-owned fields refused, edits kept for audit, reports
//! and moderation hiding a message, attachments checked, and the flood limits.

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::fixtures::{booked, listing};
use crate::helpers::*;

const THREADS: &str = "/messaging-api/v1/messagethreads";
const MESSAGES: &str = "/messaging-api/v1/messages";
const REPORTS: &str = "/messaging-api/v1/messagereports";

/// A host with a listing, a guest who booked it, a stranger and an admin.
struct Cast {
    app: TestApp,
    host: TestUser,
    guest: TestUser,
    stranger: TestUser,
    admin: TestUser,
    listing: Uuid,
    reservation: Uuid,
}

async fn cast(app: TestApp) -> Cast {
    let host = app.user("host@haven.test").await;
    let guest = app.user("guest@haven.test").await;
    let stranger = app.user("stranger@haven.test").await;
    let admin = app.user_with_role("admin@haven.test", "admin").await;
    let listing = listing(&app, &host, json!({})).await;
    let reservation = booked(&app, &guest, listing, 30, 2).await;
    Cast {
        app,
        host,
        guest,
        stranger,
        admin,
        listing,
        reservation,
    }
}

fn id(v: &Value) -> Uuid {
    Uuid::parse_str(v["id"].as_str().unwrap_or_else(|| panic!("no id in {v}"))).unwrap()
}

/// Opens the reservation's thread as the guest over REST.
async fn reservation_thread(c: &Cast) -> Value {
    let (status, body) = c
        .app
        .rest(
            Method::POST,
            THREADS,
            Some(&c.guest.token),
            Some(json!({ "reservationId": c.reservation })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["messageThread"].clone()
}

/// Posts `content` in `thread` as `user` over REST; returns status and body.
async fn post(app: &TestApp, user: &TestUser, thread: Uuid, content: &str) -> (StatusCode, Value) {
    app.rest(
        Method::POST,
        MESSAGES,
        Some(&user.token),
        Some(json!({ "threadId": thread, "content": content })),
    )
    .await
}

#[tokio::test]
async fn a_reservation_s_guest_and_host_talk_and_nobody_else_reads_or_posts() {
    let c = cast(TestApp::spawn().await).await;
    let app = &c.app;
    let thread = reservation_thread(&c).await;
    let thread_id = id(&thread);
    assert_eq!(thread["guestId"], c.guest.id.to_string());
    assert_eq!(thread["hostId"], c.host.id.to_string());
    assert_eq!(thread["listingId"], c.listing.to_string());
    assert_eq!(thread["messageCount"], 0);
    assert_eq!(thread["isOpen"], true);
    assert_eq!(thread["rezDets"][0]["bookingStatus"], "pending");
    assert_eq!(thread["listingDets"][0]["title"], "Sea view loft");

    // One open thread per context: the second answers 409 naming the first; the host's attempt too.
    for who in [&c.guest, &c.host] {
        let (status, body) = app
            .rest(
                Method::POST,
                THREADS,
                Some(&who.token),
                Some(json!({ "reservationId": c.reservation })),
            )
            .await;
        assert_error(status, &body, StatusCode::CONFLICT, &thread_id.to_string());
    }
    assert_eq!(app.count("messaging.message_threads").await, 1);

    // The guest posts over MCP; the server sets sender, recipient and time, and bumps the thread.
    let (err, message) = app
        .tool(
            Some(&c.guest.token),
            "createMessage",
            json!({ "threadId": thread_id, "content": "  Hello! What time is check-in?  " }),
        )
        .await;
    assert!(!err, "{message}");
    assert_eq!(message["content"], "Hello! What time is check-in?");
    assert_eq!(message["senderId"], c.guest.id.to_string());
    assert_eq!(message["recipientId"], c.host.id.to_string());
    assert_eq!(message["messageType"], "text");
    assert_eq!(message["isRead"], false);
    assert_eq!(message["senderName"], "Test User");
    let (_, after) = app
        .tool(
            Some(&c.host.token),
            "getMessageThread",
            json!({ "messageThreadId": thread_id }),
        )
        .await;
    assert_eq!(after["messageCount"], 1);
    assert_eq!(after["unreadCount"], 1, "the host has one unread message");
    let sent: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(message["sentAt"].clone()).unwrap();
    let last: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(after["lastMessageAt"].clone()).unwrap();
    assert_eq!(sent, last, "lastMessageAt is the message's sentAt");

    // The host replies over REST and reads the conversation, oldest first, with its context.
    let (status, reply) = post(app, &c.host, thread_id, "From 3 pm. Welcome!").await;
    assert_eq!(status, StatusCode::CREATED, "{reply}");
    let (status, page) = app
        .rest(
            Method::GET,
            &format!("/messaging-api/v1/threadmessages/{thread_id}"),
            Some(&c.host.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(
        field_of(&page["messages"], "content"),
        ["Hello! What time is check-in?", "From 3 pm. Welcome!"]
    );
    assert_eq!(page["thread"]["id"], thread_id.to_string());
    assert_eq!(page["listing"]["title"], "Sea view loft");
    let (status, plain) = app
        .rest(
            Method::GET,
            &format!("/messaging-api/v1/gotthreadmessages/{thread_id}"),
            Some(&c.guest.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{plain}");
    assert_eq!(plain["messages"].as_array().unwrap().len(), 2);

    // Read state is the recipient's: the host marks the guest's message read; the guest cannot.
    let first = id(&message);
    let (status, body) = app
        .rest(
            Method::PATCH,
            &format!("{MESSAGES}/{first}"),
            Some(&c.guest.token),
            Some(json!({ "isRead": true })),
        )
        .await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "recipient");
    let (status, body) = app
        .rest(
            Method::PATCH,
            &format!("{MESSAGES}/{first}"),
            Some(&c.host.token),
            Some(json!({ "isRead": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["message"]["isRead"], true);
    assert!(body["message"]["readAt"].is_string());
    let (_, mine) = app
        .tool(Some(&c.host.token), "listMessageThreads", json!({}))
        .await;
    assert_eq!(mine["messageThreads"][0]["unreadCount"], 0);

    // A stranger sees and posts nothing: not found, and nothing written.
    let before = app.count("messaging.messages").await;
    for (method, path, body) in [
        (Method::GET, format!("{THREADS}/{thread_id}"), None),
        (
            Method::GET,
            format!("/messaging-api/v1/threadmessages/{thread_id}"),
            None,
        ),
        (Method::GET, format!("{MESSAGES}/{first}"), None),
        (
            Method::POST,
            MESSAGES.to_string(),
            Some(json!({ "threadId": thread_id, "content": "let me in" })),
        ),
        (
            Method::PATCH,
            format!("{THREADS}/{thread_id}"),
            Some(json!({ "isOpen": false })),
        ),
        (Method::DELETE, format!("{MESSAGES}/{first}"), None),
    ] {
        let (status, resp) = app
            .rest(method.clone(), &path, Some(&c.stranger.token), body)
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {path}: {resp}");
    }
    let (_, theirs) = app
        .tool(Some(&c.stranger.token), "listMessageThreads", json!({}))
        .await;
    assert_eq!(theirs["messageThreads"], json!([]));
    let (err, text) = app
        .tool(
            Some(&c.stranger.token),
            "createMessage",
            json!({ "threadId": thread_id, "content": "let me in" }),
        )
        .await;
    assert!(
        err && text.as_str().unwrap().contains("not found"),
        "{text}"
    );
    assert_eq!(app.count("messaging.messages").await, before);

    // Admins read every thread but do not post in other people's conversations.
    let (status, _) = app
        .rest(
            Method::GET,
            &format!("/messaging-api/v1/threadmessages/{thread_id}"),
            Some(&c.admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = post(app, &c.admin, thread_id, "admin here").await;
    assert_error(status, &body, StatusCode::FORBIDDEN, "guest and host");

    // Anonymous callers are asked to log in.
    let (status, _) = app.rest(Method::GET, THREADS, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn server_owned_fields_and_bad_messages_are_refused_naming_the_field_and_nothing_is_written()
{
    let c = cast(TestApp::spawn().await).await;
    let app = &c.app;
    let thread_id = id(&reservation_thread(&c).await);
    let good = json!({ "threadId": thread_id, "content": "hi" });
    for (field, value) in [
        ("senderId", json!(c.host.id)),
        ("recipientId", json!(c.guest.id)),
        ("sentAt", json!("2020-01-01T00:00:00Z")),
        ("isModerated", json!(false)),
        ("isFlagged", json!(false)),
        ("flaggedBy", json!(c.host.id)),
        ("isRead", json!(true)),
    ] {
        let mut body = good.clone();
        body[field] = value;
        let (status, resp) = app
            .rest(
                Method::POST,
                MESSAGES,
                Some(&c.guest.token),
                Some(body.clone()),
            )
            .await;
        assert_error(status, &resp, StatusCode::BAD_REQUEST, field);
        assert!(
            resp["message"].as_str().unwrap().contains("server"),
            "{resp}"
        );
        let (err, text) = app.tool(Some(&c.guest.token), "createMessage", body).await;
        assert!(
            err && text.as_str().unwrap().contains(field),
            "{field}: {text}"
        );
    }
    for (field, value) in [
        ("messageCount", json!(5)),
        ("lastMessageAt", json!("2020-01-01T00:00:00Z")),
        ("guestId", json!(c.stranger.id)),
        ("hostId", json!(c.stranger.id)),
    ] {
        let (status, resp) = app
            .rest(
                Method::PATCH,
                &format!("{THREADS}/{thread_id}"),
                Some(&c.guest.token),
                Some(json!({ field: value, "isOpen": true })),
            )
            .await;
        assert_error(status, &resp, StatusCode::BAD_REQUEST, field);
    }
    let (status, resp) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&c.guest.token),
            Some(json!({ "reservationId": c.reservation, "messageCount": 3 })),
        )
        .await;
    assert_error(status, &resp, StatusCode::BAD_REQUEST, "messageCount");
    let (status, resp) = app
        .rest(
            Method::POST,
            REPORTS,
            Some(&c.guest.token),
            Some(json!({ "messageId": Uuid::new_v4(), "reportReason": "spam", "moderationStatus": "closed" })),
        )
        .await;
    assert_error(status, &resp, StatusCode::BAD_REQUEST, "moderationStatus");

    // Empty, blank and oversized texts; unknown threads; wrong types.
    for (content, needle) in [
        (json!(""), "content"),
        (json!("   "), "content"),
        (json!("x".repeat(5001)), "5000"),
        (json!(42), "content"),
    ] {
        let (status, resp) = app
            .rest(
                Method::POST,
                MESSAGES,
                Some(&c.guest.token),
                Some(json!({ "threadId": thread_id, "content": content })),
            )
            .await;
        assert_error(status, &resp, StatusCode::BAD_REQUEST, needle);
    }
    let (status, resp) = post(app, &c.guest, Uuid::new_v4(), "anyone there?").await;
    assert_error(status, &resp, StatusCode::NOT_FOUND, "thread");
    let (status, resp) = app
        .rest(
            Method::POST,
            MESSAGES,
            Some(&c.guest.token),
            Some(json!({ "threadId": thread_id, "content": "hi", "messageType": "system" })),
        )
        .await;
    assert_error(status, &resp, StatusCode::BAD_REQUEST, "messageType");

    // Attachments: links must be images or documents, files must be what they claim.
    for url in [
        "https://example.org/setup.exe",
        "ftp://example.org/photo.png",
        "not a link",
    ] {
        let (status, resp) = app
            .rest(
                Method::POST,
                MESSAGES,
                Some(&c.guest.token),
                Some(json!({ "threadId": thread_id, "content": "see", "messageType": "media", "mediaUrl": url })),
            )
            .await;
        assert_error(status, &resp, StatusCode::BAD_REQUEST, "mediaUrl");
    }
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let (status, resp) = app
        .rest(
            Method::POST,
            MESSAGES,
            Some(&c.guest.token),
            Some(json!({ "threadId": thread_id, "content": "photo", "attachment": {
                "fileName": "door.png", "mimeType": "image/png", "fileData": b64(b"MZ\x90\x00 not a png") } })),
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::BAD_REQUEST,
        "attachment.fileData",
    );
    let (status, resp) = app
        .rest(
            Method::POST,
            MESSAGES,
            Some(&c.guest.token),
            Some(json!({ "threadId": thread_id, "content": "photo", "attachment": {
                "fileName": "door.exe", "mimeType": "application/x-msdownload", "fileData": b64(b"MZ") } })),
        )
        .await;
    assert_error(status, &resp, StatusCode::BAD_REQUEST, "mimeType");
    assert_eq!(
        app.count("messaging.messages").await,
        0,
        "nothing was written"
    );
    assert_eq!(app.count("messaging.message_attachments").await, 0);
    let (_, thread) = app
        .tool(
            Some(&c.guest.token),
            "getMessageThread",
            json!({ "messageThreadId": thread_id }),
        )
        .await;
    assert_eq!(thread["messageCount"], 0);

    // A real image and a real link go through; the recipient downloads the file, others cannot.
    let png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR";
    let (status, resp) = app
        .rest(
            Method::POST,
            MESSAGES,
            Some(&c.guest.token),
            Some(
                json!({ "threadId": thread_id, "content": "the door", "attachment": {
                "fileName": "door.png", "mimeType": "image/png", "fileData": b64(png) } }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(resp["message"]["messageType"], "media");
    assert_eq!(resp["message"]["attachment"]["fileSize"], png.len());
    let media = id(&resp["message"]);
    let (err, file) = app
        .tool(
            Some(&c.host.token),
            "getMessageAttachment",
            json!({ "messageId": media }),
        )
        .await;
    assert!(!err, "{file}");
    assert_eq!(file["fileData"], b64(png));
    let (status, _) = app
        .rest(
            Method::GET,
            &format!("{MESSAGES}/{media}/attachment"),
            Some(&c.stranger.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, resp) = app
        .rest(
            Method::POST,
            MESSAGES,
            Some(&c.host.token),
            Some(json!({ "threadId": thread_id, "content": "house rules", "mediaUrl": "https://example.org/rules.PDF" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(resp["message"]["messageType"], "media");

    // A closed thread takes no messages; reopening it does.
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &format!("{THREADS}/{thread_id}"),
            Some(&c.host.token),
            Some(json!({ "isOpen": false })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    let before = app.count("messaging.messages").await;
    let (status, resp) = post(app, &c.guest, thread_id, "still there?").await;
    assert_error(status, &resp, StatusCode::UNPROCESSABLE_ENTITY, "closed");
    assert_eq!(app.count("messaging.messages").await, before);
    // While it is closed a new thread for the same reservation may be opened; reopening the old
    // one then collides with it (409 naming the open one).
    let fresh = id(&reservation_thread(&c).await);
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &format!("{THREADS}/{thread_id}"),
            Some(&c.guest.token),
            Some(json!({ "isOpen": true })),
        )
        .await;
    assert_error(status, &resp, StatusCode::CONFLICT, &fresh.to_string());
}

#[tokio::test]
async fn senders_edit_and_delete_reports_reach_admins_and_moderated_messages_vanish_for_participants(
) {
    let c = cast(TestApp::spawn().await).await;
    let app = &c.app;
    let thread_id = id(&reservation_thread(&c).await);
    let (_, rude) = post(app, &c.guest, thread_id, "Your flat is a dump, pay me back").await;
    let rude = id(&rude["message"]);
    let path = format!("{MESSAGES}/{rude}");

    // Only the sender edits; the earlier text is kept for audit.
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&c.host.token),
            Some(json!({ "content": "nice" })),
        )
        .await;
    assert_error(status, &resp, StatusCode::FORBIDDEN, "sender");
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&c.guest.token),
            Some(json!({ "content": "Your flat is not as described" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["message"]["content"], "Your flat is not as described");
    assert!(resp["message"]["editedAt"].is_string());
    let kept: String = sqlx::query_scalar(
        "SELECT previous_content FROM messaging.message_edits WHERE message_id = $1",
    )
    .bind(rude)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(kept, "Your flat is a dump, pay me back");
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&c.guest.token),
            Some(json!({ "isModerated": true })),
        )
        .await;
    assert_error(status, &resp, StatusCode::FORBIDDEN, "admins");

    // The host reports it: the message is flagged, the report pending; once per reporter.
    let (err, report) = app
        .tool(
            Some(&c.host.token),
            "createMessageReport",
            json!({ "messageId": rude, "reportReason": "Harassment" }),
        )
        .await;
    assert!(!err, "{report}");
    assert_eq!(report["moderationStatus"], "pending");
    assert_eq!(report["reportedBy"], c.host.id.to_string());
    let report_id = id(&report);
    let (status, resp) = app
        .rest(
            Method::POST,
            REPORTS,
            Some(&c.host.token),
            Some(json!({ "messageId": rude, "reportReason": "again" })),
        )
        .await;
    assert_error(status, &resp, StatusCode::CONFLICT, "already reported");
    let (status, resp) = app
        .rest(
            Method::POST,
            REPORTS,
            Some(&c.guest.token),
            Some(json!({ "messageId": rude, "reportReason": "me" })),
        )
        .await;
    assert_error(status, &resp, StatusCode::UNPROCESSABLE_ENTITY, "you sent");
    let (_, flagged) = app
        .tool(
            Some(&c.guest.token),
            "getMessage",
            json!({ "messageId": rude }),
        )
        .await;
    assert_eq!(flagged["isFlagged"], true);
    assert_eq!(flagged["flaggedBy"], c.host.id.to_string());

    // Reporter, sender and admins see the report; a stranger does not; only admins handle it.
    for who in [&c.host, &c.guest, &c.admin] {
        let (status, _) = app
            .rest(
                Method::GET,
                &format!("{REPORTS}/{report_id}"),
                Some(&who.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let (_, list) = app
            .tool(Some(&who.token), "listMessageReports", json!({}))
            .await;
        assert_eq!(list["messageReports"].as_array().unwrap().len(), 1);
    }
    let (status, _) = app
        .rest(
            Method::GET,
            &format!("{REPORTS}/{report_id}"),
            Some(&c.stranger.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &format!("{REPORTS}/{report_id}"),
            Some(&c.host.token),
            Some(json!({ "moderationStatus": "closed" })),
        )
        .await;
    assert_error(status, &resp, StatusCode::FORBIDDEN, "admin");
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &format!("{REPORTS}/{report_id}"),
            Some(&c.admin.token),
            Some(json!({ "moderationStatus": "reviewed", "resolutionNotes": "Hidden: abusive." })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["messageReport"]["adminId"], c.admin.id.to_string());
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &format!("{REPORTS}/{report_id}"),
            Some(&c.admin.token),
            Some(json!({ "adminId": c.guest.id })),
        )
        .await;
    assert_error(status, &resp, StatusCode::BAD_REQUEST, "adminId");

    // The admin moderates the message: both participants lose it, admins keep seeing it.
    let (status, resp) = app
        .rest(
            Method::PATCH,
            &path,
            Some(&c.admin.token),
            Some(json!({ "isModerated": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    for who in [&c.guest, &c.host] {
        let (status, _) = app.rest(Method::GET, &path, Some(&who.token), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (_, page) = app
            .tool(
                Some(&who.token),
                "getThreadMessages",
                json!({ "threadId": thread_id }),
            )
            .await;
        assert_eq!(page["messages"], json!([]), "hidden from participants");
    }
    let (_, page) = app
        .tool(
            Some(&c.admin.token),
            "getThreadMessages",
            json!({ "threadId": thread_id }),
        )
        .await;
    assert_eq!(page["messages"][0]["isModerated"], true);
    // The "new message" notification quoting it no longer shows its text, and no notification
    // event ever carried it.
    let quoted: Vec<String> = sqlx::query_scalar(
        "SELECT body FROM notification.notifications WHERE event_type = 'newMessage' AND data->>'messageId' = $1",
    )
    .bind(rude.to_string())
    .fetch_all(&app.db)
    .await
    .unwrap();
    assert!(
        !quoted.is_empty() && quoted.iter().all(String::is_empty),
        "{quoted:?}"
    );
    let leaked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events.domain_events WHERE kind = 'notification' AND payload ? 'body'",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(leaked, 0);

    // The sender deletes their own message; it is hidden but kept.
    let (_, second) = post(app, &c.guest, thread_id, "Sorry about earlier.").await;
    let second = id(&second["message"]);
    let (status, resp) = app
        .rest(
            Method::DELETE,
            &format!("{MESSAGES}/{second}"),
            Some(&c.host.token),
            None,
        )
        .await;
    assert_error(status, &resp, StatusCode::FORBIDDEN, "sender");
    let (status, resp) = app
        .rest(
            Method::DELETE,
            &format!("{MESSAGES}/{second}"),
            Some(&c.guest.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["message"]["isActive"], false);
    let (status, _) = app
        .rest(
            Method::GET,
            &format!("{MESSAGES}/{second}"),
            Some(&c.host.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let kept: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messaging.messages WHERE thread_id = $1")
            .bind(thread_id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert_eq!(kept, 2, "deleted and moderated messages stay for audit");

    // Archiving the thread removes it from both lists.
    let (status, resp) = app
        .rest(
            Method::DELETE,
            &format!("{THREADS}/{thread_id}"),
            Some(&c.host.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{resp}");
    assert_eq!(resp["messageThread"]["isActive"], false);
    let (_, list) = app
        .tool(Some(&c.guest.token), "listMessageThreads", json!({}))
        .await;
    assert_eq!(list["messageThreads"], json!([]));
}

#[tokio::test]
async fn anyone_may_ask_a_host_about_a_published_listing_and_floods_are_limited() {
    let mut config = test_config();
    config.messages_per_minute = 3;
    config.inquiries_per_hour = 2;
    let app = TestApp::spawn_with(config).await;
    let host = app.user("host@haven.test").await;
    let asker = app.user("asker@haven.test").await;
    let nobody = app.user("nobody@haven.test").await;
    let published = listing(&app, &host, json!({})).await;
    let second = listing(&app, &host, json!({ "title": "Garden house" })).await;
    let draft = listing(&app, &host, json!({ "isPublished": false })).await;

    // An inquiry about a published listing; not about a draft; the host does not ask themselves.
    let (status, resp) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&asker.token),
            Some(json!({ "listingId": published })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    assert_eq!(resp["messageThread"]["hostId"], host.id.to_string());
    assert_eq!(resp["messageThread"]["guestId"], asker.id.to_string());
    let thread = id(&resp["messageThread"]);
    let (status, _) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&asker.token),
            Some(json!({ "listingId": draft })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, resp) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&host.token),
            Some(json!({ "listingId": published })),
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "you host this listing",
    );
    // Writing to a user who hosts nothing, or to a guest who never booked, is refused.
    let (status, resp) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&asker.token),
            Some(json!({ "hostId": nobody.id })),
        )
        .await;
    assert_error(
        status,
        &resp,
        StatusCode::UNPROCESSABLE_ENTITY,
        "published listing",
    );
    let (status, resp) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&host.token),
            Some(json!({ "guestId": nobody.id })),
        )
        .await;
    assert_error(status, &resp, StatusCode::UNPROCESSABLE_ENTITY, "booked");
    let (status, _) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&asker.token),
            Some(json!({ "hostId": Uuid::new_v4() })),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "an unknown host");
    let (status, resp) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&asker.token),
            Some(json!({ "hostId": host.id, "guestId": nobody.id })),
        )
        .await;
    assert_error(status, &resp, StatusCode::FORBIDDEN, "must be you");
    let (status, resp) = app
        .rest(Method::POST, THREADS, Some(&asker.token), Some(json!({})))
        .await;
    assert_error(status, &resp, StatusCode::BAD_REQUEST, "reservationId");

    // The flood limit: three messages a minute, then 429 with Retry-After (REST) or a tool error.
    for n in 0..3 {
        let (status, resp) = post(&app, &asker, thread, &format!("question {n}")).await;
        assert_eq!(status, StatusCode::CREATED, "{resp}");
    }
    let resp = app
        .http
        .post(format!("{}{MESSAGES}", app.base))
        .bearer_auth(&asker.token)
        .json(&json!({ "threadId": thread, "content": "one more" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("too many messages"),
        "{body}"
    );
    let (err, text) = app
        .tool(
            Some(&asker.token),
            "createMessage",
            json!({ "threadId": thread, "content": "x" }),
        )
        .await;
    assert!(
        err && text.as_str().unwrap().starts_with("RateLimited:"),
        "{text}"
    );
    assert_eq!(app.count("messaging.messages").await, 3);
    // The host's replies have their own budget.
    let (status, _) = post(&app, &host, thread, "Ask away").await;
    assert_eq!(status, StatusCode::CREATED);

    // Inquiries: two an hour (the first counts), then 429.
    let (status, resp) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&asker.token),
            Some(json!({ "listingId": second })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{resp}");
    let (status, resp) = app
        .rest(
            Method::POST,
            THREADS,
            Some(&asker.token),
            Some(json!({ "hostId": host.id })),
        )
        .await;
    assert_error(status, &resp, StatusCode::TOO_MANY_REQUESTS, "inquiry");
    assert_eq!(app.count("messaging.message_threads").await, 2);
}
