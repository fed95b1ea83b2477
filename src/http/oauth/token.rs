//! The token endpoint (authorization_code with PKCE S256, refresh_token rotated with reuse
//! detection) and the revocation endpoint (RFC 7009).
//!
//! Each authorization becomes a grant: an `auth.sessions` row (so the existing token check
//! revokes it) plus `oauth.grants`. A replayed code or a reused refresh token revokes the grant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header::AUTHORIZATION, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use haven_tools::auth::tokens::{Grant, OAuthAudience};
use haven_tools::principal::Credential;
use haven_tools::Role;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use super::authorize::pkce_shaped;
use super::register::server_error;
use super::{hash, oauth_error, parse_form, random_token, resource_matches, REFRESH_TTL_DAYS};
use crate::app::AppState;

/// The request's parameters, with a client id from HTTP Basic added when the body has none.
fn params(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>, String> {
    let mut p = parse_form(body)?;
    let basic = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|v| STANDARD.decode(v.trim()).ok())
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.split_once(':').map(|(id, _)| id.to_string()));
    if let Some(id) = basic {
        let id = form_urlencoded::parse(id.as_bytes())
            .map(|(k, v)| format!("{k}{v}"))
            .collect::<String>();
        p.entry("client_id".into()).or_insert(id);
    }
    Ok(p)
}

fn invalid_grant(why: &str) -> Response {
    oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why)
}

/// Revokes a grant: its session (every access token at once) and its refresh tokens.
async fn revoke_grant(db: &mut PgConnection, session_id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE auth.sessions SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL")
        .bind(session_id)
        .execute(&mut *db)
        .await?;
    sqlx::query(
        "UPDATE oauth.refresh_tokens SET used_at = coalesce(used_at, now()) WHERE session_id = $1",
    )
    .bind(session_id)
    .execute(&mut *db)
    .await?;
    Ok(())
}

/// Mints an access token and a fresh refresh token for a grant, inside `tx`.
async fn issue(
    state: &AppState,
    tx: &mut Transaction<'_, Postgres>,
    session_id: Uuid,
    user_id: Uuid,
    client_id: &str,
    scope: &str,
    resource: &str,
) -> Result<Response, Response> {
    let role: Option<String> =
        sqlx::query_scalar("SELECT role_id FROM auth.users WHERE id = $1 AND is_active")
            .bind(user_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(server_error)?;
    let Some(role) = role else {
        return Err(invalid_grant("the account is no longer active"));
    };
    let grant = Grant {
        audience: resource.to_string(),
        scope: Some(scope.to_string()),
        client_id: Some(client_id.to_string()),
        issuer: Some(state.config.issuer()),
    };
    let ttl = Duration::from_secs(state.config.oauth_token_ttl_minutes * 60);
    let (access, _) = state
        .services
        .tokens
        .sign_grant(
            user_id,
            session_id,
            Role::parse(&role).unwrap_or(Role::User),
            &grant,
            ttl,
        )
        .map_err(server_error)?;
    let refresh = random_token();
    sqlx::query(
        "INSERT INTO oauth.refresh_tokens (token_hash, session_id, expires_at)
         VALUES ($1, $2, now() + make_interval(days => $3))",
    )
    .bind(hash(&refresh))
    .bind(session_id)
    .bind(REFRESH_TTL_DAYS as i32)
    .execute(&mut **tx)
    .await
    .map_err(server_error)?;
    sqlx::query(
        "UPDATE auth.sessions SET expires_at = now() + make_interval(days => $2) WHERE id = $1",
    )
    .bind(session_id)
    .bind(REFRESH_TTL_DAYS as i32)
    .execute(&mut **tx)
    .await
    .map_err(server_error)?;
    let mut resp = Json(json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": ttl.as_secs(),
        "refresh_token": refresh,
        "scope": scope,
    }))
    .into_response();
    super::no_store(&mut resp);
    Ok(resp)
}

