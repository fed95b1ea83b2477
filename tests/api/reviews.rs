//! Reviews over REST and MCP: double-blind release (both sides or the window), moderation,
//! the completed-stay and party rules, server-owned fields, and aggregates kept in step.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::*;

const REVIEWS: &str = "/reviewsystem-api/v1/reviews";
const AGGREGATES: &str = "/reviewsystem-api/v1/reviewaggregates";

/// Creates a review over REST; returns status and body.
async fn write(
    app: &TestApp,
    author: &TestUser,
    reservation: Uuid,
    kind: &str,
    reviewee: Uuid,
    rating: i64,
    text: &str,
) -> (StatusCode, Value) {
    app.rest(
        Method::POST,
        REVIEWS,
        Some(&author.token),
        Some(json!({
            "reservationId": reservation, "revieweeType": kind, "revieweeId": reviewee,
            "rating": rating, "reviewText": text,
        })),
    )
    .await
}

/// Creates a review that must succeed; returns it.
async fn written(
    app: &TestApp,
    author: &TestUser,
    reservation: Uuid,
    kind: &str,
    reviewee: Uuid,
    rating: i64,
    text: &str,
) -> Value {
    let (status, body) = write(app, author, reservation, kind, reviewee, rating, text).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["review"].clone()
}

/// The public reviews matching `query` (anonymous listReviews).
async fn public_reviews(app: &TestApp, query: &str) -> Vec<Value> {
    let (status, body) = app
        .rest(Method::GET, &format!("{REVIEWS}?{query}"), None, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["reviews"].as_array().unwrap().clone()
}

/// The aggregate of `reviewee` as `token` lists it, if listed.
async fn aggregate(
    app: &TestApp,
    token: Option<&str>,
    reviewee: Uuid,
    kind: &str,
) -> Option<Value> {
    let (status, body) = app
        .rest(
            Method::GET,
            &format!("{AGGREGATES}?revieweeId={reviewee}&revieweeType={kind}"),
            token,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let list = body["reviewAggregates"].as_array().unwrap();
    assert!(list.len() <= 1, "{body}");
    list.first().cloned()
}

/// The (count, average) an anonymous caller sees for `reviewee`.
async fn stats(app: &TestApp, reviewee: Uuid, kind: &str) -> Option<(i64, f64)> {
    aggregate(app, None, reviewee, kind).await.map(|a| {
        (
            a["reviewCount"].as_i64().unwrap(),
            a["averageRating"].as_f64().unwrap(),
        )
    })
}

/// A fresh app with a host, a guest, a stranger, an admin and a completed stay between the first
/// two (users' emails carry `tag`).
struct Stay {
    app: TestApp,
    host: TestUser,
    guest: TestUser,
    stranger: TestUser,
    admin: TestUser,
    listing: Uuid,
    stay: Uuid,
}

async fn stay(tag: &str) -> Stay {
    let app = TestApp::spawn().await;
    let host = app.user(&format!("host.{tag}@example.com")).await;
    let guest = app.user(&format!("guest.{tag}@example.com")).await;
    let stranger = app.user(&format!("stranger.{tag}@example.com")).await;
    let admin = app
        .user_with_role(&format!("admin.{tag}@example.com"), "admin")
        .await;
    let (listing, stay) = seed_stay(&app, host.id, guest.id, "complete").await;
    Stay {
        app,
        host,
        guest,
        stranger,
        admin,
        listing,
        stay,
    }
}

/// A review's stored row (for "nothing changed" checks).
async fn review_row(app: &TestApp, id: &str) -> Value {
    sqlx::query_scalar("SELECT to_jsonb(r) FROM reviews.reviews r WHERE id = $1::uuid")
        .bind(id)
        .fetch_one(&app.db)
        .await
        .unwrap()
}

/// PATCHes review `id` as `token` with `body`.
async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> (StatusCode, Value) {
    app.rest(
        Method::PATCH,
        &format!("{REVIEWS}/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

/// PATCHes review `id` as `token`, insisting it succeeded; returns the updated review.
async fn patched(app: &TestApp, token: &str, id: &str, body: Value) -> Value {
    let (status, body) = patch(app, token, id, body).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["review"].clone()
}

/// GETs or DELETEs review `id` as `token`.
async fn on_review(
    app: &TestApp,
    method: Method,
    id: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    app.rest(method, &format!("{REVIEWS}/{id}"), token, None)
        .await
}

/// Calls tool `name` over MCP, which must succeed; returns its structured output.
async fn tool_ok(app: &TestApp, token: Option<&str>, name: &str, args: Value) -> Value {
    let (is_error, out) = app.tool(token, name, args).await;
    assert!(!is_error, "{name}: {out}");
    out
}

fn id_of(review: &Value) -> String {
    review["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_review_stays_blind_until_both_sides_wrote_then_aggregates_follow() {
    let Stay {
        app,
        host,
        guest,
        stranger: other,
        admin,
        listing,
        stay,
        ..
    } = stay("blind").await;

    let about_host = written(&app, &guest, stay, "host", host.id, 4, "Warm welcome.").await;
    assert_eq!(about_host["isPublished"], false, "{about_host}");
    assert_eq!(about_host["moderationStatus"], "approved");
    assert_eq!(about_host["moderationStatus_idx"], 1);
    assert_eq!(about_host["revieweeType_idx"], 0);
    assert_eq!(about_host["reviewerId"], guest.id.to_string());
    assert_eq!(about_host["_owner"], guest.id.to_string());
    assert!(about_host["publishedAt"].is_null());
    assert!(
        about_host.get("blindSubmissionCode").is_none(),
        "the blind code is never shown to non-admins: {about_host}"
    );
    let about_listing = written(&app, &guest, stay, "listing", listing, 5, "Spotless.").await;
    let host_review_id = id_of(&about_host);

    // Hidden from the public, the other side and strangers; the author sees it.
    assert!(public_reviews(&app, &format!("reservationId={stay}"))
        .await
        .is_empty());
    for token in [None, Some(other.token.as_str()), Some(host.token.as_str())] {
        let (status, body) = on_review(&app, Method::GET, &host_review_id, token).await;
        assert_error(status, &body, StatusCode::NOT_FOUND, "review not found");
    }
    let mine = tool_ok(
        &app,
        Some(&guest.token),
        "getReview",
        json!({ "reviewId": host_review_id }),
    )
    .await;
    assert_eq!(mine["reviewText"], "Warm welcome.");
    let (status, body) = on_review(&app, Method::GET, &host_review_id, Some(&admin.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["review"]["blindSubmissionCode"].as_str().map(str::len),
        Some(24),
        "admins see the blind code: {body}"
    );
    assert_eq!(stats(&app, host.id, "host").await, None);

    // The same subject twice is a conflict, and nothing is written.
    let before = app.count("reviews.reviews").await;
    let (status, body) = write(&app, &guest, stay, "host", host.id, 2, "Again.").await;
    assert_error(status, &body, StatusCode::CONFLICT, "already reviewed");
    assert_eq!(app.count("reviews.reviews").await, before);

    // The host writes (over MCP): every review of the stay publishes at once.
    let about_guest = tool_ok(
        &app,
        Some(&host.token),
        "createReview",
        json!({ "reservationId": stay, "revieweeType": "guest", "revieweeId": guest.id,
                    "rating": 3, "reviewText": "Left the kitchen messy." }),
    )
    .await;
    assert_eq!(about_guest["isPublished"], true, "{about_guest}");
    assert!(about_guest["publishedAt"].is_string());
    let published = public_reviews(&app, &format!("reservationId={stay}")).await;
    assert_eq!(published.len(), 3, "{published:?}");
    assert!(published.iter().all(|r| r["isPublished"] == true));
    assert!(published
        .iter()
        .all(|r| r.get("blindSubmissionCode").is_none()));
    let (status, body) = on_review(&app, Method::GET, &host_review_id, Some(&other.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["review"]["id"], host_review_id);
    assert_eq!(
        public_reviews(&app, &format!("revieweeType=LISTING&revieweeId={listing}")).await[0]["id"],
        about_listing["id"]
    );

    assert_eq!(stats(&app, host.id, "host").await, Some((1, 4.0)));
    assert_eq!(stats(&app, listing, "listing").await, Some((1, 5.0)));
    assert_eq!(stats(&app, guest.id, "guest").await, Some((1, 3.0)));

    // A second stay with the same host: the host's average moves to a non-integer number.
    let (_, stay2) = seed_stay(&app, host.id, other.id, "complete").await;
    written(&app, &other, stay2, "host", host.id, 5, "Perfect host.").await;
    written(&app, &host, stay2, "guest", other.id, 5, "Perfect guest.").await;
    let host_agg = aggregate(&app, None, host.id, "host").await.unwrap();
    assert_eq!(host_agg["reviewCount"], 2, "{host_agg}");
    assert_eq!(
        host_agg["averageRating"],
        json!(4.5),
        "a JSON number: {host_agg}"
    );
    assert_eq!(host_agg["visibilityStatus"], "public");
    assert_eq!(host_agg["visibilityStatus_idx"], 0);
    assert_eq!(host_agg["revieweeType"], "host");

    let got = tool_ok(
        &app,
        None,
        "getReviewAggregate",
        json!({ "reviewAggregateId": host_agg["id"] }),
    )
    .await;
    assert_eq!(got["averageRating"], json!(4.5));
    let host_reviews = public_reviews(&app, &format!("revieweeId={host}", host = host.id)).await;
    assert_eq!(host_reviews.len(), 2);
    assert_eq!(
        host_reviews[0]["reviewText"], "Perfect host.",
        "newest first: {host_reviews:?}"
    );
}

#[tokio::test]
async fn the_blind_window_releases_a_lone_review_and_freezes_it() {
    let Stay {
        app,
        host,
        guest,
        stay,
        ..
    } = stay("window").await;
    let review = written(&app, &guest, stay, "host", host.id, 2, "Noisy street.").await;
    let id = id_of(&review);

    // Before publish the reviewer may still edit it.
    let review = patched(
        &app,
        &guest.token,
        &id,
        json!({ "reviewText": "Very noisy street." }),
    )
    .await;
    assert_eq!(review["reviewText"], "Very noisy street.");

    // 13 days: still blind. 15 days: the next read releases it.
    sqlx::query("UPDATE reviews.reviews SET submitted_at = now() - interval '13 days'")
        .execute(&app.db)
        .await
        .unwrap();
    assert!(public_reviews(&app, "").await.is_empty());
    sqlx::query("UPDATE reviews.reviews SET submitted_at = now() - interval '15 days'")
        .execute(&app.db)
        .await
        .unwrap();
    let listed = public_reviews(&app, &format!("revieweeId={}", host.id)).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["isPublished"], true);
    assert!(listed[0]["publishedAt"].is_string());
    assert_eq!(stats(&app, host.id, "host").await, Some((1, 2.0)));

    // Published: the reviewer can neither edit nor delete it any more.
    let (status, body) = patch(
        &app,
        &guest.token,
        &id,
        json!({ "reviewText": "Changed my mind." }),
    )
    .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "before it is published",
    );
    let (is_error, text) = app
        .tool(
            Some(&guest.token),
            "deleteReview",
            json!({ "reviewId": id }),
        )
        .await;
    assert!(
        is_error && text.as_str().unwrap().contains("published"),
        "{text}"
    );
    assert_eq!(stats(&app, host.id, "host").await, Some((1, 2.0)));
}

#[tokio::test]
async fn only_the_parties_of_a_completed_stay_review_and_only_what_they_may() {
    let Stay {
        app,
        host,
        guest,
        stranger,
        admin,
        listing,
        stay,
        ..
    } = stay("rules").await;
    let (_, upcoming) = seed_stay(&app, host.id, guest.id, "confirmed").await;
    let before = app.count("reviews.reviews").await;

    let (status, body) = write(&app, &guest, upcoming, "host", host.id, 5, "Early.").await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "reviews open once the stay is complete",
    );
    for outsider in [&stranger, &admin] {
        let (status, body) = write(&app, outsider, stay, "host", host.id, 1, "Never there.").await;
        assert_error(
            status,
            &body,
            StatusCode::NOT_FOUND,
            "reservation not found",
        );
    }
    let (status, body) = app
        .rest(
            Method::POST,
            REVIEWS,
            None,
            Some(
                json!({ "reservationId": stay, "revieweeType": "host", "revieweeId": host.id,
                         "rating": 5, "reviewText": "Anonymous." }),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // The reviewee must match the writer's side of the stay.
    let (status, body) = write(&app, &host, stay, "listing", listing, 5, "My own flat.").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "revieweeType");
    let (status, body) = write(&app, &guest, stay, "guest", guest.id, 5, "Me.").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "revieweeType");
    let (status, body) = write(&app, &guest, stay, "host", stranger.id, 5, "Wrong host.").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "revieweeId");
    let (status, body) = write(&app, &guest, stay, "listing", host.id, 5, "Wrong listing.").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "revieweeId");

    // Ratings are whole numbers 1-5; the text is required.
    for rating in [json!(6), json!(0), json!(4.5), json!("5")] {
        let (status, body) = app
            .rest(
                Method::POST,
                REVIEWS,
                Some(&guest.token),
                Some(
                    json!({ "reservationId": stay, "revieweeType": "host", "revieweeId": host.id,
                             "rating": rating, "reviewText": "Fine." }),
                ),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, "rating");
    }
    let (status, body) = write(&app, &guest, stay, "host", host.id, 5, "   ").await;
    assert_error(status, &body, StatusCode::BAD_REQUEST, "reviewText");

    // Server-owned fields are refused by name, over REST and MCP.
    for (field, value) in [
        ("isPublished", json!(true)),
        ("moderationStatus", json!("approved")),
        ("reviewerId", json!(stranger.id)),
        ("blindSubmissionCode", json!("abc")),
        ("submittedAt", json!("2020-01-01T00:00:00Z")),
    ] {
        let mut args = json!({ "reservationId": stay, "revieweeType": "host",
                               "revieweeId": host.id, "rating": 5, "reviewText": "Great." });
        args[field] = value;
        let (status, body) = app
            .rest(
                Method::POST,
                REVIEWS,
                Some(&guest.token),
                Some(args.clone()),
            )
            .await;
        assert_error(status, &body, StatusCode::BAD_REQUEST, field);
        assert!(
            body["message"].as_str().unwrap().contains("server"),
            "{body}"
        );
        let (is_error, text) = app.tool(Some(&guest.token), "createReview", args).await;
        assert!(is_error && text.as_str().unwrap().contains(field), "{text}");
    }
    assert_eq!(
        app.count("reviews.reviews").await,
        before,
        "nothing was written"
    );
    assert_eq!(
        app.count("reviews.review_aggregates").await,
        0,
        "no aggregate either"
    );
}

#[tokio::test]
async fn flagged_reviews_wait_for_an_admin_and_rejection_drops_them_from_the_aggregate() {
    let Stay {
        app,
        host,
        guest,
        admin,
        stay,
        ..
    } = stay("moderation").await;

    let flagged = written(
        &app,
        &guest,
        stay,
        "host",
        host.id,
        4,
        "Nice, but book direct next time: call 555 123 4567",
    )
    .await;
    assert_eq!(flagged["moderationStatus"], "pending", "{flagged}");
    assert_eq!(flagged["moderationStatus_idx"], 0);
    let id = id_of(&flagged);
    written(&app, &host, stay, "guest", guest.id, 5, "Model guest.").await;

    // Published by the double-blind rule, yet invisible while pending.
    let listed = public_reviews(&app, &format!("reservationId={stay}")).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["revieweeType"], "guest");
    let (status, body) = on_review(&app, Method::GET, &id, Some(&host.token)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "review not found");
    assert_eq!(stats(&app, host.id, "host").await, None);

    // Reviewers cannot moderate, not even their own review; nothing changes.
    let row_before = review_row(&app, &id).await;
    for (token, body) in [
        (&guest.token, json!({ "moderationStatus": "approved" })),
        (&host.token, json!({ "isPublished": false })),
    ] {
        let (status, body) = patch(&app, token, &id, body).await;
        assert_error(
            status,
            &body,
            StatusCode::FORBIDDEN,
            "only admins moderate reviews",
        );
    }
    assert_eq!(review_row(&app, &id).await, row_before);

    // An admin approves (over MCP): visible, counted.
    let version = flagged["recordVersion"].as_i64().unwrap() + 1;
    let approved = tool_ok(
        &app,
        Some(&admin.token),
        "updateReview",
        json!({ "reviewId": id, "moderationStatus": "approved", "recordVersion": version }),
    )
    .await;
    assert_eq!(approved["moderationStatus"], "approved");
    assert_eq!(
        public_reviews(&app, &format!("reservationId={stay}"))
            .await
            .len(),
        2
    );
    assert_eq!(stats(&app, host.id, "host").await, Some((1, 4.0)));

    // A stale version is refused; then the admin rejects: the aggregate drops the review.
    let (status, body) = patch(
        &app,
        &admin.token,
        &id,
        json!({ "moderationStatus": "rejected", "recordVersion": 1 }),
    )
    .await;
    assert_error(status, &body, StatusCode::CONFLICT, "recordVersion");
    let review = patched(
        &app,
        &admin.token,
        &id,
        json!({ "moderationStatus": "rejected" }),
    )
    .await;
    assert_eq!(review["moderationStatus_idx"], 2);
    assert_eq!(
        stats(&app, host.id, "host").await,
        None,
        "hidden from the public"
    );
    let hidden = aggregate(&app, Some(&admin.token), host.id, "host")
        .await
        .unwrap();
    assert_eq!(hidden["reviewCount"], 0, "{hidden}");
    assert_eq!(hidden["visibilityStatus"], "hidden");
    assert_eq!(hidden["visibilityStatus_idx"], 1);
    let (is_error, _) = app
        .tool(
            None,
            "getReviewAggregate",
            json!({ "reviewAggregateId": hidden["id"] }),
        )
        .await;
    assert!(is_error, "a hidden aggregate is not public");
    assert_eq!(
        public_reviews(&app, &format!("reservationId={stay}"))
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn deleting_a_review_recomputes_the_aggregate() {
    let Stay {
        app,
        host,
        guest,
        stranger,
        admin,
        stay,
        ..
    } = stay("delete").await;

    // Before publish the reviewer may delete and write again.
    let draft = written(&app, &guest, stay, "host", host.id, 1, "Too harsh.").await;
    let (status, body) = on_review(&app, Method::DELETE, &id_of(&draft), Some(&guest.token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["review"]["isActive"], false);
    let (status, body) = on_review(&app, Method::GET, &id_of(&draft), Some(&guest.token)).await;
    assert_error(status, &body, StatusCode::NOT_FOUND, "review not found");

    let about_host = written(&app, &guest, stay, "host", host.id, 4, "Fair host.").await;
    written(&app, &host, stay, "guest", guest.id, 2, "Late checkout.").await;
    assert_eq!(stats(&app, host.id, "host").await, Some((1, 4.0)));
    let id = id_of(&about_host);

    for (user, expected, needle) in [
        (&stranger, StatusCode::NOT_FOUND, "review not found"),
        (&host, StatusCode::NOT_FOUND, "review not found"),
        (&guest, StatusCode::UNPROCESSABLE_ENTITY, "ask an admin"),
    ] {
        let (status, body) = on_review(&app, Method::DELETE, &id, Some(&user.token)).await;
        assert_error(status, &body, expected, needle);
    }
    assert_eq!(stats(&app, host.id, "host").await, Some((1, 4.0)));

    let deleted = tool_ok(
        &app,
        Some(&admin.token),
        "deleteReview",
        json!({ "reviewId": id }),
    )
    .await;
    assert_eq!(deleted["isActive"], false);
    let hidden = aggregate(&app, Some(&admin.token), host.id, "host")
        .await
        .unwrap();
    assert_eq!(
        (
            hidden["reviewCount"].as_i64(),
            hidden["averageRating"].as_f64()
        ),
        (Some(0), Some(0.0))
    );
    assert_eq!(
        stats(&app, guest.id, "guest").await,
        Some((1, 2.0)),
        "the other side is untouched"
    );
    assert!(public_reviews(&app, &format!("revieweeId={}", host.id))
        .await
        .is_empty());
}
