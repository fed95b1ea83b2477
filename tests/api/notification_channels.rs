//! The external channels for real: email through a real SMTP server process (aiosmtpd, started by
//! the test: `tests/api/smtp_sink.py` under `.ci/venv`), SMS and push through HTTP servers in the
//! test speaking Twilio's and FCM's wire formats. The outbox survives an SMTP outage and a dead
//! worker's lease, delivers exactly once, and shows admins each delivery's status.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::routing::post;
use axum::{Form, Json, Router};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::io::AsyncBufReadExt;
use uuid::Uuid;

use crate::fixtures::{act, booked, listing};
use crate::helpers::*;

const N: &str = "/notification-api/v1";

/// The Python that runs the SMTP sink: `.ci/venv/bin/python` with aiosmtpd installed.
pub(crate) fn python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/venv/bin/python");
    let ok = std::process::Command::new(&venv)
        .args(["-c", "import aiosmtpd"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "the SMTP tests need aiosmtpd in .ci/venv: python3 -m venv .ci/venv && .ci/venv/bin/python -m pip install aiosmtpd==1.4.6 (.ci/run does this)"
    );
    venv
}

/// A free loopback port (bound, then released).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A real SMTP server process that stores what it receives.
pub(crate) struct SmtpSink {
    child: tokio::process::Child,
    dir: PathBuf,
}

