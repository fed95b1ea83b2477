//! OAuth 2.1 for remote MCP connectors, over real HTTP against real Postgres: discovery, the 401
//! challenge, dynamic registration, the sign-in and consent pages, PKCE, codes, refresh-token
//! rotation, audience binding, scopes and revocation, each from the refused side.

mod client_metadata;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use haven::config::AnonymousMcp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::helpers::{test_config, TestApp, TestUser};

const PUBLIC: &str = "https://haven.test";
const RESOURCE: &str = "https://haven.test/mcp";
const REDIRECT: &str = "http://127.0.0.1:7777/callback";
const VERIFIER: &str = "a-perfectly-good-pkce-verifier-of-sufficient-length-0123456789";

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Haven as a connector meets it: a public URL, anonymous MCP only on request.
async fn spawn() -> TestApp {
    let mut config = test_config();
    config.public_url = Some(PUBLIC.into());
    config.mcp_anonymous = AnonymousMcp::Explicit;
    TestApp::spawn_with(config).await
}

/// A client that does not follow redirects (the test reads each `Location`).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn register(app: &TestApp, body: Value) -> (StatusCode, Value) {
    app.rest(Method::POST, "/oauth/register", None, Some(body))
        .await
}

async fn client(app: &TestApp) -> String {
    let (s, body) = register(
        app,
        json!({ "client_name": "Test Connector", "redirect_uris": [REDIRECT] }),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "none");
    body["client_id"].as_str().unwrap().to_string()
}

/// The value of the hidden field `name` in a page.
fn field(html: &str, name: &str) -> Option<String> {
    let at = html.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &html[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].replace("&amp;", "&"))
}

fn query_of(location: &str) -> std::collections::HashMap<String, String> {
    let url = reqwest::Url::parse(location).unwrap();
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn location(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
}

/// The authorization request's parameters for `client_id`, with overrides.
fn auth_params(client_id: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("response_type".into(), "code".into()),
        ("client_id".into(), client_id.into()),
        ("redirect_uri".into(), REDIRECT.into()),
        ("state".into(), "st-123".into()),
        ("code_challenge".into(), challenge(VERIFIER)),
        ("code_challenge_method".into(), "S256".into()),
        ("resource".into(), RESOURCE.into()),
    ];
    for (k, v) in extra {
        p.retain(|(pk, _)| pk != k);
        if !v.is_empty() {
            p.push((k.to_string(), v.to_string()));
        }
    }
    p
}

/// `GET /oauth/authorize`.
async fn authorize(app: &TestApp, params: &[(String, String)]) -> reqwest::Response {
    browser()
        .get(format!("{}/oauth/authorize", app.base))
        .query(params)
        .send()
        .await
        .unwrap()
}

/// The sign-in page's CSRF cookie value.
fn csrf_cookie(resp: &reqwest::Response) -> String {
    let set = resp.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

/// Posts the sign-in form; returns the consent page (or the sign-in page again) and the cookie.
async fn sign_in(
    app: &TestApp,
    params: &[(String, String)],
    email: &str,
    password: &str,
) -> (StatusCode, String, String) {
    let page = authorize(app, params).await;
    assert_eq!(page.status(), StatusCode::OK);
    let cookie = csrf_cookie(&page);
    let html = page.text().await.unwrap();
    let csrf = field(&html, "csrf").unwrap();
    let mut form = params.to_vec();
    form.extend([
        ("step".into(), "login".into()),
        ("csrf".into(), csrf),
        ("email".into(), email.into()),
        ("password".into(), password.into()),
    ]);
    let resp = browser()
        .post(format!("{}/oauth/authorize", app.base))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.text().await.unwrap(), cookie)
}

