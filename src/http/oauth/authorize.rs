//! The authorization endpoint: `GET /oauth/authorize` checks the request and shows the sign-in
//! page; `POST /oauth/authorize` takes the sign-in form (Haven email and password), then the
//! consent form, and redirects back with a single-use code (PKCE S256 only) or `access_denied`.
//!
//! An unknown client or an unregistered redirect URI gets an error page, never a redirect. Both
//! forms carry a CSRF token that must equal the browser's `haven-oauth-csrf` cookie; the consent
//! form also carries a ticket, issued only after a correct password and bound to that cookie.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use subtle::ConstantTimeEq;
use url::Url;
use uuid::Uuid;

use super::client_metadata;
use super::pages::{consent_page, error_page, login_page};
use super::register::is_loopback;
use super::{grant_scope, hash, parse_form, random_token, resource_matches, CODE_TTL_SECS};
use crate::app::AppState;

/// The CSRF cookie's name.
pub const CSRF_COOKIE: &str = "haven-oauth-csrf";

/// The authorization request parameters carried from page to page.
const PARAMS: [&str; 8] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "state",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

/// A registered client.
struct Client {
    id: String,
    name: String,
    redirect_uris: Vec<String>,
}

/// A checked authorization request.
struct Request {
    client: Client,
    redirect_uri: String,
    state: Option<String>,
    scope: String,
    code_challenge: String,
    resource: String,
}

