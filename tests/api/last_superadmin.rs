//! The last active superAdmin cannot lock the instance out: archiving, deleting or demoting them is
//! refused (also when two superAdmins remove each other at once), `haven keys` recovers an
//! instance whose superAdmins are all inactive, and first-start bootstrap counts only active ones.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::*;

/// Active superAdmins in the test database.
async fn active_superadmins(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM auth.users WHERE role_id = 'superAdmin' AND is_active")
        .fetch_one(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_last_superadmin_cannot_archive_themself() {
    let app = TestApp::spawn().await;
    let only = app
        .user_with_role("only.sa@example.com", "superAdmin")
        .await;
    let before = app.user_row(only.id).await;
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/archiveprofile/{}", only.id),
            Some(&only.token),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the last active superAdmin",
    );
    assert_eq!(app.user_row(only.id).await, before, "nothing changed");

    // With a second superAdmin the first may go.
    app.user_with_role("second.sa@example.com", "superAdmin")
        .await;
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/archiveprofile/{}", only.id),
            Some(&only.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(active_superadmins(&app).await, 1);
}

/// One superAdmin's removal of another: demotion (`updateUserRole`) or deletion (`deleteUser`).
async fn remove(
    app: &TestApp,
    by: &TestUser,
    target: &TestUser,
    delete: bool,
) -> (StatusCode, Value) {
    if delete {
        app.rest(
            Method::DELETE,
            &format!("/auth-api/v1/users/{}", target.id),
            Some(&by.token),
            None,
        )
        .await
    } else {
        app.rest(
            Method::PATCH,
            &format!("/auth-api/v1/userrole/{}", target.id),
            Some(&by.token),
            Some(json!({ "roleId": "user" })),
        )
        .await
    }
}

#[tokio::test]
async fn two_superadmins_removing_each_other_at_once_leave_one() {
    let app = TestApp::spawn().await;
    let mut survivor = app.user_with_role("sa.0@example.com", "superAdmin").await;
    for round in 1..=8 {
        let other = app
            .user_with_role(&format!("sa.{round}@example.com"), "superAdmin")
            .await;
        assert_eq!(active_superadmins(&app).await, 2);
        // Even rounds: both demote each other; odd rounds: one deletes while the other demotes.
        let ((s1, b1), (s2, b2)) = tokio::join!(
            remove(&app, &survivor, &other, round % 2 == 1),
            remove(&app, &other, &survivor, false),
        );
        assert_eq!(
            active_superadmins(&app).await,
            1,
            "round {round}: {s1} {b1} / {s2} {b2}"
        );
        // The loser is refused: by the rule (422), or, when the winner's change landed before the
        // loser's request was authenticated, as no longer a superAdmin (403) or no longer active (401).
        for (status, body) in [(s1, &b1), (s2, &b2)] {
            assert!(
                [
                    StatusCode::OK,
                    StatusCode::UNPROCESSABLE_ENTITY,
                    StatusCode::FORBIDDEN,
                    StatusCode::UNAUTHORIZED
                ]
                .contains(&status),
                "round {round}: {status} {body}"
            );
            if status == StatusCode::UNPROCESSABLE_ENTITY {
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap_or_default()
                        .contains("last active superAdmin"),
                    "{body}"
                );
            }
        }
        assert!(
            s1 == StatusCode::OK || s2 == StatusCode::OK,
            "round {round}: one removal succeeds"
        );
        survivor = if s1 == StatusCode::OK {
            survivor
        } else {
            other
        };
    }
    // The survivor really is the last one: archiving themself is refused too.
    let (status, body) = app
        .rest(
            Method::DELETE,
            &format!("/auth-api/v1/archiveprofile/{}", survivor.id),
            Some(&survivor.token),
            None,
        )
        .await;
    assert_error(
        status,
        &body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "the last active superAdmin",
    );
}

/// Runs `haven keys --email <email>` against the test database.
async fn haven_keys(app: &TestApp, email: &str) -> (bool, String, String) {
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(60),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_haven"))
            .args(["keys", "--email", email])
            .env("DATABASE_URL", &app.db_url)
            .env("HAVEN_DB_MAX_CONNECTIONS", "2")
            .env("RUST_LOG", "warn")
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("haven keys did not finish within 60 s")
    .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn haven_keys_recovers_an_instance_whose_superadmins_are_all_inactive() {
    let app = TestApp::spawn().await;
    let sa = app
        .user_with_role("locked.out@example.com", "superAdmin")
        .await;
    let admin = app
        .user_with_role("inactive.admin@example.com", "admin")
        .await;
    let plain = app.user("archived.user@example.com").await;
    // Locked out by hand (direct SQL), as the operations now refuse to do it.
    sqlx::query("UPDATE auth.users SET is_active = false WHERE id = ANY($1)")
        .bind(vec![sa.id, admin.id, plain.id])
        .execute(&app.db)
        .await
        .unwrap();

    let (ok, key, err) = haven_keys(&app, &sa.email).await;
    assert!(ok, "haven keys must recover the instance: {err}");
    assert!(key.starts_with("sk_haven_"), "{key}");
    assert!(
        err.contains("reactivated"),
        "it should say what it did: {err}"
    );
    let (is_error, me) = app.tool(Some(&key), "getCurrentUser", json!({})).await;
    assert!(!is_error, "{me}");
    assert_eq!(me["email"], sa.email.as_str());
    assert_eq!(me["roleId"], "superAdmin");
    assert_eq!(active_superadmins(&app).await, 1);

    // With an active superAdmin again, keys does not revive other inactive accounts.
    let (ok, out, err) = haven_keys(&app, &plain.email).await;
    assert!(!ok, "an archived user got a key: {out}");
    assert!(err.contains("no active user"), "{err}");
}

#[tokio::test]
async fn first_start_bootstrap_counts_only_active_superadmins() {
    let app = TestApp::spawn().await;
    let key = app.state.bootstrap_superadmin().await.unwrap();
    assert!(key.is_some(), "a fresh database gets a superAdmin");
    assert!(app.state.bootstrap_superadmin().await.unwrap().is_none());
    // The only superAdmin is archived behind Haven's back: the next start recovers.
    sqlx::query("UPDATE auth.users SET is_active = false WHERE role_id = 'superAdmin'")
        .execute(&app.db)
        .await
        .unwrap();
    let key = app
        .state
        .bootstrap_superadmin()
        .await
        .unwrap()
        .expect("no active superAdmin: bootstrap makes one");
    let (is_error, me) = app.tool(Some(&key), "getCurrentUser", json!({})).await;
    assert!(!is_error, "{me}");
    assert_eq!(me["roleId"], "superAdmin");
    assert_eq!(active_superadmins(&app).await, 1);
}
