//! Rate limits and brute-force protection, from the refused side: 429 with Retry-After past a
//! caller's rate (MCP: `RateLimited:`), per user, per API key and per anonymous IP; failed logins
//! lock the email (existing or not) and the address, the right password included, until the
//! lockout ends; registrations per address are limited.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

const LISTINGS: &str = "/propertycatalog-api/v1/listings";

/// GET `path` as `token`; status and whether Retry-After came with it.
async fn get(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, Option<String>) {
    let mut req = app.http.get(format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (resp.status(), retry)
}

#[tokio::test]
async fn callers_past_their_rate_get_429_with_retry_after_on_rest_and_mcp() {
    let mut config = test_config();
    config.rate_limit_per_minute = 60;
    config.rate_limit_burst = 5;
    config.anon_rate_limit_per_minute = 60;
    config.anon_rate_limit_burst = 3;
    let app = TestApp::spawn_with(config).await;
    // Registering and logging in are anonymous calls from 127.0.0.1: two users take 4 of them,
    // so the anonymous bucket is refilled for a moment first.
    let alice = app.user("alice@rate.test").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bob = app.user("bob@rate.test").await;

    let mut seen = Vec::new();
    for _ in 0..8 {
        seen.push(get(&app, "/currentuser", Some(&alice.token)).await);
    }
    println!("alice: {seen:?}");
    assert!(seen[..5].iter().all(|(s, _)| *s == StatusCode::OK));
    let (status, retry) = &seen[7];
    assert_eq!(*status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry
        .as_deref()
        .is_some_and(|r| r.parse::<u64>().unwrap() >= 1));
    // Over MCP the same bucket answers a tool error that names the kind.
    let (is_error, text) = app
        .tool(Some(&alice.token), "getCurrentUser", json!({}))
        .await;
    assert!(is_error);
    assert!(text.as_str().unwrap().starts_with("RateLimited:"), "{text}");
    // Another user has their own bucket.
    assert_eq!(
        get(&app, "/currentuser", Some(&bob.token)).await.0,
        StatusCode::OK
    );

    // An API key is its own principal.
    let (status, key) = app
        .rest(
            Method::POST,
            "/platformadmin-api/v1/apikeys",
            Some(&bob.token),
            Some(json!({ "description": "rate test" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let key = key["apiKey"]["key"].as_str().unwrap().to_string();
    let statuses: Vec<_> = futures::future::join_all(
        (0..8).map(|_| app.tool(Some(&key), "getCurrentUser", json!({}))),
    )
    .await;
    let limited = statuses
        .iter()
        .filter(|(e, t)| *e && t.as_str().is_some_and(|t| t.starts_with("RateLimited:")))
        .count();
    assert!(limited >= 1, "{statuses:?}");

    // Anonymous callers are limited per address.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let anonymous: Vec<_> = {
        let mut v = Vec::new();
        for _ in 0..6 {
            v.push(get(&app, LISTINGS, None).await.0);
        }
        v
    };
    println!("anonymous: {anonymous:?}");
    assert!(anonymous.contains(&StatusCode::OK));
    assert!(anonymous.contains(&StatusCode::TOO_MANY_REQUESTS));
}

async fn login(app: &TestApp, email: &str, password: &str) -> (StatusCode, Option<String>) {
    let resp = app
        .http
        .post(format!("{}/auth-api/login", app.base))
        .json(&json!({ "username": email, "password": password }))
        .send()
        .await
        .unwrap();
    let retry = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    (resp.status(), retry)
}

#[tokio::test]
async fn failed_logins_lock_the_account_until_the_lockout_ends() {
    let mut config = test_config();
    config.login_max_failures = 3;
    config.login_lockout_secs = 2;
    let app = TestApp::spawn_with(config).await;
    app.user("victim@lock.test").await;
    for _ in 0..3 {
        assert_eq!(
            login(&app, "victim@lock.test", "wrong-password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // Locked: the right password is refused too, with a delay to wait.
    let (status, retry) = login(&app, "victim@lock.test", "password123").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some());
    // An email without an account locks the same way (a lockout says nothing about existence).
    for _ in 0..3 {
        assert_eq!(
            login(&app, "ghost@lock.test", "wrong-password").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&app, "ghost@lock.test", "password123").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // The lock is in the database (shared by every replica).
    let locked: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM auth.login_throttle WHERE scope = 'account' AND locked_until > now()",
    )
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(locked, 2);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    assert_eq!(
        login(&app, "victim@lock.test", "password123").await.0,
        StatusCode::OK
    );
}

#[tokio::test]
async fn failed_logins_from_one_address_lock_that_address() {
    let mut config = test_config();
    config.login_max_failures = 100;
    config.login_max_failures_per_ip = 4;
    config.login_lockout_secs = 60;
    let app = TestApp::spawn_with(config).await;
    app.user("someone@ip.test").await;
    for i in 0..4 {
        assert_eq!(
            login(&app, &format!("guess{i}@ip.test"), "nope").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&app, "someone@ip.test", "password123").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn registrations_per_address_are_limited() {
    let mut config = test_config();
    config.registrations_per_ip_per_hour = 2;
    let app = TestApp::spawn_with(config).await;
    let register = |i: usize| {
        app.rest(
            Method::POST,
            "/auth-api/v1/registeruser",
            None,
            Some(json!({ "email": format!("new{i}@reg.test"), "password": "password123", "fullname": "New" })),
        )
    };
    assert_eq!(register(0).await.0, StatusCode::CREATED);
    assert_eq!(register(1).await.0, StatusCode::CREATED);
    let (status, body) = register(2).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["errorKind"], "RateLimited");
    assert_eq!(app.count("auth.users").await, 2);
}

#[tokio::test]
async fn concurrent_guesses_cannot_slip_past_the_lockout() {
    let mut config = test_config();
    config.login_max_failures = 3;
    config.login_lockout_secs = 60;
    let app = TestApp::spawn_with(config).await;
    app.user("target@race.test").await;
    let guesses = futures::future::join_all((0..20).map(|i| {
        let app = &app;
        async move {
            login(app, "target@race.test", &format!("guess-{i}"))
                .await
                .0
        }
    }))
    .await;
    let checked = guesses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    println!("20 concurrent guesses: {guesses:?}");
    assert!(checked <= 3, "{checked} guesses were checked: {guesses:?}");
    assert!(guesses
        .iter()
        .all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS));
    assert_eq!(
        login(&app, "target@race.test", "password123").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
}