/// Why a request is refused: with a page (the redirect URI is not trusted) or by redirecting
/// an OAuth error to the client's registered redirect URI (RFC 6749 §4.1.2.1).
enum Refusal {
    Page(StatusCode, String),
    Redirect(String, &'static str, String, Option<String>),
}

/// Whether `requested` is one of the registered redirect URIs: exactly, or for loopback http
/// URIs with any port (RFC 8252 §7.3).
fn redirect_registered(registered: &[String], requested: &str) -> bool {
    if registered.iter().any(|r| r == requested) {
        return true;
    }
    let Ok(req) = Url::parse(requested) else {
        return false;
    };
    if req.scheme() != "http" || !is_loopback(&req) {
        return false;
    }
    registered
        .iter()
        .filter_map(|r| Url::parse(r).ok())
        .any(|r| {
            r.scheme() == "http"
                && r.host_str() == req.host_str()
                && r.path() == req.path()
                && r.query() == req.query()
        })
}

/// Whether a PKCE value (challenge or verifier) has the RFC 7636 form: 43–128 unreserved chars.
pub fn pkce_shaped(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

async fn check(state: &AppState, p: &HashMap<String, String>) -> Result<Request, Refusal> {
    let get = |k: &str| p.get(k).map(|s| s.as_str()).filter(|s| !s.is_empty());
    let client_id = get("client_id").ok_or_else(|| {
        Refusal::Page(
            StatusCode::BAD_REQUEST,
            "The request names no client (client_id is missing).".into(),
        )
    })?;
    if client_metadata::is_document_url(client_id) {
        client_metadata::ensure_fresh(state, client_id)
            .await
            .map_err(|why| Refusal::Page(StatusCode::BAD_REQUEST, why))?;
    }
    let row: Option<(String, String, Vec<String>)> = sqlx::query_as(
        "SELECT id, client_name, redirect_uris FROM oauth.clients WHERE id = $1 AND disabled_at IS NULL",
    )
    .bind(client_id)
    .fetch_optional(&state.services.db)
    .await
    .map_err(|e| {
        tracing::error!(%e, "loading an oauth client");
        Refusal::Page(StatusCode::INTERNAL_SERVER_ERROR, "Haven failed; try again.".into())
    })?;
    let Some((id, mut name, redirect_uris)) = row else {
        return Err(Refusal::Page(
            StatusCode::BAD_REQUEST,
            "The app is not registered with Haven (unknown or disabled client_id).".into(),
        ));
    };
    // An app named by its metadata document chose its own name: the pages also show the site
    // that vouches for it.
    if let Some(host) = client_metadata::is_document_url(&id)
        .then(|| Url::parse(&id).ok())
        .flatten()
        .and_then(|u| u.host_str().map(str::to_string))
    {
        name = format!("{name} ({host})");
    }
    let redirect_uri =
        match get("redirect_uri") {
            Some(uri) if redirect_registered(&redirect_uris, uri) => uri.to_string(),
            Some(_) => return Err(Refusal::Page(
                StatusCode::BAD_REQUEST,
                "The redirect_uri is not one the app registered, so Haven will not send you there."
                    .into(),
            )),
            None if redirect_uris.len() == 1 => redirect_uris[0].clone(),
            None => {
                return Err(Refusal::Page(
                    StatusCode::BAD_REQUEST,
                    "The request has no redirect_uri and the app registered several.".into(),
                ))
            }
        };
    let st = get("state").map(str::to_string);
    let refuse = |error: &'static str, why: &str| {
        Refusal::Redirect(redirect_uri.clone(), error, why.to_string(), st.clone())
    };
    if get("response_type") != Some("code") {
        return Err(refuse(
            "unsupported_response_type",
            "response_type must be code",
        ));
    }
    let challenge = get("code_challenge").ok_or_else(|| {
        refuse(
            "invalid_request",
            "code_challenge is required (PKCE with S256)",
        )
    })?;
    if get("code_challenge_method") != Some("S256") {
        return Err(refuse(
            "invalid_request",
            "code_challenge_method must be S256 (plain and missing methods are refused)",
        ));
    }
    if !pkce_shaped(challenge) {
        return Err(refuse(
            "invalid_request",
            "code_challenge must be 43 to 128 base64url characters",
        ));
    }
    let scope = grant_scope(get("scope")).map_err(|e| refuse("invalid_scope", &e))?;
    let resource = match get("resource") {
        Some(r) if resource_matches(&state.config, r) => state.config.mcp_resource(),
        Some(_) => {
            return Err(refuse(
                "invalid_target",
                "resource names a server other than this Haven's MCP endpoint",
            ))
        }
        None => state.config.mcp_resource(),
    };
    Ok(Request {
        client: Client {
            id,
            name,
            redirect_uris,
        },
        redirect_uri,
        state: st,
        scope,
        code_challenge: challenge.to_string(),
        resource,
    })
}

/// `uri` with `pairs` (and `iss`, RFC 9207) added to its query.
fn back_to(issuer: &str, uri: &str, pairs: &[(&str, &str)]) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            {
                let mut q = url.query_pairs_mut();
                for (k, v) in pairs {
                    q.append_pair(k, v);
                }
                q.append_pair("iss", issuer);
            }
            url.to_string()
        }
        Err(_) => uri.to_string(),
    }
}

fn redirect(status: StatusCode, location: &str) -> Response {
    let mut resp = Response::new(axum::body::Body::empty());
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(location) {
        resp.headers_mut().insert(LOCATION, v);
    }
    super::no_store(&mut resp);
    resp
}

fn refused(state: &AppState, status: StatusCode, refusal: Refusal) -> Response {
    match refusal {
        Refusal::Page(code, message) => error_page(code, &message),
        Refusal::Redirect(uri, error, why, st) => {
            let mut pairs = vec![("error", error), ("error_description", why.as_str())];
            if let Some(s) = &st {
                pairs.push(("state", s));
            }
            redirect(status, &back_to(&state.config.issuer(), &uri, &pairs))
        }
    }
}

fn cookie_csrf(headers: &HeaderMap) -> Option<String> {
    crate::http::auth::cookie(headers, CSRF_COOKIE).filter(|value| value.len() >= 32)
}

fn set_csrf_cookie(state: &AppState, resp: &mut Response, csrf: &str) {
    let secure = if state.config.issuer().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{CSRF_COOKIE}={csrf}; Path=/oauth; HttpOnly; SameSite=Strict; Max-Age=1800{secure}"
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().append(SET_COOKIE, v);
    }
}

