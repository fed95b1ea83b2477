//! The principal cache (issue 15): credentials resolved once are served from memory, yet a
//! revocation, logout or role change made through one process takes effect at once in another
//! (NOTIFY from the database's triggers), and an API key's `last_used_at` is written at most once
//! a minute, decided in memory.

use std::process::Stdio;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

/// A second `haven serve` process on the test app's database.
struct OtherProcess {
    child: tokio::process::Child,
    base: String,
    http: reqwest::Client,
}

impl OtherProcess {
    async fn start(app: &TestApp) -> OtherProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_haven"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", &app.db_url)
            .env("HAVEN_DB_MAX_CONNECTIONS", "3")
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawning haven serve");
        let other = OtherProcess {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
        };
        let started = Instant::now();
        loop {
            let ready = other
                .http
                .get(format!("{}/ready", other.base))
                .send()
                .await
                .map(|r| r.status() == StatusCode::OK)
                .unwrap_or(false);
            if ready {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(90),
                "second process not ready"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        other
    }

    /// `GET /currentuser` with `token` on the other process.
    async fn current_user(&self, token: &str) -> StatusCode {
        self.http
            .get(format!("{}/currentuser", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .status()
    }

    /// Waits (2 s at most) for `token` to be refused on the other process; returns how long it
    /// took. The announcement travels at commit, so this is milliseconds.
    async fn refused_within(&self, token: &str) -> Duration {
        let started = Instant::now();
        loop {
            let status = self.current_user(token).await;
            if status == StatusCode::UNAUTHORIZED {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "the other process still accepts a revoked credential ({status})"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for OtherProcess {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[tokio::test]
async fn revocation_and_logout_in_one_process_take_effect_at_once_in_another() {
    let app = TestApp::spawn().await;
    let other = OtherProcess::start(&app).await;
    let user = app.user("two-processes@perf.test").await;
    let (s, body) = app
        .rest(
            Method::POST,
            "/platformadmin-api/v1/apikeys",
            Some(&user.token),
            Some(json!({ "description": "replica test" })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    let key = body["apiKey"]["key"].as_str().unwrap().to_string();
    let key_id = body["apiKey"]["id"].as_str().unwrap().to_string();

    // Both credentials work on both processes, several times (the second process caches them).
    for _ in 0..3 {
        assert_eq!(other.current_user(&key).await, StatusCode::OK);
        assert_eq!(other.current_user(&user.token).await, StatusCode::OK);
        let (s, _) = app
            .rest(Method::GET, "/currentuser", Some(&key), None)
            .await;
        assert_eq!(s, StatusCode::OK);
    }

    // Revoked through the first process: refused by the first at once, and by the second.
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/platformadmin-api/v1/apikeys/{key_id}"),
            Some(&user.token),
            Some(json!({ "active": false })),
        )
        .await;
    assert!(s.is_success(), "{s} {body}");
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the revoking process itself");
    let took = other.refused_within(&key).await;
    println!("revoked key refused by the other process after {took:?}");

    // Logout through the first process ends the session in the second.
    let (s, body) = app
        .rest(Method::POST, "/auth-api/logout", Some(&user.token), None)
        .await;
    assert!(s.is_success(), "{s} {body}");
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let took = other.refused_within(&user.token).await;
    println!("logged-out token refused by the other process after {took:?}");

    // Archiving the user (a change made straight in the database, as an admin tool would) ends
    // every credential of theirs in both processes.
    let token = app.login("two-processes@perf.test", "password123").await;
    assert_eq!(other.current_user(&token).await, StatusCode::OK);
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    sqlx::query("UPDATE auth.users SET is_active = false WHERE id = $1")
        .bind(user.id)
        .execute(&app.db)
        .await
        .unwrap();
    other.refused_within(&token).await;
    let started = Instant::now();
    loop {
        let (s, _) = app
            .rest(Method::GET, "/currentuser", Some(&token), None)
            .await;
        if s == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "still accepted: {s}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A role change is seen by the next call: a demoted admin loses admin operations at once.
#[tokio::test]
async fn a_role_change_takes_effect_on_the_next_call() {
    let app = TestApp::spawn().await;
    let admin = app.user_with_role("demoted@perf.test", "admin").await;
    let boss = app.user_with_role("boss@perf.test", "superAdmin").await;
    let (s, body) = app
        .rest(Method::GET, "/auth-api/v1/users", Some(&admin.token), None)
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let (s, body) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/userrole/{}", admin.id),
            Some(&boss.token),
            Some(json!({ "roleId": "user" })),
        )
        .await;
    assert!(s.is_success(), "{s} {body}");
    let (s, body) = app
        .rest(Method::GET, "/auth-api/v1/users", Some(&admin.token), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{body}");
}

/// `last_used_at` is written on a key's first use and then not again within the minute: heavy
/// use of a key does not write on every call (before, every call attempted the UPDATE, and one
/// landed whenever the column was empty).
#[tokio::test]
async fn an_api_key_records_its_use_at_most_once_a_minute() {
    let app = TestApp::spawn().await;
    let user = app.user("last-used@perf.test").await;
    let (_, body) = app
        .rest(
            Method::POST,
            "/platformadmin-api/v1/apikeys",
            Some(&user.token),
            Some(json!({ "description": "busy" })),
        )
        .await;
    let key = body["apiKey"]["key"].as_str().unwrap().to_string();
    let key_id: uuid::Uuid = body["apiKey"]["id"].as_str().unwrap().parse().unwrap();
    let last_used = || async {
        sqlx::query_scalar::<_, Option<chrono::DateTime<chrono::Utc>>>(
            "SELECT last_used_at FROM platformadmin.api_keys WHERE id = $1",
        )
        .bind(key_id)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&key), None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(last_used().await.is_some(), "the first use is recorded");
    sqlx::query("UPDATE platformadmin.api_keys SET last_used_at = NULL WHERE id = $1")
        .bind(key_id)
        .execute(&app.db)
        .await
        .unwrap();
    for _ in 0..5 {
        let (s, _) = app
            .rest(Method::GET, "/currentuser", Some(&key), None)
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    assert!(
        last_used().await.is_none(),
        "no write within the minute after the recorded use"
    );
}
