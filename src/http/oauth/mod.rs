//! Haven as its own OAuth 2.1 authorization server for remote MCP connectors (claude.ai and
//! Claude Desktop custom connectors, the MCP Inspector): discovery (RFC 9728, RFC 8414), dynamic
//! registration of public clients (RFC 7591), the authorization code flow with PKCE S256 behind
//! server-rendered sign-in and consent pages, the token endpoint (codes and rotated refresh
//! tokens) and revocation (RFC 7009).
//!
//! Access tokens are Haven's RS256 JWTs bound to an `auth.sessions` row, with `aud` = the MCP
//! endpoint's URL (RFC 8707), so they work on `/mcp` only, and revoking the grant ends them at once.

pub mod authorize;
pub mod client_metadata;
pub mod metadata;
pub mod pages;
pub mod register;
pub mod token;

use std::sync::Arc;

use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde_json::json;
use sha2::{Digest, Sha256};
use tower_http::cors::{Any, CorsLayer};

use crate::app::AppState;
use crate::config::Config;

/// Read-only access: the MCP connection is read-only.
pub const SCOPE_READ: &str = "haven:read";
/// Acting as the user with everything the user's role allows (never more).
pub const SCOPE_FULL: &str = "haven:full";
/// Every scope, in the order shown to users.
pub const SCOPES: [&str; 2] = [SCOPE_READ, SCOPE_FULL];
/// Authorization codes live this long (seconds).
pub const CODE_TTL_SECS: i64 = 120;
/// A grant (and its refresh tokens) lives this long without being refreshed (days).
pub const REFRESH_TTL_DAYS: i64 = 30;

/// Whether a granted scope string includes `haven:full`.
pub fn scope_has_full(scope: &str) -> bool {
    scope.split_whitespace().any(|s| s == SCOPE_FULL)
}

/// The scope to grant for a requested `scope` parameter: the known scopes named, in canonical
/// order; every scope when none is requested. An unknown scope is an error naming it.
pub fn grant_scope(requested: Option<&str>) -> Result<String, String> {
    let requested = requested.map(str::trim).filter(|s| !s.is_empty());
    let Some(requested) = requested else {
        return Ok(SCOPES.join(" "));
    };
    for s in requested.split_whitespace() {
        if !SCOPES.contains(&s) {
            return Err(format!(
                "unknown scope `{}`; the scopes are: {}",
                s.chars().take(60).collect::<String>(),
                SCOPES.join(", ")
            ));
        }
    }
    Ok(SCOPES
        .iter()
        .filter(|s| requested.split_whitespace().any(|r| r == **s))
        .copied()
        .collect::<Vec<_>>()
        .join(" "))
}

/// Whether a `resource` parameter (RFC 8707) names this server's MCP endpoint (a trailing
/// slash is tolerated).
pub fn resource_matches(config: &Config, requested: &str) -> bool {
    requested.trim_end_matches('/') == config.mcp_resource()
}

/// 32 random bytes, base64url: codes, refresh tokens, tickets and CSRF values.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Hex SHA-256: how codes, refresh tokens and tickets are stored (they are high-entropy).
pub fn hash(value: &str) -> String {
    Sha256::digest(value.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// An OAuth error answer (RFC 6749 §5.2): JSON `error` and `error_description`, never cached.
pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let mut resp = (
        status,
        axum::Json(json!({ "error": error, "error_description": description })),
    )
        .into_response();
    no_store(&mut resp);
    resp
}

/// Marks a response as not cacheable (token answers and pages carrying secrets).
pub fn no_store(resp: &mut Response) {
    let headers = resp.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// Parses an `application/x-www-form-urlencoded` body; a parameter sent twice is an error
/// naming it (RFC 6749 §3.1, §3.2).
pub fn parse_form(body: &[u8]) -> Result<std::collections::HashMap<String, String>, String> {
    let mut out = std::collections::HashMap::new();
    for (k, v) in form_urlencoded::parse(body) {
        if out.insert(k.to_string(), v.into_owned()).is_some() {
            return Err(format!("the parameter `{k}` was sent more than once"));
        }
    }
    Ok(out)
}

/// The discovery, registration, authorization, token and revocation routes. The endpoints a
/// browser-based client calls directly (metadata, registration, token, revocation) allow CORS.
pub fn routes() -> Router<Arc<AppState>> {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers(Any);
    let api = Router::new()
        .route(
            "/.well-known/oauth-protected-resource",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-protected-resource/mcp",
            get(metadata::protected_resource),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::authorization_server),
        )
        .route(
            "/.well-known/openid-configuration",
            get(metadata::authorization_server),
        )
        .route("/oauth/register", post(register::register))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
        .layer(cors);
    Router::new()
        .route(
            "/oauth/authorize",
            get(authorize::show).post(authorize::submit),
        )
        .merge(api)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_are_canonical_and_unknown_ones_named() {
        assert_eq!(grant_scope(None).unwrap(), "haven:read haven:full");
        assert_eq!(grant_scope(Some("  ")).unwrap(), "haven:read haven:full");
        assert_eq!(
            grant_scope(Some("haven:full haven:read")).unwrap(),
            "haven:read haven:full"
        );
        assert_eq!(grant_scope(Some("haven:read")).unwrap(), "haven:read");
        assert!(grant_scope(Some("haven:read admin"))
            .unwrap_err()
            .contains("`admin`"));
        assert!(!scope_has_full("haven:read"));
        assert!(scope_has_full("haven:read haven:full"));
    }

    #[test]
    fn duplicate_form_parameters_are_refused() {
        assert!(parse_form(b"a=1&b=2").is_ok());
        assert!(parse_form(b"code=1&code=2").unwrap_err().contains("`code`"));
    }
}
