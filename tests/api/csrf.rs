//! Cross-site request forgery and the web surface: a change authenticated by the
//! `haven-access-token` cookie needs a JSON body type and a same-origin `Origin`/`Referer`, relogin
//! by cookie needs `X-Requested-With`, bearer tokens are unaffected, and every response carries
//! the security headers.

use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};

use crate::helpers::TestApp;

const KEYS: &str = "/platformadmin-api/v1/apikeys";

fn with_cookie(req: RequestBuilder, token: &str) -> RequestBuilder {
    req.header("cookie", format!("haven-access-token={token}"))
}

async fn send(req: RequestBuilder) -> (StatusCode, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn cookie_mutations_from_other_sites_or_without_json_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let user = app.user("csrf@haven.test").await;
    let url = format!("{}{KEYS}", app.base);
    let body = r#"{"description":"planted"}"#;
    let before = app.count("platformadmin.api_keys").await;
    let attempts = [
        ("text/plain", Some(app.base.as_str()), None),
        (
            "application/x-www-form-urlencoded",
            Some(app.base.as_str()),
            None,
        ),
        (
            "multipart/form-data; boundary=x",
            Some(app.base.as_str()),
            None,
        ),
        ("application/json", Some("https://evil.example"), None),
        ("application/json", Some("null"), None),
        ("application/json", None, Some("https://evil.example/page")),
        ("application/json", None, None),
        ("text/plain", Some("https://evil.example"), None),
    ];
    for (content_type, origin, referer) in attempts {
        let mut req = with_cookie(app.http.post(&url), &user.token)
            .header("content-type", content_type)
            .body(body);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        if let Some(referer) = referer {
            req = req.header("referer", referer);
        }
        let (status, answer) = send(req).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{content_type} {origin:?} {referer:?}: {answer}"
        );
        assert!(
            answer["message"].as_str().unwrap().contains("cookie"),
            "{answer}"
        );
    }
    assert_eq!(app.count("platformadmin.api_keys").await, before);

    // The same change from the site itself (Origin, or Referer alone) goes through.
    let (status, answer) = send(
        with_cookie(app.http.post(&url), &user.token)
            .header("content-type", "application/json")
            .header("origin", &app.base)
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = send(
        with_cookie(app.http.post(&url), &user.token)
            .header("content-type", "application/json")
            .header("referer", format!("{}/swagger", app.base))
            .body(body),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test]
async fn bearer_and_header_tokens_are_not_subject_to_the_cookie_rules() {
    let app = TestApp::spawn().await;
    let user = app.user("bearer@haven.test").await;
    let url = format!("{}{KEYS}", app.base);
    let (status, answer) = send(
        app.http
            .post(&url)
            .bearer_auth(&user.token)
            .header("origin", "https://elsewhere.example")
            .header("content-type", "text/plain")
            .body(r#"{"description":"cli"}"#),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
    let (status, answer) = send(
        app.http
            .post(&url)
            .header("haven-access-token", &user.token)
            .json(&json!({ "description": "agent" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

#[tokio::test]
async fn relogin_by_cookie_needs_a_header_a_navigation_cannot_send() {
    let app = TestApp::spawn().await;
    let user = app.user("relogin@haven.test").await;
    let url = format!("{}/auth-api/relogin", app.base);
    let (status, answer) = send(with_cookie(app.http.get(&url), &user.token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("X-Requested-With"),
        "{answer}"
    );
    // The session was not rotated: the old token still works.
    let (status, _) = app
        .rest(Method::GET, "/currentuser", Some(&user.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, answer) = send(
        with_cookie(app.http.get(&url), &user.token).header("x-requested-with", "XMLHttpRequest"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let fresh = answer["accessToken"].as_str().unwrap();
    // API clients keep the spec's route with a bearer token.
    let (status, answer) = app
        .rest(Method::GET, "/auth-api/relogin", Some(fresh), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_tokens_are_never_cached() {
    let app = TestApp::spawn().await;
    app.user("headers@haven.test").await;
    let login = app
        .http
        .post(format!("{}/auth-api/login", app.base))
        .json(&json!({ "username": "headers@haven.test", "password": "password123" }));
    let requests = [
        login,
        app.http.get(format!("{}/health", app.base)),
        app.http.get(format!("{}/openapi.json", app.base)),
        app.http.get(format!("{}/no/such/route", app.base)),
        app.http
            .get(format!("{}/currentuser", app.base))
            .bearer_auth("bogus"),
        app.http
            .get(format!("{}/propertycatalog-api/v1/listings", app.base)),
        app.http.get(format!("{}/live", app.base)),
    ];
    for req in requests {
        let resp = req.send().await.unwrap();
        let h = resp.headers();
        let url = resp.url().to_string();
        assert_eq!(h["x-content-type-options"], "nosniff", "{url}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{url}");
        assert_eq!(h["x-frame-options"], "DENY", "{url}");
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'"),
            "{url}"
        );
        assert_eq!(h["cache-control"], "no-store", "{url}");
        if url.ends_with("/live") {
            // Haven's own page loads its script and style from Haven, nothing inline.
            let csp = h["content-security-policy"].to_str().unwrap();
            assert!(csp.starts_with("default-src 'self'"), "{csp}");
        }
    }
}

#[tokio::test]
async fn the_swagger_page_pins_its_cdn_files_with_integrity_hashes() {
    let app = TestApp::spawn().await;
    let resp = app
        .http
        .get(format!("{}/swagger", app.base))
        .send()
        .await
        .unwrap();
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let scripts = csp
        .split(';')
        .find(|d| d.trim().starts_with("script-src"))
        .unwrap();
    assert!(!scripts.contains("unsafe"), "{csp}");
    let page = resp.text().await.unwrap();
    let external: Vec<&str> = page
        .split('<')
        .filter(|tag| tag.contains("https://"))
        .collect();
    assert_eq!(external.len(), 2, "{page}");
    for tag in external {
        assert!(tag.contains("integrity=\"sha384-"), "{tag}");
        assert!(tag.contains("crossorigin=\"anonymous\""), "{tag}");
        assert!(tag.contains("@5.35.0/"), "a pinned version: {tag}");
    }
    assert!(!page.contains("<script>"), "no inline script: {page}");
    let init = app
        .http
        .get(format!("{}/swagger/init.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    assert!(init.text().await.unwrap().contains("/openapi.json"));
}
