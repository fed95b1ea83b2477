//! The verification services over real HTTP against real Postgres: email and mobile verification,
//! password reset by email and by mobile, email 2FA at login, and the login rule requiring a
//! verified email — each from the refused side too (wrong, reused, expired, exhausted and
//! foreign codes; resends too soon; a 2FA-pending session calling anything else).

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{code_in, test_config, TestApp};

const VS: &str = "/auth-api/verification-services";

/// Haven in the explicit development mode (codes in responses), with `tweak` applied.
async fn spawn(tweak: impl FnOnce(&mut haven::config::Config)) -> TestApp {
    let mut config = test_config();
    config.verification_codes_in_responses = true;
    tweak(&mut config);
    TestApp::spawn_with(config).await
}

async fn post(app: &TestApp, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
    app.rest(Method::POST, &format!("{VS}{path}"), token, Some(body))
        .await
}

fn message(body: &Value) -> String {
    body["message"].as_str().unwrap_or_default().to_string()
}

/// Lets the resend window pass for `user_id` (as if a minute went by).
async fn age_codes(app: &TestApp, email: &str) {
    sqlx::query(
        "UPDATE auth.verification_codes SET created_at = created_at - interval '2 minutes'
         WHERE user_id = (SELECT id FROM auth.users WHERE email = $1)",
    )
    .bind(email)
    .execute(&app.db)
    .await
    .unwrap();
}