/// The request parameters to carry as hidden fields.
fn carried(p: &HashMap<String, String>) -> Vec<(&str, &str)> {
    PARAMS
        .iter()
        .filter_map(|k| p.get(*k).map(|v| (*k, v.as_str())))
        .collect()
}

/// `GET /oauth/authorize`: checks the request, then shows the sign-in page.
pub async fn show(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let p = match parse_form(query.unwrap_or_default().as_bytes()) {
        Ok(p) => p,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
    };
    let req = match check(&state, &p).await {
        Ok(r) => r,
        Err(refusal) => return refused(&state, StatusCode::FOUND, refusal),
    };
    let csrf = cookie_csrf(&headers).unwrap_or_else(random_token);
    let mut resp = login_page(&req.client.name, &carried(&p), &csrf, None);
    set_csrf_cookie(&state, &mut resp, &csrf);
    resp
}

/// `POST /oauth/authorize`: the sign-in form (`step=login`) or the consent form (`step=consent`).
pub async fn submit(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match parse_form(&body) {
        Ok(p) => p,
        Err(why) => return error_page(StatusCode::BAD_REQUEST, &why),
    };
    let csrf_ok = match (cookie_csrf(&headers), p.get("csrf")) {
        (Some(cookie), Some(form)) => bool::from(cookie.as_bytes().ct_eq(form.as_bytes())),
        _ => false,
    };
    if !csrf_ok {
        return error_page(
            StatusCode::FORBIDDEN,
            "The form was not sent by this sign-in page (its CSRF token is missing or does not \
             match); nothing was changed.",
        );
    }
    let csrf = p.get("csrf").cloned().unwrap_or_default();
    match p.get("step").map(String::as_str) {
        Some("login") => login(&state, &p, &csrf).await,
        Some("consent") => consent(&state, &p, &csrf).await,
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "The form has no step (login or consent).",
        ),
    }
}

async fn login(state: &AppState, p: &HashMap<String, String>, csrf: &str) -> Response {
    let req = match check(state, p).await {
        Ok(r) => r,
        Err(refusal) => return refused(state, StatusCode::SEE_OTHER, refusal),
    };
    let email = p
        .get("email")
        .map(|e| e.trim().to_lowercase())
        .unwrap_or_default();
    let password = p.get("password").cloned().unwrap_or_default();
    // The same check as `login`, under the same lockout.
    let ctx = haven_tools::Ctx::new(
        state.services.clone(),
        None,
        format!("oauth-{}", uuid::Uuid::new_v4().simple()),
        None,
    );
    let verified = haven_tools::auth::session::verify_credentials(&ctx, &email, &password).await;
    let user_id = match verified {
        Ok(Some((id, _, _))) => id,
        Ok(None) => {
            return login_page(
                &req.client.name,
                &carried(p),
                csrf,
                Some("Invalid email or password."),
            )
        }
        Err(e) if e.kind == haven_tools::ErrorKind::RateLimited => {
            return login_page(&req.client.name, &carried(p), csrf, Some(&e.message))
        }
        Err(e) => {
            tracing::error!(%e, "oauth sign-in");
            return error_page(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Haven failed; try again.",
            );
        }
    };
    let ticket = random_token();
    let stored = sqlx::query(
        "INSERT INTO oauth.consent_tickets (ticket_hash, csrf_hash, user_id, client_id, redirect_uri, scope, state,
                                            code_challenge, resource, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now() + interval '10 minutes')",
    )
    .bind(hash(&ticket))
    .bind(hash(csrf))
    .bind(user_id)
    .bind(&req.client.id)
    .bind(&req.redirect_uri)
    .bind(&req.scope)
    .bind(&req.state)
    .bind(&req.code_challenge)
    .bind(&req.resource)
    .execute(&state.services.db)
    .await;
    if let Err(e) = stored {
        tracing::error!(%e, "storing a consent ticket");
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Haven failed; try again.",
        );
    }
    let host = Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let _ = &req.client.redirect_uris;
    consent_page(&req.client.name, &email, &host, &req.scope, &ticket, csrf)
}