impl SmtpSink {
    pub(crate) async fn start(port: u16, dir: PathBuf) -> SmtpSink {
        std::fs::create_dir_all(&dir).unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/smtp_sink.py");
        let mut child = tokio::process::Command::new(python())
            .arg(script)
            .arg("127.0.0.1")
            .arg(port.to_string())
            .arg(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("starting the SMTP sink");
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .expect("the SMTP sink did not start within 20 s")
            .unwrap();
        assert_eq!(ready.as_deref(), Some("ready"));
        SmtpSink { child, dir }
    }

    /// The messages received so far, oldest first.
    pub(crate) fn messages(&self) -> Vec<Value> {
        let mut files: Vec<_> = std::fs::read_dir(&self.dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    pub(crate) async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

pub(crate) fn sink_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("smtp-{}", Uuid::new_v4().simple()))
}

/// Waits up to `secs` for `check` to hold.
pub(crate) async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `(channel, status, attempts, last_error, provider_message_id, destination)` of every delivery.
type Row = (String, String, i32, Option<String>, Option<String>, String);
async fn deliveries(app: &TestApp) -> Vec<Row> {
    sqlx::query_as(
        "SELECT channel, status, attempts, last_error, provider_message_id, destination
           FROM notification.deliveries ORDER BY created_at, destination",
    )
    .fetch_all(&app.db)
    .await
    .unwrap()
}

pub(crate) fn with_smtp(port: u16) -> haven::config::Config {
    let mut config = test_config();
    config.notify.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
    config.notify.email_from = "Haven <no-reply@haven.test>".into();
    config.notify.notify_retry_base_ms = 300;
    config.notify.notify_poll_ms = 100;
    config.notify.notify_send_timeout_secs = 5;
    config
}

#[tokio::test]
async fn a_booking_request_emails_the_host_in_text_and_html_and_preferences_hold() {
    let port = free_port();
    let sink = SmtpSink::start(port, sink_dir()).await;
    let app = TestApp::spawn_with(with_smtp(port)).await;
    let admin = app.user_with_role("admin@mail.test", "admin").await;
    let host = app.user("host@mail.test").await;
    let guest = app.user("guest@mail.test").await;
    let home = listing(&app, &host, json!({ "approvalType": "manual" })).await;
    // The guest wants no email about approvals (in-app still).
    let (s, b) = app
        .rest(
            Method::PATCH,
            &format!("{N}/preferences"),
            Some(&guest.token),
            Some(json!({ "events": [{ "eventType": "bookingApproved", "email": false }] })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["preferences"]["configuredChannels"], json!(["email"]));

    let id = booked(&app, &guest, home, 15, 2).await;
    eventually(15, "the host's email", || async {
        !sink.messages().is_empty()
    })
    .await;
    let mail = &sink.messages()[0];
    assert_eq!(mail["to"], json!(["host@mail.test"]), "{mail}");
    assert_eq!(mail["from"], "no-reply@haven.test");
    assert_eq!(mail["subject"], "New booking request for Sea view loft");
    assert_eq!(mail["contentType"], "multipart/alternative");
    let types: Vec<&str> = mail["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["text/plain", "text/html"]);
    assert!(mail["parts"][0]["content"]
        .as_str()
        .unwrap()
        .contains("Test User asked to book Sea view loft"));
    let html = mail["parts"][1]["content"].as_str().unwrap();
    assert!(
        html.contains("<h1") && html.contains("New booking request for Sea view loft"),
        "{html}"
    );

    // The admin sees it sent, with the Message-ID the server received.
    eventually(5, "the delivery marked sent", || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d.1 == "sent")
    })
    .await;
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{N}/deliveries?status=sent"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let d = &b["deliveries"][0];
    assert_eq!(d["channel"], "email");
    assert_eq!(d["destination"], "host@mail.test");
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["providerMessageId"], mail["messageId"]);
    assert_eq!(
        mail["messageId"].as_str().unwrap(),
        format!("<{}@haven.test>", d["id"].as_str().unwrap())
    );

    // Approval: in-app for the guest, but no email (their preference).
    let (s, _) = act(&app, &host, id, "approve", json!({})).await;
    assert_eq!(s, StatusCode::OK);
    let approved: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification.notifications WHERE user_id = $1 AND event_type = 'bookingApproved'",
    )
    .bind(guest.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(approved, 1);
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(deliveries(&app).await.len(), 1);
    sink.stop().await;
}

#[tokio::test]
async fn an_smtp_outage_delays_the_email_which_then_arrives_exactly_once() {
    let port = free_port();
    let app = TestApp::spawn_with(with_smtp(port)).await;
    let host = app.user("host@outage.test").await;
    let guest = app.user("guest@outage.test").await;
    let home = listing(&app, &host, json!({})).await;
    // The server is down: the booking still succeeds, the email waits in the outbox.
    booked(&app, &guest, home, 15, 2).await;
    eventually(15, "a failed first attempt", || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d.2 >= 1 && d.3.is_some())
    })
    .await;
    let d = deliveries(&app).await.remove(0);
    assert_eq!(d.1, "pending", "{d:?}");
    assert!(d.3.as_deref().unwrap().contains("temporary"), "{d:?}");

    // The server comes up: the next retry delivers it, once.
    let sink = SmtpSink::start(port, sink_dir()).await;
    eventually(20, "the email after the outage", || async {
        !sink.messages().is_empty()
    })
    .await;
    eventually(5, "the delivery marked sent", || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d.1 == "sent")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.messages().len(), 1, "{:?}", sink.messages());
    let d = deliveries(&app).await.remove(0);
    assert!(d.2 >= 2, "{d:?}");
    assert_eq!(d.4.as_deref(), sink.messages()[0]["messageId"].as_str());
    sink.stop().await;
}