/// Posts the consent form with `decision`; returns the response (a redirect when accepted).
async fn consent(app: &TestApp, page: &str, cookie: &str, decision: &str) -> reqwest::Response {
    browser()
        .post(format!("{}/oauth/authorize", app.base))
        .header("cookie", cookie)
        .form(&[
            ("step", "consent"),
            ("csrf", &field(page, "csrf").unwrap()),
            ("ticket", &field(page, "ticket").unwrap()),
            ("decision", decision),
        ])
        .send()
        .await
        .unwrap()
}

/// The whole browser part: sign in as `user`, allow; returns the code.
async fn code_for(
    app: &TestApp,
    client_id: &str,
    user: &TestUser,
    extra: &[(&str, &str)],
) -> String {
    let params = auth_params(client_id, extra);
    let (s, page, cookie) = sign_in(app, &params, &user.email, "password123").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(
        page.contains("Test Connector") && page.contains("127.0.0.1"),
        "{page}"
    );
    let resp = consent(app, &page, &cookie, "allow").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let loc = location(&resp).unwrap();
    assert!(loc.starts_with(REDIRECT), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q["state"], "st-123", "state is echoed");
    assert_eq!(q["iss"], PUBLIC, "RFC 9207 iss");
    q["code"].clone()
}

async fn token(app: &TestApp, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let resp = app
        .http
        .post(format!("{}/oauth/token", app.base))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    assert_eq!(resp.headers()["cache-control"], "no-store");
    (status, resp.json().await.unwrap())
}

async fn exchange(
    app: &TestApp,
    client_id: &str,
    code: &str,
    verifier: &str,
) -> (StatusCode, Value) {
    token(
        app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
            ("resource", RESOURCE),
        ],
    )
    .await
}

async fn refresh(app: &TestApp, client_id: &str, refresh_token: &str) -> (StatusCode, Value) {
    token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ],
    )
    .await
}

/// Status and `WWW-Authenticate` of a `tools/list` on `/mcp` with `token`.
async fn mcp_status(app: &TestApp, path: &str, token: Option<&str>) -> (StatusCode, String) {
    let mut req = app
        .http
        .post(format!("{}{path}", app.base))
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {} }));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (resp.status(), challenge)
}