#[tokio::test]
async fn an_email_is_verified_with_its_code_and_bad_codes_are_refused() {
    let app = spawn(|_| {}).await;
    let user = app.user("verify@haven.test").await;
    let (s, started) = post(
        &app,
        "/email-verification/start",
        None,
        json!({ "email": "Verify@haven.test" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert_eq!(started["userId"], user.id.to_string());
    assert_eq!(started["expireTime"], 86400);
    let code = started["secretCode"].as_str().unwrap().to_string();
    assert_eq!(code.len(), 6);
    // Stored hashed, never as typed.
    let stored: String =
        sqlx::query_scalar("SELECT code_hash FROM auth.verification_codes WHERE user_id = $1")
            .bind(user.id)
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(stored.len() == 64 && !stored.contains(&code));

    // Asking again at once is too frequent.
    let (s, again) = post(
        &app,
        "/email-verification/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{again}");
    assert!(message(&again).contains("too frequent"), "{again}");

    // A wrong code, a malformed one, an unknown field: refused, nothing verified.
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (s, e) = post(
        &app,
        "/email-verification/complete",
        None,
        json!({ "email": user.email, "secretCode": wrong }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(message(&e).contains("4 tries left"), "{e}");
    let (s, e) = post(
        &app,
        "/email-verification/complete",
        None,
        json!({ "email": user.email, "secretCode": "12ab" }),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("secretCode"), "{e}");
    let (s, _) = post(
        &app,
        "/email-verification/complete",
        None,
        json!({ "email": user.email, "secretCode": code, "emailVerified": true }),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(app.user_row(user.id).await["email_verified"], false);

    let (s, done) = post(
        &app,
        "/email-verification/complete",
        None,
        json!({ "email": user.email, "secretCode": code }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["isVerified"], true);
    assert_eq!(app.user_row(user.id).await["email_verified"], true);
    // Used up; and a verified email is not verified twice.
    let (s, e) = post(
        &app,
        "/email-verification/complete",
        None,
        json!({ "email": user.email, "secretCode": code }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    age_codes(&app, &user.email).await;
    let (s, e) = post(
        &app,
        "/email-verification/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "{e}");
    assert!(message(&e).contains("already verified"), "{e}");
}

#[tokio::test]
async fn a_code_dies_after_five_wrong_guesses_and_when_it_expires() {
    let app = spawn(|_| {}).await;
    let user = app.user("guess@haven.test").await;
    let (_, started) = post(
        &app,
        "/email-verification/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    let code = started["secretCode"].as_str().unwrap().to_string();
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let (s, _) = post(
            &app,
            "/email-verification/complete",
            None,
            json!({ "email": user.email, "secretCode": wrong }),
        )
        .await;
        assert_eq!(s, StatusCode::FORBIDDEN);
    }
    let (s, e) = post(
        &app,
        "/email-verification/complete",
        None,
        json!({ "email": user.email, "secretCode": code }),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::FORBIDDEN,
        "the right code after five wrong ones: {e}"
    );
    assert_eq!(app.user_row(user.id).await["email_verified"], false);

    age_codes(&app, &user.email).await;
    let (_, started) = post(
        &app,
        "/email-verification/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    let code = started["secretCode"].as_str().unwrap().to_string();
    sqlx::query("UPDATE auth.verification_codes SET expires_at = now() - interval '1 second' WHERE user_id = $1 AND used_at IS NULL")
        .bind(user.id)
        .execute(&app.db)
        .await
        .unwrap();
    let (s, e) = post(
        &app,
        "/email-verification/complete",
        None,
        json!({ "email": user.email, "secretCode": code }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(message(&e).contains("expired"), "{e}");
}

#[tokio::test]
async fn a_password_is_reset_by_email_and_every_session_ends() {
    let app = spawn(|_| {}).await;
    let user = app.user("forgot@haven.test").await;
    let other = app.user("other@haven.test").await;
    let (s, e) = post(
        &app,
        "/password-reset-by-email/start",
        None,
        json!({ "email": "nobody@haven.test" }),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{e}");
    let (s, started) = post(
        &app,
        "/password-reset-by-email/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let code = started["secretCode"].as_str().unwrap().to_string();
    // The code is the account's own: it does nothing for another email.
    let (s, _) = post(
        &app,
        "/password-reset-by-email/complete",
        None,
        json!({ "email": other.email, "secretCode": code, "password": "hijacked-pass" }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Too short a password is refused before the code is spent.
    let (s, e) = post(
        &app,
        "/password-reset-by-email/complete",
        None,
        json!({ "email": user.email, "secretCode": code, "password": "short" }),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(message(&e).contains("password"), "{e}");
    let (s, done) = post(
        &app,
        "/password-reset-by-email/complete",
        None,
        json!({ "email": user.email, "secretCode": code, "password": "a-brand-new-pass" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(app.user_row(user.id).await["email_verified"], true);
    let (s, _) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the old session ended");
    let (s, _) = app
        .rest(
            Method::POST,
            "/auth-api/login",
            None,
            Some(json!({ "username": user.email, "password": "password123" })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the old password is gone");
    app.login(&user.email, "a-brand-new-pass").await;
    // The other account is untouched; the code cannot be used again.
    app.login(&other.email, "password123").await;
    let (s, _) = post(
        &app,
        "/password-reset-by-email/complete",
        None,
        json!({ "email": user.email, "secretCode": code, "password": "yet-another-pass" }),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_mobile_number_is_verified_then_resets_the_password() {
    let app = spawn(|_| {}).await;
    let user = app.user("mobile@haven.test").await;
    let (s, e) = post(
        &app,
        "/mobile-verification/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT, "no number yet: {e}");
    let (s, e) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/profile/{}", user.id),
            Some(&user.token),
            Some(json!({ "userId": user.id, "mobile": "12345" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert!(message(&e).contains("mobile"), "{e}");
    let (s, e) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/profile/{}", user.id),
            Some(&user.token),
            Some(json!({ "userId": user.id, "mobileVerified": true })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "server-owned: {e}");
    let (s, u) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/profile/{}", user.id),
            Some(&user.token),
            Some(json!({ "userId": user.id, "mobile": "+351 912-345-678" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    assert_eq!(u["user"]["mobile"], "+351912345678");
    assert_eq!(u["user"]["mobileVerified"], false);

    // Reset by an unverified number finds nobody.
    let (s, _) = post(
        &app,
        "/password-reset-by-mobile/start",
        None,
        json!({ "mobile": "+351912345678" }),
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, started) = post(
        &app,
        "/mobile-verification/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert_eq!(started["mobile"], "+351912345678");
    let code = started["secretCode"].as_str().unwrap().to_string();
    let (s, done) = post(
        &app,
        "/mobile-verification/complete",
        None,
        json!({ "email": user.email, "secretCode": code }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(app.user_row(user.id).await["mobile_verified"], true);

    let (s, started) = post(
        &app,
        "/password-reset-by-mobile/start",
        None,
        json!({ "mobile": "+351912345678" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    let code = started["secretCode"].as_str().unwrap().to_string();
    let (s, done) = post(
        &app,
        "/password-reset-by-mobile/complete",
        None,
        json!({ "email": user.email, "secretCode": code, "password": "mobile-new-pass" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["mobile"], "+351912345678");
    app.login(&user.email, "mobile-new-pass").await;

    // Changing the number makes it unverified again.
    let (_, u) = app
        .rest(
            Method::PATCH,
            &format!("/auth-api/v1/profile/{}", user.id),
            Some(&app.login(&user.email, "mobile-new-pass").await),
            Some(json!({ "userId": user.id, "mobile": "+351911111111" })),
        )
        .await;
    assert_eq!(u["user"]["mobileVerified"], false, "{u}");
}

#[tokio::test]
async fn a_session_owing_its_second_factor_can_do_nothing_else() {
    let app = spawn(|c| c.email_2fa = true).await;
    app.user("twofa@haven.test").await;
    let (s, session) = app
        .rest(
            Method::POST,
            "/auth-api/login",
            None,
            Some(json!({ "username": "twofa@haven.test", "password": "password123" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{session}");
    assert_eq!(session["sessionNeedsEmail2FA"], true);
    let token = session["accessToken"].as_str().unwrap().to_string();
    let session_id = session["sessionId"].as_str().unwrap().to_string();
    let user_id = session["userId"].as_str().unwrap().to_string();

    // Everything else is refused: REST, MCP tools, the events stream, an agent run.
    let (s, e) = app
        .rest(Method::GET, "/currentuser", Some(&token), None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(message(&e).contains("second factor"), "{e}");
    let (err, text) = app.tool(Some(&token), "getCurrentUser", json!({})).await;
    assert!(err && text.to_string().contains("second factor"), "{text}");
    let (err, _) = app
        .tool(Some(&token), "createApiKey", json!({ "description": "x" }))
        .await;
    assert!(err);
    let (s, _) = app.rest(Method::GET, "/events", Some(&token), None).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(app.count("platformadmin.api_keys").await, 0);

    // Another session's id invalidates the attempt.
    let (s, _) = post(
        &app,
        "/email-2factor-verification/start",
        Some(&token),
        json!({ "userId": user_id, "sessionId": uuid::Uuid::new_v4() }),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let (s, started) = post(
        &app,
        "/email-2factor-verification/start",
        Some(&token),
        json!({ "userId": user_id, "sessionId": session_id, "client": "tests", "reason": "login" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert_eq!(started["expireTime"], 300);
    let code = started["secretCode"].as_str().unwrap().to_string();
    let (s, done) = post(
        &app,
        "/email-2factor-verification/complete",
        Some(&token),
        json!({ "userId": user_id, "sessionId": session_id, "secretCode": code }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(done["sessionNeedsEmail2FA"], false);
    assert!(done["accessToken"].as_str().is_some());
    // The same session now works, with the old token and the new one.
    for t in [token.as_str(), done["accessToken"].as_str().unwrap()] {
        let (s, me) = app.rest(Method::GET, "/currentuser", Some(t), None).await;
        assert_eq!(s, StatusCode::OK, "{me}");
    }
    // A 2FA start for a session that owes nothing is refused.
    let (s, _) = post(
        &app,
        "/email-2factor-verification/start",
        Some(&token),
        json!({ "userId": user_id, "sessionId": session_id }),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn login_can_require_a_verified_email() {
    let app = spawn(|c| c.email_verification_required_for_login = true).await;
    let (s, _) = app
        .rest(
            Method::POST,
            "/auth-api/v1/registeruser",
            None,
            Some(
                json!({ "email": "new@haven.test", "password": "password123", "fullname": "New" }),
            ),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let login = json!({ "username": "new@haven.test", "password": "password123" });
    let (s, e) = app
        .rest(Method::POST, "/auth-api/login", None, Some(login.clone()))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(message(&e).contains("EmailVerificationNeeded"), "{e}");
    // A wrong password still says only that.
    let (s, _) = app
        .rest(
            Method::POST,
            "/auth-api/login",
            None,
            Some(json!({ "username": "new@haven.test", "password": "wrong-password" })),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let (_, started) = post(
        &app,
        "/email-verification/start",
        None,
        json!({ "email": "new@haven.test" }),
    )
    .await;
    let code = started["secretCode"].as_str().unwrap().to_string();
    let (s, _) = post(
        &app,
        "/email-verification/complete",
        None,
        json!({ "email": "new@haven.test", "secretCode": code }),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = app
        .rest(Method::POST, "/auth-api/login", None, Some(login))
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn codes_go_out_by_email_through_a_real_smtp_server_and_never_stay_in_the_outbox() {
    use crate::notification_channels::{eventually, free_port, sink_dir, with_smtp, SmtpSink};
    let port = free_port();
    let sink = SmtpSink::start(port, sink_dir()).await;
    let app = TestApp::spawn_with(with_smtp(port)).await;
    let user = app.user("mailed@haven.test").await;
    let (s, started) = post(
        &app,
        "/password-reset-by-email/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert!(
        started.get("secretCode").is_none(),
        "production mode: {started}"
    );
    eventually(20, "the reset email", || async {
        !sink.messages().is_empty()
    })
    .await;
    let mail = &sink.messages()[0];
    assert_eq!(mail["to"], json!(["mailed@haven.test"]), "{mail}");
    assert_eq!(mail["subject"], "Reset your Haven password");
    let text = mail["parts"][0]["content"].as_str().unwrap().to_string();
    let code = code_in(&text);
    // Sent and gone: the outbox keeps no copy of the code.
    eventually(10, "the delivery marked sent", || async {
        sqlx::query_scalar::<_, bool>(
            "SELECT bool_and(status = 'sent' AND coalesce(body_text, '') NOT LIKE '%' || $1 || '%')
             FROM notification.deliveries WHERE destination = 'mailed@haven.test'",
        )
        .bind(&code)
        .fetch_one(&app.db)
        .await
        .unwrap_or(false)
    })
    .await;
    let (s, done) = post(
        &app,
        "/password-reset-by-email/complete",
        None,
        json!({ "email": user.email, "secretCode": code, "password": "from-the-email" }),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    app.login(&user.email, "from-the-email").await;
    sink.stop().await;
}

#[tokio::test]
async fn without_a_channel_for_it_a_code_is_refused_outside_development_mode() {
    let app = spawn(|c| c.verification_codes_in_responses = false).await;
    let user = app.user("nochannel@haven.test").await;
    let (s, e) = post(
        &app,
        "/email-verification/start",
        None,
        json!({ "email": user.email }),
    )
    .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{e}");
    assert!(message(&e).contains("HAVEN_SMTP_URL"), "{e}");
    let codes: i64 = sqlx::query_scalar("SELECT count(*) FROM auth.verification_codes")
        .fetch_one(&app.db)
        .await
        .unwrap();
    assert_eq!(codes, 0, "nothing written");
}