#[tokio::test]
async fn a_dead_workers_lease_runs_out_and_a_refused_address_fails_for_good() {
    let port = free_port();
    let sink = SmtpSink::start(port, sink_dir()).await;
    let app = TestApp::spawn_with(with_smtp(port)).await;
    let admin = app.user_with_role("admin@lease.test", "admin").await;
    let host = app.user("host@lease.test").await;
    let bounce = app.user("bounce@lease.test").await;
    // A delivery claimed by a worker that died mid-send (attempt 1, lease for 2 more seconds):
    // nobody sends it while the lease runs; then another worker does, once.
    let note: Uuid = sqlx::query_scalar(
        "INSERT INTO notification.notifications (user_id, event_type, title, body)
         VALUES ($1, 'announcement', 'Leased', 'Sent after the lease.') RETURNING id",
    )
    .bind(host.id)
    .fetch_one(&app.db)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO notification.deliveries (notification_id, user_id, channel, destination, subject, body_text,
             attempts, leased_by, lease_until)
         VALUES ($1, $2, 'email', $3, 'Leased', 'Sent after the lease.', 1, 'dead-worker', now() + interval '2 seconds')",
    )
    .bind(note)
    .bind(host.id)
    .bind(&host.email)
    .execute(&app.db)
    .await
    .unwrap();
    sqlx::query("SELECT pg_notify('haven_outbox', '')")
        .execute(&app.db)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        sink.messages().is_empty(),
        "sent while another worker held the lease"
    );
    eventually(15, "the email after the lease ran out", || async {
        !sink.messages().is_empty()
    })
    .await;
    eventually(5, "sent", || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d.1 == "sent")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1);
    assert_eq!(sink.messages()[0]["subject"], "Leased");
    assert_eq!(deliveries(&app).await[0].2, 2);

    // A mailbox that does not exist: 550, failed at the first attempt, visible to admins.
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{N}/notifications"),
            Some(&admin.token),
            Some(json!({ "recipientIds": [bounce.id], "title": "Hello", "body": "Welcome." })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    assert_eq!(b["notification"]["deliveriesQueued"], 1);
    eventually(15, "the failed delivery", || async {
        deliveries(&app)
            .await
            .iter()
            .any(|d| d.5 == "bounce@lease.test" && d.1 == "failed")
    })
    .await;
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{N}/deliveries?status=failed"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let d = &b["deliveries"][0];
    assert_eq!(d["attempts"], 1, "{d}");
    assert!(
        d["lastError"].as_str().unwrap().contains("permanent"),
        "{d}"
    );
    sink.stop().await;
}

/// One SMS request: authorization, form fields, idempotency key.
type SmsRequest = (String, HashMap<String, String>, String);

/// What the fake Twilio and FCM servers received.
#[derive(Default)]
struct Wire {
    /// (authorization, form fields, idempotency key) per SMS request.
    sms: Mutex<Vec<SmsRequest>>,
    /// (authorization, body, idempotency key) per push request.
    push: Mutex<Vec<(String, Value, String)>>,
}