/// Signs in through the whole flow; returns the token answer.
async fn tokens_for(
    app: &TestApp,
    client_id: &str,
    user: &TestUser,
    extra: &[(&str, &str)],
) -> Value {
    let code = code_for(app, client_id, user, extra).await;
    let (s, body) = exchange(app, client_id, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn discovery_documents_name_the_resource_and_the_authorization_server() {
    let app = spawn().await;
    for path in [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    ] {
        let (s, prm) = app.rest(Method::GET, path, None, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(prm["resource"], RESOURCE);
        assert_eq!(prm["authorization_servers"], json!([PUBLIC]));
        assert_eq!(prm["scopes_supported"], json!(["haven:read", "haven:full"]));
        assert_eq!(prm["bearer_methods_supported"], json!(["header"]));
    }
    for path in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration",
    ] {
        let (s, md) = app.rest(Method::GET, path, None, None).await;
        assert_eq!(s, StatusCode::OK, "{path}");
        assert_eq!(md["issuer"], PUBLIC);
        assert_eq!(
            md["authorization_endpoint"],
            format!("{PUBLIC}/oauth/authorize")
        );
        assert_eq!(md["token_endpoint"], format!("{PUBLIC}/oauth/token"));
        assert_eq!(
            md["registration_endpoint"],
            format!("{PUBLIC}/oauth/register")
        );
        assert_eq!(md["revocation_endpoint"], format!("{PUBLIC}/oauth/revoke"));
        assert_eq!(md["code_challenge_methods_supported"], json!(["S256"]));
        assert_eq!(
            md["grant_types_supported"],
            json!(["authorization_code", "refresh_token"])
        );
        assert_eq!(md["response_types_supported"], json!(["code"]));
        assert!(md["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("none")));
    }
}

#[tokio::test]
async fn mcp_without_a_credential_is_challenged_unless_it_asks_for_anonymous_access() {
    let app = spawn().await;
    let (s, challenge) = mcp_status(&app, "/mcp", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.contains(&format!(
            "resource_metadata=\"{PUBLIC}/.well-known/oauth-protected-resource/mcp\""
        )) && challenge.contains("scope=\"haven:read haven:full\""),
        "{challenge}"
    );
    let sse = app
        .http
        .get(format!("{}/mcp/sse", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(sse.status(), StatusCode::UNAUTHORIZED);
    assert!(sse.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("resource_metadata="));
    // A bad token says so in the challenge.
    let (s, challenge) = mcp_status(&app, "/mcp", Some("not-a-token")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        challenge.contains("error=\"invalid_token\"") && challenge.contains("resource_metadata=")
    );
    // Explicitly anonymous: the public tools, as before.
    let (s, _) = mcp_status(&app, "/mcp?anonymous=true", None).await;
    assert_eq!(s, StatusCode::OK);
    let resp = app
        .http
        .post(format!("{}/mcp", app.base))
        .header("accept", "application/json, text/event-stream")
        .header("x-mcp-anonymous", "true")
        .json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "ping" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A login token still works on /mcp.
    let user = app.user("header@haven.test").await;
    let (s, _) = mcp_status(&app, "/mcp", Some(&user.token)).await;
    assert_eq!(s, StatusCode::OK);

    // HAVEN_MCP_REQUIRE_AUTH refuses even an explicit anonymous request.
    let mut config = test_config();
    config.mcp_require_auth = true;
    let strict = TestApp::spawn_with(config).await;
    let (s, challenge) = mcp_status(&strict, "/mcp?anonymous=true", None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("resource_metadata="));
}

#[tokio::test]
async fn registration_refuses_unsafe_redirect_uris_and_oversized_or_repeated_registrations() {
    let app = spawn().await;
    for (body, needle) in [
        (json!({ "client_name": "x" }), "redirect_uris is required"),
        (json!({ "redirect_uris": [] }), "redirect_uris is required"),
        (
            json!({ "redirect_uris": ["http://evil.example/cb"] }),
            "redirect_uris[0]",
        ),
        (
            json!({ "redirect_uris": ["javascript:alert(1)"] }),
            "javascript",
        ),
        (
            json!({ "redirect_uris": ["https://a.example/cb#x"] }),
            "fragment",
        ),
        (
            json!({ "redirect_uris": ["https://ok.example/cb", "not a url"] }),
            "redirect_uris[1]",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "scope": "admin" }),
            "`admin`",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "grant_types": ["password"] }),
            "grant_types",
        ),
        (
            json!({ "redirect_uris": [REDIRECT], "client_name": "n".repeat(201) }),
            "client_name",
        ),
        (json!({ "redirect_uris": vec![REDIRECT; 11] }), "at most 10"),
    ] {
        let (s, err) = register(&app, body).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{err}");
        assert!(
            err["error"] == "invalid_redirect_uri" || err["error"] == "invalid_client_metadata",
            "{err}"
        );
        assert!(
            err["error_description"].as_str().unwrap().contains(needle),
            "{needle}: {err}"
        );
    }
    assert_eq!(app.count("oauth.clients").await, 0, "nothing stored");
    let (s, _) = register(
        &app,
        json!({ "redirect_uris": [REDIRECT], "logo": "x".repeat(9000) }),
    )
    .await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE);
    for _ in 0..20 {
        client(&app).await;
    }
    let (s, err) = register(&app, json!({ "redirect_uris": [REDIRECT] })).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{err}");
    assert_eq!(app.count("oauth.clients").await, 20);
}

#[tokio::test]
async fn a_connector_signs_in_calls_tools_as_the_user_refreshes_and_is_revoked() {
    let app = spawn().await;
    let user = app.user("guest@haven.test").await;
    let client_id = client(&app).await;
    let t = tokens_for(&app, &client_id, &user, &[]).await;
    assert_eq!(t["token_type"], "Bearer");
    assert_eq!(t["scope"], "haven:read haven:full");
    let access = t["access_token"].as_str().unwrap().to_string();
    let refresh_token = t["refresh_token"].as_str().unwrap().to_string();
    // The token is a Haven JWT for the MCP resource, carrying its scope.
    let payload = access.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["client_id"], client_id.as_str());

    let (err, me) = app.tool(Some(&access), "getCurrentUser", json!({})).await;
    assert!(!err, "{me}");
    assert_eq!(me["email"], "guest@haven.test");
    // Full scope acts as the user, never more: admin tools stay refused.
    let (err, text) = app
        .tool(
            Some(&access),
            "updateUserRole",
            json!({ "userId": user.id, "roleId": "admin" }),
        )
        .await;
    assert!(err, "{text}");
    // A token for the MCP resource is refused by the REST API (another audience).
    let (s, _) = app
        .rest(Method::GET, "/auth-api/v1/currentuser", Some(&access), None)
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    // Refresh rotates; the new access token works.
    let (s, r1) = refresh(&app, &client_id, &refresh_token).await;
    assert_eq!(s, StatusCode::OK, "{r1}");
    let access2 = r1["access_token"].as_str().unwrap().to_string();
    let refresh2 = r1["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh_token);
    assert_ne!(
        access2, access,
        "a new access token, even within the same second (jti)"
    );
    assert_eq!(
        mcp_status(&app, "/mcp", Some(&access2)).await.0,
        StatusCode::OK
    );
    // Another client cannot use this client's refresh token.
    let other = client(&app).await;
    let (s, e) = refresh(&app, &other, &refresh2).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Revocation (RFC 7009): the grant ends, calls get 401 with the challenge.
    let resp = app
        .http
        .post(format!("{}/oauth/revoke", app.base))
        .form(&[
            ("token", refresh2.as_str()),
            ("client_id", client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (s, challenge) = mcp_status(&app, "/mcp", Some(&access2)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("invalid_token"));
    let (s, e) = refresh(&app, &client_id, &refresh2).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // Unknown tokens are answered 200 too.
    let resp = app
        .http
        .post(format!("{}/oauth/revoke", app.base))
        .form(&[("token", "nonsense"), ("client_id", client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_grant() {
    let app = spawn().await;
    let user = app.user("reuse@haven.test").await;
    let client_id = client(&app).await;
    let t = tokens_for(&app, &client_id, &user, &[]).await;
    let first = t["refresh_token"].as_str().unwrap();
    let (s, r1) = refresh(&app, &client_id, first).await;
    assert_eq!(s, StatusCode::OK);
    let newest_access = r1["access_token"].as_str().unwrap();
    let (s, e) = refresh(&app, &client_id, first).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(e["error"], "invalid_grant");
    assert!(e["error_description"]
        .as_str()
        .unwrap()
        .contains("already used"));
    // Everything the grant issued is dead, including the newest tokens.
    assert_eq!(
        mcp_status(&app, "/mcp", Some(newest_access)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = refresh(&app, &client_id, r1["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn codes_are_single_use_short_lived_bound_to_client_redirect_and_verifier() {
    let app = spawn().await;
    let user = app.user("codes@haven.test").await;
    let client_id = client(&app).await;

    // Wrong or missing verifier.
    let code = code_for(&app, &client_id, &user, &[]).await;
    let (s, e) = exchange(&app, &client_id, &code, &"b".repeat(50)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "{e}"
    );
    let (s, e) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    // Another client, another redirect URI, another resource.
    let other = client(&app).await;
    let (s, e) = exchange(&app, &other, &code, VERIFIER).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (s, e) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("redirect_uri", "http://127.0.0.1:7777/elsewhere"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (s, e) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("client_id", &client_id),
            ("code", &code),
            ("code_verifier", VERIFIER),
            ("resource", "https://other.example/mcp"),
        ],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_target"))
    );
    let (s, e) = exchange(&app, "haven-unknown", &code, VERIFIER).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );

    // The right exchange works once; a replay fails and revokes what the code issued.
    let (s, t) = exchange(&app, &client_id, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        mcp_status(&app, "/mcp", Some(access)).await.0,
        StatusCode::OK
    );
    let (s, e) = exchange(&app, &client_id, &code, VERIFIER).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert_eq!(
        mcp_status(&app, "/mcp", Some(access)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, _) = refresh(&app, &client_id, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // An expired code.
    let code = code_for(&app, &client_id, &user, &[]).await;
    sqlx::query(
        "UPDATE oauth.codes SET expires_at = now() - interval '1 second' WHERE used_at IS NULL",
    )
    .execute(&app.db)
    .await
    .unwrap();
    let (s, e) = exchange(&app, &client_id, &code, VERIFIER).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    assert!(e["error_description"].as_str().unwrap().contains("expired"));
}

#[tokio::test]
async fn the_authorize_endpoint_never_redirects_to_an_unknown_client_or_unregistered_uri() {
    let app = spawn().await;
    let client_id = client(&app).await;
    let cases: Vec<Vec<(String, String)>> = vec![
        auth_params("haven-nobody", &[]),
        auth_params(&client_id, &[("client_id", "")]),
        auth_params(
            &client_id,
            &[("redirect_uri", "https://evil.example/callback")],
        ),
        auth_params(
            &client_id,
            &[("redirect_uri", "http://127.0.0.1:7777/callback/../evil")],
        ),
        auth_params(
            &client_id,
            &[(
                "redirect_uri",
                "http://127.0.0.1.evil.example:7777/callback",
            )],
        ),
        auth_params(
            &client_id,
            &[(
                "redirect_uri",
                "https://evil.example@127.0.0.1:7777/callback",
            )],
        ),
    ];
    for params in cases {
        let resp = authorize(&app, &params).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(location(&resp).is_none(), "no redirect for {params:?}");
        let html = resp.text().await.unwrap();
        assert!(html.contains("Cannot sign in"), "{html}");
    }
    // A loopback redirect may use any port (RFC 8252 §7.3).
    let resp = authorize(
        &app,
        &auth_params(
            &client_id,
            &[("redirect_uri", "http://127.0.0.1:9999/callback")],
        ),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn pkce_s256_is_required_and_bad_requests_are_redirected_with_the_state() {
    let app = spawn().await;
    let client_id = client(&app).await;
    for (extra, error) in [
        (vec![("code_challenge", "")], "invalid_request"),
        (vec![("code_challenge_method", "plain")], "invalid_request"),
        (vec![("code_challenge_method", "")], "invalid_request"),
        (vec![("code_challenge", "short")], "invalid_request"),
        (
            vec![("response_type", "token")],
            "unsupported_response_type",
        ),
        (vec![("scope", "haven:everything")], "invalid_scope"),
        (
            vec![("resource", "https://other.example/mcp")],
            "invalid_target",
        ),
    ] {
        let resp = authorize(&app, &auth_params(&client_id, &extra)).await;
        assert_eq!(resp.status(), StatusCode::FOUND, "{extra:?}");
        let loc = location(&resp).unwrap();
        assert!(loc.starts_with(REDIRECT), "{loc}");
        let q = query_of(&loc);
        assert_eq!(q["error"], error, "{extra:?}");
        assert_eq!(q["state"], "st-123");
    }
}

#[tokio::test]
async fn the_forms_need_their_csrf_token_a_password_and_deny_returns_access_denied() {
    let app = spawn().await;
    let user = app.user("forms@haven.test").await;
    let client_id = client(&app).await;
    let params = auth_params(&client_id, &[]);

    // Wrong password: the sign-in page again, no consent ticket.
    let (s, html, _) = sign_in(&app, &params, &user.email, "wrong-password").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Invalid email or password") && field(&html, "ticket").is_none());
    assert_eq!(app.count("oauth.consent_tickets").await, 0);

    // A sign-in form posted without its CSRF token, or with a cookie of another browser.
    let mut form = params.clone();
    form.extend([
        ("step".to_string(), "login".to_string()),
        ("email".into(), user.email.clone()),
        ("password".into(), "password123".into()),
    ]);
    let resp = browser()
        .post(format!("{}/oauth/authorize", app.base))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("oauth.consent_tickets").await, 0);

    // The consent form without its CSRF token, then with another browser's cookie.
    let (_, page, cookie) = sign_in(&app, &params, &user.email, "password123").await;
    let ticket = field(&page, "ticket").unwrap();
    let resp = browser()
        .post(format!("{}/oauth/authorize", app.base))
        .header("cookie", &cookie)
        .form(&[
            ("step", "consent"),
            ("ticket", &ticket),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert!(location(&resp).is_none());
    let forged = "haven-oauth-csrf=attacker-chosen-value-that-is-long-enough-000";
    let resp = browser()
        .post(format!("{}/oauth/authorize", app.base))
        .header("cookie", forged)
        .form(&[
            ("step", "consent"),
            ("csrf", "attacker-chosen-value-that-is-long-enough-000"),
            ("ticket", &ticket),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::FORBIDDEN,
        "a ticket is bound to its browser"
    );
    assert_eq!(app.count("oauth.codes").await, 0);

    // Deny: back to the client with access_denied and the state; no code.
    let resp = consent(&app, &page, &cookie, "deny").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let q = query_of(&location(&resp).unwrap());
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("code"));
    assert_eq!(app.count("oauth.codes").await, 0);
    // A ticket answers once.
    let resp = consent(&app, &page, &cookie, "allow").await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_read_scope_makes_the_connection_read_only() {
    let app = spawn().await;
    let user = app.user("reader@haven.test").await;
    let client_id = client(&app).await;
    let t = tokens_for(&app, &client_id, &user, &[("scope", "haven:read")]).await;
    assert_eq!(t["scope"], "haven:read");
    let access = t["access_token"].as_str().unwrap();
    let keys = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM platformadmin.api_keys WHERE created_by = $1",
        )
        .bind(user.id)
        .fetch_one(&app.db)
        .await
        .unwrap()
    };
    // A write is a scope challenge (403 insufficient_scope naming the scopes to ask for), directly,
    // through call_tool, and whatever the query says; nothing is written.
    let create = json!({ "name": "createApiKey", "arguments": { "description": "x" } });
    let via_meta = json!({ "name": "call_tool", "arguments": {
        "name": "createApiKey", "arguments": { "description": "x" } } });
    for (path, params) in [
        ("/mcp", &create),
        ("/mcp", &via_meta),
        ("/mcp?readonly=false", &create),
    ] {
        let (status, challenge, body) = mcp_raw(&app, path, access, "tools/call", params).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path} {params}: {body}");
        assert!(
            challenge.contains("error=\"insufficient_scope\"")
                && challenge.contains("scope=\"haven:read haven:full\"")
                && challenge.contains("resource_metadata=\"https://haven.test/.well-known/oauth-protected-resource/mcp\""),
            "{challenge}"
        );
        assert_eq!(body["id"], 7, "{body}");
        assert!(body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("haven:full"));
    }
    assert_eq!(keys().await, 0);
    // Reads pass; a write the role may not call anyway stays a plain refusal, not a challenge;
    // a connection the client itself made read-only gets the read-only tool error.
    let (err, me) = app.tool(Some(access), "getCurrentUser", json!({})).await;
    assert!(!err, "{me}");
    let (status, _, body) = mcp_raw(
        &app,
        "/mcp",
        access,
        "tools/call",
        &json!({ "name": "createAgentOverride", "arguments": {} }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let r = app
        .mcp_at(
            "/mcp?readonly=true",
            Some(access),
            "tools/call",
            create.clone(),
        )
        .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r.to_string().contains("read-only"), "{r}");
    assert_eq!(keys().await, 0);
    // Refreshing cannot widen the scope.
    let (s, e) = token(
        &app,
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("scope", "haven:full"),
        ],
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
}

#[tokio::test]
async fn the_person_may_grant_read_only_access_when_the_app_asks_for_more() {
    let app = spawn().await;
    let user = app.user("narrow@haven.test").await;
    let client_id = client(&app).await;
    let params = auth_params(&client_id, &[]);
    let (s, page, cookie) = sign_in(&app, &params, &user.email, "password123").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    assert!(page.contains("value=\"allow_read\""), "{page}");
    let resp = consent(&app, &page, &cookie, "allow_read").await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let code = query_of(&location(&resp).unwrap())["code"].clone();
    let (s, t) = exchange(&app, &client_id, &code, VERIFIER).await;
    assert_eq!(s, StatusCode::OK, "{t}");
    assert_eq!(
        t["scope"], "haven:read",
        "the token answer says what was granted"
    );
    let (status, challenge, _) = mcp_raw(
        &app,
        "/mcp",
        t["access_token"].as_str().unwrap(),
        "tools/call",
        &json!({ "name": "createApiKey", "arguments": { "description": "x" } }),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    // A read-only request gets no such button: there is nothing to narrow.
    let params = auth_params(&client_id, &[("scope", "haven:read")]);
    let (_, page, _) = sign_in(&app, &params, &user.email, "password123").await;
    assert!(!page.contains("allow_read"), "{page}");
}

#[tokio::test]
async fn a_token_minted_for_another_resource_is_refused_by_mcp() {
    let app = spawn().await;
    let user = app.user("aud@haven.test").await;
    let session_id = uuid::Uuid::new_v4();
    sqlx::query("INSERT INTO auth.sessions (id, user_id, expires_at) VALUES ($1, $2, now() + interval '1 hour')")
        .bind(session_id)
        .bind(user.id)
        .execute(&app.db)
        .await
        .unwrap();
    let sign_by = |aud: &str, iss: Option<&str>| {
        let grant = haven_tools::auth::tokens::Grant {
            audience: aud.into(),
            scope: Some("haven:read haven:full".into()),
            client_id: Some("c".into()),
            issuer: iss.map(str::to_string),
        };
        app.state
            .services
            .tokens
            .sign_grant(
                user.id,
                session_id,
                haven_tools::Role::User,
                &grant,
                std::time::Duration::from_secs(600),
            )
            .unwrap()
            .0
    };
    let sign = |aud: &str| sign_by(aud, Some(PUBLIC));
    let foreign = sign("https://other.example/mcp");
    let (s, challenge) = mcp_status(&app, "/mcp", Some(&foreign)).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(challenge.contains("invalid_token"));
    // An OAuth token must carry the authorization server's issuer URL, not the login issuer,
    // nor another server's.
    for iss in [None, Some("https://other.example")] {
        let (s, _) = mcp_status(&app, "/mcp", Some(&sign_by(RESOURCE, iss))).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "iss {iss:?}");
    }
    // The same token for this resource is accepted: only the audience differs.
    assert_eq!(
        mcp_status(&app, "/mcp", Some(&sign(RESOURCE))).await.0,
        StatusCode::OK
    );
}

/// A raw `POST` of one JSON-RPC request (id 7) to `path`: status, `WWW-Authenticate`, body.
async fn mcp_raw(
    app: &TestApp,
    path: &str,
    token: &str,
    method: &str,
    params: &Value,
) -> (StatusCode, String, Value) {
    let resp = app
        .http
        .post(format!("{}{path}", app.base))
        .bearer_auth(token)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .json(&json!({ "jsonrpc": "2.0", "id": 7, "method": method, "params": params }))
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.json().await.unwrap_or(Value::Null);
    (status, challenge, body)
}

/// The claims of a JWT (its middle part), without checking the signature.
fn claims_of(token: &str) -> Value {
    let body = token.split('.').nth(1).expect("a JWT");
    let bytes = URL_SAFE_NO_PAD.decode(body).expect("base64url claims");
    serde_json::from_slice(&bytes).expect("JSON claims")
}

#[tokio::test]
async fn access_tokens_name_the_authorization_server_as_issuer() {
    let app = spawn().await;
    let user = app.user("iss@haven.test").await;
    let client_id = client(&app).await;
    let t = tokens_for(&app, &client_id, &user, &[]).await;
    let claims = claims_of(t["access_token"].as_str().unwrap());
    assert_eq!(
        claims["iss"], PUBLIC,
        "iss = the metadata's issuer: {claims}"
    );
    assert_eq!(claims["aud"], RESOURCE);
    assert_eq!(claims["client_id"], client_id.as_str());
    let (_, meta) = app
        .rest(
            Method::GET,
            "/.well-known/oauth-authorization-server",
            None,
            None,
        )
        .await;
    assert_eq!(meta["issuer"], claims["iss"]);
    // A login token keeps the JWT issuer.
    assert_eq!(claims_of(&user.token)["iss"], "haven");
}

#[tokio::test]
async fn users_list_and_revoke_their_apps_and_admins_disable_clients() {
    let app = spawn().await;
    let user = app.user("owner@haven.test").await;
    let stranger = app.user("stranger@haven.test").await;
    let client_id = client(&app).await;
    let t = tokens_for(&app, &client_id, &user, &[]).await;
    let access = t["access_token"].as_str().unwrap();

    let (s, mine) = app
        .rest(
            Method::GET,
            "/auth-api/v1/oauth/authorizedapps",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{mine}");
    let apps = mine.to_string();
    assert!(
        apps.contains(&client_id) && apps.contains("Test Connector"),
        "{mine}"
    );
    // Someone else cannot revoke it, and sees nothing of it.
    let (_, theirs) = app
        .rest(
            Method::GET,
            "/auth-api/v1/oauth/authorizedapps",
            Some(&stranger.token),
            None,
        )
        .await;
    assert!(!theirs.to_string().contains(&client_id), "{theirs}");
    let path = format!("/auth-api/v1/oauth/authorizedapps/{client_id}/revoke");
    let (s, _) = app
        .rest(Method::POST, &path, Some(&stranger.token), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(
        mcp_status(&app, "/mcp", Some(access)).await.0,
        StatusCode::OK
    );
    // The owner revokes: the token dies at once.
    let (s, body) = app
        .rest(Method::POST, &path, Some(&user.token), Some(json!({})))
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        mcp_status(&app, "/mcp", Some(access)).await.0,
        StatusCode::UNAUTHORIZED
    );

    // Admins: plain users may not list clients; an admin disables one, ending its grants.
    let (s, _) = app
        .rest(
            Method::GET,
            "/platformadmin-api/v1/oauth/clients",
            Some(&user.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let t = tokens_for(&app, &client_id, &user, &[]).await;
    let access = t["access_token"].as_str().unwrap();
    let admin = app.user_with_role("staff@haven.test", "admin").await;
    let (s, all) = app
        .rest(
            Method::GET,
            "/platformadmin-api/v1/oauth/clients",
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{all}");
    assert!(all.to_string().contains(REDIRECT), "{all}");
    let (s, body) = app
        .rest(
            Method::POST,
            &format!("/platformadmin-api/v1/oauth/clients/{client_id}/disable"),
            Some(&admin.token),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        mcp_status(&app, "/mcp", Some(access)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let (s, e) = refresh(&app, &client_id, t["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let resp = authorize(&app, &auth_params(&client_id, &[])).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(location(&resp).is_none());
}