/// `POST /oauth/token`.
pub async fn token(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&headers, &body) {
        Ok(p) => p,
        Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &why),
    };
    let get = |k: &str| p.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let Some(client_id) = get("client_id") else {
        return oauth_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client_id is required (public clients send it in the body)",
        );
    };
    let known: Result<Option<String>, sqlx::Error> =
        sqlx::query_scalar("SELECT id FROM oauth.clients WHERE id = $1 AND disabled_at IS NULL")
            .bind(client_id)
            .fetch_optional(&state.services.db)
            .await;
    match known {
        Ok(Some(_)) => {}
        Ok(None) => {
            return oauth_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                "the client is unknown or disabled",
            )
        }
        Err(e) => return server_error(e),
    }
    if let Some(r) = get("resource") {
        if !resource_matches(&state.config, r) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "resource names a server other than this Haven's MCP endpoint",
            );
        }
    }
    let result = match get("grant_type") {
        Some("authorization_code") => by_code(&state, client_id, &p).await,
        Some("refresh_token") => by_refresh(&state, client_id, &p).await,
        Some(_) => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )),
        None => Err(oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "grant_type is required",
        )),
    };
    result.unwrap_or_else(|resp| resp)
}

type CodeRow = (
    String,
    Uuid,
    String,
    String,
    String,
    String,
    bool,
    bool,
    Option<Uuid>,
);

/// The non-empty form parameter `key`, or the `invalid_request` answer saying `missing`.
// The error is the HTTP answer itself, as in the grant handlers that use it.
#[allow(clippy::result_large_err)]
fn required<'a>(
    p: &'a HashMap<String, String>,
    key: &str,
    missing: &str,
) -> Result<&'a str, Response> {
    p.get(key)
        .map(String::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| oauth_error(StatusCode::BAD_REQUEST, "invalid_request", missing))
}