fn header(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Twilio's Messages resource; the first request answers 503 (the provider has a bad moment).
async fn twilio(
    State(wire): State<Arc<Wire>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> (AxStatus, Json<Value>) {
    let mut sms = wire.sms.lock().unwrap();
    sms.push((
        header(&headers, "authorization"),
        form,
        header(&headers, "idempotency-key"),
    ));
    if sms.len() == 1 {
        return (
            AxStatus::SERVICE_UNAVAILABLE,
            Json(json!({ "code": 20503, "message": "busy" })),
        );
    }
    let n = sms.len();
    (
        AxStatus::CREATED,
        Json(json!({ "sid": format!("SM{n:032}"), "account_sid": sid, "status": "queued" })),
    )
}

/// FCM's HTTP v1 send.
async fn fcm(
    State(wire): State<Arc<Wire>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let mut push = wire.push.lock().unwrap();
    push.push((
        header(&headers, "authorization"),
        body,
        header(&headers, "idempotency-key"),
    ));
    Json(json!({ "name": format!("projects/{project}/messages/{}", push.len()) }))
}

/// Starts the Twilio- and FCM-style server; returns what it records and its base URL.
async fn provider_fakes() -> (Arc<Wire>, String) {
    let wire = Arc::new(Wire::default());
    let router = Router::new()
        .route("/2010-04-01/Accounts/{sid}/Messages.json", post(twilio))
        .route("/v1/projects/{project}/messages:send", post(fcm))
        .with_state(wire.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let fake = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (wire, fake)
}

#[tokio::test]
async fn a_mobile_verification_code_goes_out_by_sms_and_verifies_the_number() {
    let (wire, fake) = provider_fakes().await;
    let mut config = test_config();
    config.notify.sms_base_url = fake;
    config.notify.sms_account_sid = Some("AC123".into());
    config.notify.sms_auth_token = Some("secret-token".into());
    config.notify.sms_from = Some("+15005550006".into());
    config.notify.notify_retry_base_ms = 200;
    config.notify.notify_poll_ms = 100;
    let app = TestApp::spawn_with(config).await;
    let user = app.user("texted@haven.test").await;
    let (is_error, p) = app
        .tool(
            Some(&user.token),
            "updateProfile",
            json!({ "userId": user.id, "mobile": "+351 933 000 111" }),
        )
        .await;
    assert!(!is_error, "{p}");
    let (s, started) = app
        .rest(
            Method::POST,
            "/auth-api/verification-services/mobile-verification/start",
            None,
            Some(json!({ "email": user.email })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{started}");
    assert!(
        started.get("secretCode").is_none(),
        "production mode: {started}"
    );
    // The fake answers its first request 503: the code arrives on the retry.
    eventually(20, "the code by SMS", || async {
        wire.sms.lock().unwrap().len() >= 2
    })
    .await;
    let (_, form, _) = wire.sms.lock().unwrap()[1].clone();
    assert_eq!(form["To"], "+351933000111", "{form:?}");
    let code = code_in(&form["Body"]);
    let (s, done) = app
        .rest(
            Method::POST,
            "/auth-api/verification-services/mobile-verification/complete",
            None,
            Some(json!({ "email": user.email, "secretCode": code })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{done}");
    assert_eq!(app.user_row(user.id).await["mobile_verified"], true);
    // The outbox kept no copy of the code once it was sent.
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM notification.deliveries WHERE body_text LIKE '%' || $1 || '%'",
    )
    .bind(&code)
    .fetch_one(&app.db)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn sms_and_push_go_out_in_twilio_and_fcm_wire_formats_with_retries() {
    let (wire, fake) = provider_fakes().await;

    let mut config = test_config();
    config.notify.sms_base_url = fake.clone();
    config.notify.sms_account_sid = Some("AC123".into());
    config.notify.sms_auth_token = Some("secret-token".into());
    config.notify.sms_from = Some("+15005550006".into());
    config.notify.push_base_url = fake.clone();
    config.notify.push_project_id = Some("haven-test".into());
    config.notify.push_access_token = Some("ya29.test-token".into());
    config.notify.notify_retry_base_ms = 200;
    config.notify.notify_poll_ms = 100;
    let app = TestApp::spawn_with(config).await;
    let admin = app.user_with_role("admin@wire.test", "admin").await;
    let ana = app.user("ana@wire.test").await;
    let bob = app.user("bob@wire.test").await;
    for (user, phone, token, push) in [
        (&ana, "+351911111111", "fcm-ana", true),
        (&bob, "+351922222222", "fcm-bob", false),
    ] {
        let (s, b) = app
            .rest(
                Method::PATCH,
                &format!("{N}/preferences"),
                Some(&user.token),
                Some(json!({ "phoneNumber": phone, "events": [{ "eventType": "announcement", "push": push }] })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = app
            .rest(
                Method::POST,
                &format!("{N}/devices/register"),
                Some(&user.token),
                Some(json!({ "platform": "android", "pushToken": token })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{b}");
    }
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{N}/notifications"),
            Some(&admin.token),
            Some(json!({
                "recipientIds": [ana.id, bob.id], "title": "Storm warning", "body": "Close the shutters.",
                "channels": ["sms", "push"], "data": { "kind": "weather" }
            })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    // Ana: SMS and push; Bob: SMS only (no push for announcements).
    assert_eq!(b["notification"]["deliveriesQueued"], 3);

    eventually(15, "every delivery sent", || async {
        let d = deliveries(&app).await;
        d.len() == 3 && d.iter().all(|d| d.1 == "sent")
    })
    .await;
    let sms = wire.sms.lock().unwrap().clone();
    // Two numbers, one of them tried twice (the 503), with the same idempotency key.
    assert_eq!(sms.len(), 3, "{sms:?}");
    let expected_auth = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            "AC123:secret-token"
        )
    );
    for (auth, form, key) in &sms {
        assert_eq!(auth, &expected_auth);
        assert_eq!(form["From"], "+15005550006");
        assert_eq!(form["Body"], "Storm warning: Close the shutters.");
        assert!(Uuid::parse_str(key).is_ok(), "{key}");
    }
    let keys: Vec<&String> = sms.iter().map(|(_, _, k)| k).collect();
    let retried = keys.iter().filter(|k| **k == keys[0]).count();
    assert_eq!(
        retried, 2,
        "the failed SMS was retried with its key: {keys:?}"
    );
    let mut to: Vec<&str> = sms.iter().map(|(_, f, _)| f["To"].as_str()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to, ["+351911111111", "+351922222222"]);

    let push = wire.push.lock().unwrap().clone();
    assert_eq!(push.len(), 1, "{push:?}");
    let (auth, body, key) = &push[0];
    assert_eq!(auth, "Bearer ya29.test-token");
    assert_eq!(body["message"]["token"], "fcm-ana");
    assert_eq!(
        body["message"]["notification"],
        json!({ "title": "Storm warning", "body": "Close the shutters." })
    );
    assert_eq!(body["message"]["data"]["kind"], "weather");
    assert_eq!(&body["message"]["data"]["deliveryId"], &json!(key));

    // The admin's view: providers' ids and the retried SMS's attempts.
    let (s, b) = app
        .rest(
            Method::GET,
            &format!("{N}/deliveries?channel=sms"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let attempts: Vec<i64> = b["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["attempts"].as_i64().unwrap())
        .collect();
    assert_eq!(attempts.iter().sum::<i64>(), 3, "{b}");
    assert!(b["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|d| d["providerMessageId"].as_str().unwrap().starts_with("SM")));
    let d = deliveries(&app).await;
    let push_row = d.iter().find(|d| d.0 == "push").unwrap();
    assert_eq!(
        push_row.4.as_deref(),
        Some("projects/haven-test/messages/1")
    );
}

#[tokio::test]
async fn a_verification_code_goes_out_by_email_and_its_text_is_wiped_once_sent() {
    let port = free_port();
    let sink = SmtpSink::start(port, sink_dir()).await;
    let app = TestApp::spawn_with(with_smtp(port)).await;
    let user = app.user("verify@codes.test").await;
    let vs = "/auth-api/verification-services/email-verification";
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{vs}/start"),
            None,
            Some(json!({ "email": user.email })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Not in the answer (production mode): only in the email.
    assert!(b.get("secretCode").is_none_or(Value::is_null), "{b}");
    eventually(15, "the code's email", || async {
        !sink.messages().is_empty()
    })
    .await;
    let mail = &sink.messages()[0];
    assert_eq!(mail["to"], json!(["verify@codes.test"]));
    assert_eq!(mail["subject"], "Verify your email for Haven");
    let text = mail["parts"][0]["content"].as_str().unwrap();
    let code: String = text
        .split_whitespace()
        .find(|w| {
            w.trim_end_matches('.').len() == 6
                && w.trim_end_matches('.').chars().all(|c| c.is_ascii_digit())
        })
        .unwrap()
        .trim_end_matches('.')
        .to_string();
    eventually(5, "sent", || async {
        deliveries(&app)
            .await
            .first()
            .is_some_and(|d| d.1 == "sent")
    })
    .await;
    // The outbox keeps no copy of the code, and it is in nobody's in-app list.
    let (body, html): (String, Option<String>) =
        sqlx::query_as("SELECT body_text, body_html FROM notification.deliveries")
            .fetch_one(&app.db)
            .await
            .unwrap();
    assert!(!body.contains(&code) && html.is_none(), "{body}");
    assert_eq!(app.count("notification.notifications").await, 0);
    let (s, b) = app
        .rest(
            Method::POST,
            &format!("{vs}/complete"),
            None,
            Some(json!({ "email": user.email, "secretCode": code })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    sink.stop().await;
}