async fn consent(state: &AppState, p: &HashMap<String, String>, csrf: &str) -> Response {
    let ticket = p.get("ticket").cloned().unwrap_or_default();
    type Ticket = (Uuid, String, String, String, Option<String>, String, String);
    let row: Result<Option<Ticket>, sqlx::Error> = sqlx::query_as(
        "UPDATE oauth.consent_tickets t SET used_at = now()
         FROM oauth.clients c
         WHERE t.ticket_hash = $1 AND t.csrf_hash = $2 AND t.used_at IS NULL AND t.expires_at > now()
           AND c.id = t.client_id AND c.disabled_at IS NULL
         RETURNING t.user_id, t.client_id, t.redirect_uri, t.scope, t.state, t.code_challenge, t.resource",
    )
    .bind(hash(&ticket))
    .bind(hash(csrf))
    .fetch_optional(&state.services.db)
    .await;
    let (user_id, client_id, redirect_uri, scope, st, challenge, resource) =
        match row {
            Ok(Some(t)) => t,
            Ok(None) => return error_page(
                StatusCode::FORBIDDEN,
                "This consent form has expired or was already answered; start again from your app.",
            ),
            Err(e) => {
                tracing::error!(%e, "reading a consent ticket");
                return error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Haven failed; try again.",
                );
            }
        };
    let issuer = state.config.issuer();
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    let decision = p.get("decision").map(String::as_str);
    // "Allow read-only" narrows what the app asked for (RFC 6749 §3.3: the server may grant less).
    let scope = match decision {
        Some("allow_read") => super::SCOPE_READ.to_string(),
        _ => scope,
    };
    if !matches!(decision, Some("allow") | Some("allow_read")) {
        pairs.push(("error", "access_denied"));
        pairs.push(("error_description", "the user denied access"));
        if let Some(s) = &st {
            pairs.push(("state", s));
        }
        return redirect(
            StatusCode::SEE_OTHER,
            &back_to(&issuer, &redirect_uri, &pairs),
        );
    }
    let code = random_token();
    let stored = sqlx::query(
        "INSERT INTO oauth.codes (code_hash, client_id, user_id, redirect_uri, scope, code_challenge, resource, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))",
    )
    .bind(hash(&code))
    .bind(&client_id)
    .bind(user_id)
    .bind(&redirect_uri)
    .bind(&scope)
    .bind(&challenge)
    .bind(&resource)
    .bind(CODE_TTL_SECS as f64)
    .execute(&state.services.db)
    .await;
    if let Err(e) = stored {
        tracing::error!(%e, "storing an authorization code");
        return error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Haven failed; try again.",
        );
    }
    pairs.push(("code", &code));
    if let Some(s) = &st {
        pairs.push(("state", s));
    }
    redirect(
        StatusCode::SEE_OTHER,
        &back_to(&issuer, &redirect_uri, &pairs),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_match_exactly_or_loopback_with_any_port() {
        let reg = vec![
            "https://claude.ai/api/mcp/auth_callback".to_string(),
            "http://127.0.0.1:3000/cb".to_string(),
        ];
        assert!(redirect_registered(
            &reg,
            "https://claude.ai/api/mcp/auth_callback"
        ));
        assert!(redirect_registered(&reg, "http://127.0.0.1:49152/cb"));
        assert!(!redirect_registered(&reg, "http://127.0.0.1:49152/other"));
        assert!(!redirect_registered(
            &reg,
            "https://claude.ai/api/mcp/auth_callback/"
        ));
        assert!(!redirect_registered(
            &reg,
            "https://claude.ai.evil.example/api/mcp/auth_callback"
        ));
        assert!(!redirect_registered(
            &reg,
            "https://claude.ai/api/mcp/auth_callback?x=1"
        ));
    }

    #[test]
    fn pkce_values_have_the_rfc_shape() {
        assert!(pkce_shaped(&"a".repeat(43)));
        assert!(!pkce_shaped(&"a".repeat(42)));
        assert!(!pkce_shaped(&format!("{}=", "a".repeat(43))));
    }
}