async fn by_code(
    state: &AppState,
    client_id: &str,
    p: &HashMap<String, String>,
) -> Result<Response, Response> {
    let get = |k: &str| p.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let code = required(p, "code", "code is required")?;
    let verifier = required(p, "code_verifier", "code_verifier is required (PKCE)")?;
    let mut tx = state.services.db.begin().await.map_err(server_error)?;
    let row: Option<CodeRow> = sqlx::query_as(
        "SELECT client_id, user_id, redirect_uri, scope, code_challenge, resource,
                used_at IS NOT NULL, expires_at <= now(), session_id
         FROM oauth.codes WHERE code_hash = $1 FOR UPDATE",
    )
    .bind(hash(code))
    .fetch_optional(&mut *tx)
    .await
    .map_err(server_error)?;
    let Some((owner, user_id, redirect_uri, scope, challenge, resource, used, expired, issued)) =
        row
    else {
        return Err(invalid_grant("the authorization code is unknown"));
    };
    if used {
        if let Some(session_id) = issued {
            revoke_grant(&mut tx, session_id)
                .await
                .map_err(server_error)?;
        }
        tx.commit().await.map_err(server_error)?;
        return Err(invalid_grant(
            "the authorization code was already used; the tokens issued for it are revoked",
        ));
    }
    if expired {
        return Err(invalid_grant(
            "the authorization code has expired; sign in again",
        ));
    }
    if owner != client_id {
        return Err(invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if let Some(uri) = get("redirect_uri") {
        if uri != redirect_uri {
            return Err(invalid_grant(
                "redirect_uri differs from the one in the authorization request",
            ));
        }
    }
    if let Some(r) = get("resource") {
        if r.trim_end_matches('/') != resource {
            return Err(oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_target",
                "resource differs from the one authorized",
            ));
        }
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !pkce_shaped(verifier) || computed != challenge {
        return Err(invalid_grant(
            "code_verifier does not match the code_challenge (PKCE S256)",
        ));
    }
    let session_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO auth.sessions (id, user_id, expires_at) VALUES ($1, $2, now() + make_interval(days => $3))",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(REFRESH_TTL_DAYS as i32)
    .execute(&mut *tx)
    .await
    .map_err(server_error)?;
    sqlx::query(
        "INSERT INTO oauth.grants (session_id, client_id, user_id, scope, resource) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(session_id)
    .bind(client_id)
    .bind(user_id)
    .bind(&scope)
    .bind(&resource)
    .execute(&mut *tx)
    .await
    .map_err(server_error)?;
    sqlx::query("UPDATE oauth.codes SET used_at = now(), session_id = $2 WHERE code_hash = $1")
        .bind(hash(code))
        .bind(session_id)
        .execute(&mut *tx)
        .await
        .map_err(server_error)?;
    let resp = issue(
        state, &mut tx, session_id, user_id, client_id, &scope, &resource,
    )
    .await?;
    tx.commit().await.map_err(server_error)?;
    Ok(resp)
}

type RefreshRow = (Uuid, bool, bool, String, Uuid, String, String, bool);

async fn by_refresh(
    state: &AppState,
    client_id: &str,
    p: &HashMap<String, String>,
) -> Result<Response, Response> {
    let get = |k: &str| p.get(k).map(String::as_str).filter(|s| !s.is_empty());
    let presented = required(p, "refresh_token", "refresh_token is required")?;
    let mut tx = state.services.db.begin().await.map_err(server_error)?;
    let row: Option<RefreshRow> = sqlx::query_as(
        "SELECT r.session_id, r.used_at IS NOT NULL, r.expires_at <= now(), g.client_id, g.user_id,
                g.scope, g.resource, s.revoked_at IS NOT NULL
         FROM oauth.refresh_tokens r
         JOIN oauth.grants g ON g.session_id = r.session_id
         JOIN auth.sessions s ON s.id = r.session_id
         WHERE r.token_hash = $1 FOR UPDATE OF r",
    )
    .bind(hash(presented))
    .fetch_optional(&mut *tx)
    .await
    .map_err(server_error)?;
    let Some((session_id, used, expired, owner, user_id, scope, resource, revoked)) = row else {
        return Err(invalid_grant("the refresh token is unknown"));
    };
    if owner != client_id {
        return Err(invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if used && !revoked {
        // A rotated-out token came back: someone holds a copy. End the whole grant.
        revoke_grant(&mut tx, session_id)
            .await
            .map_err(server_error)?;
        tx.commit().await.map_err(server_error)?;
        return Err(invalid_grant(
            "the refresh token was already used; this authorization is revoked, sign in again",
        ));
    }
    if used || revoked || expired {
        return Err(invalid_grant(
            "the refresh token is revoked or expired; sign in again",
        ));
    }
    let scope = match get("scope") {
        None => scope,
        Some(asked) => {
            let granted: Vec<&str> = scope.split_whitespace().collect();
            if asked.split_whitespace().any(|s| !granted.contains(&s)) {
                return Err(oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    "scope asks for more than the user granted",
                ));
            }
            super::grant_scope(Some(asked))
                .map_err(|e| oauth_error(StatusCode::BAD_REQUEST, "invalid_scope", &e))?
        }
    };
    sqlx::query("UPDATE oauth.refresh_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(hash(presented))
        .execute(&mut *tx)
        .await
        .map_err(server_error)?;
    let resp = issue(
        state, &mut tx, session_id, user_id, client_id, &scope, &resource,
    )
    .await?;
    tx.commit().await.map_err(server_error)?;
    Ok(resp)
}

/// `POST /oauth/revoke`: revokes the grant a refresh token or access token belongs to. Answers
/// 200 for unknown tokens too (RFC 7009 §2.2); a token of another client is left alone.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match params(&headers, &body) {
        Ok(p) => p,
        Err(why) => return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", &why),
    };
    let Some(token) = p.get("token").filter(|t| !t.is_empty()) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token is required",
        );
    };
    let client_id = p.get("client_id").cloned().unwrap_or_default();
    let by_refresh: Result<Option<Uuid>, sqlx::Error> = sqlx::query_scalar(
        "SELECT r.session_id FROM oauth.refresh_tokens r JOIN oauth.grants g ON g.session_id = r.session_id
         WHERE r.token_hash = $1 AND g.client_id = $2",
    )
    .bind(hash(token))
    .bind(&client_id)
    .fetch_optional(&state.services.db)
    .await;
    let session = match by_refresh {
        Ok(Some(s)) => Some(s),
        Ok(None) => {
            let (resource, issuer) = (state.config.mcp_resource(), state.config.issuer());
            let oauth = OAuthAudience {
                resource: &resource,
                issuer: &issuer,
            };
            match state
                .services
                .tokens
                .authenticate_for(&state.services.db, token, Some(oauth))
                .await
            {
                Ok((principal, grant)) if grant.client_id.as_deref() == Some(&client_id) => {
                    match principal.credential {
                        Credential::Session(s) | Credential::SecondFactorPending(s) => Some(s),
                        Credential::ApiKey(_) => None,
                    }
                }
                _ => None,
            }
        }
        Err(e) => return server_error(e),
    };
    if let Some(session_id) = session {
        let done = async {
            let mut conn = state.services.db.acquire().await?;
            revoke_grant(&mut conn, session_id).await
        }
        .await;
        if let Err(e) = done {
            return server_error(e);
        }
    }
    let mut resp = StatusCode::OK.into_response();
    super::no_store(&mut resp);
    resp
}
