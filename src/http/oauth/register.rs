//! Dynamic client registration (RFC 7591) for public clients: redirect URIs validated (https,
//! loopback http per RFC 8252, or a private-use scheme), metadata size-bounded, registrations
//! per address rate-limited, the client stored in `oauth.clients`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{json, Value};
use url::Url;

use super::{grant_scope, oauth_error};
use crate::app::AppState;
use crate::http::auth::Caller;

/// Largest accepted registration document.
pub const MAX_METADATA_BYTES: usize = 8 * 1024;
/// Most redirect URIs one client may register.
pub const MAX_REDIRECT_URIS: usize = 10;
/// Longest redirect URI.
pub const MAX_REDIRECT_URI_LEN: usize = 512;
/// Registrations accepted from one address per hour.
pub const MAX_REGISTRATIONS_PER_HOUR: i64 = 20;

/// Schemes never accepted as redirect targets (script execution, local files, plain transports).
const FORBIDDEN_SCHEMES: [&str; 9] = [
    "javascript",
    "data",
    "file",
    "vbscript",
    "blob",
    "about",
    "ftp",
    "ws",
    "wss",
];

/// Whether `host` is a loopback host (RFC 8252 §7.3, §8.3).
pub fn is_loopback(url: &Url) -> bool {
    matches!(
        url.host_str(),
        Some("127.0.0.1") | Some("[::1]") | Some("localhost")
    )
}

/// Checks one redirect URI, saying what is wrong in words.
pub fn check_redirect_uri(raw: &str) -> Result<(), String> {
    if raw.len() > MAX_REDIRECT_URI_LEN {
        return Err(format!("is longer than {MAX_REDIRECT_URI_LEN} characters"));
    }
    let url = Url::parse(raw).map_err(|_| "is not an absolute URL".to_string())?;
    if url.fragment().is_some() {
        return Err("must not contain a fragment (#…)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain a user name or password".into());
    }
    match url.scheme() {
        "https" if url.host_str().is_some() => Ok(()),
        "https" => Err("has no host".into()),
        "http" if is_loopback(&url) => Ok(()),
        "http" => Err(
            "uses http on a host that is not loopback; use https, or http://127.0.0.1:PORT / \
             http://localhost:PORT for a native app"
                .into(),
        ),
        scheme if FORBIDDEN_SCHEMES.contains(&scheme) => {
            Err(format!("uses the scheme `{scheme}`, which is not allowed"))
        }
        _ => Ok(()),
    }
}

/// `POST /oauth/register`.
pub async fn register(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> Response {
    let invalid =
        |desc: String| oauth_error(StatusCode::BAD_REQUEST, "invalid_client_metadata", &desc);
    if body.len() > MAX_METADATA_BYTES {
        return oauth_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_client_metadata",
            &format!("the registration document is larger than {MAX_METADATA_BYTES} bytes"),
        );
    }
    let Ok(Value::Object(meta)) = serde_json::from_slice::<Value>(&body) else {
        return invalid("the body must be a JSON object of client metadata".into());
    };
    let uris: Vec<String> = match meta.get("redirect_uris") {
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut uris = Vec::new();
            for item in items {
                match item.as_str() {
                    Some(s) => uris.push(s.to_string()),
                    None => return invalid("redirect_uris must be a list of URLs".into()),
                }
            }
            uris
        }
        _ => {
            return invalid("redirect_uris is required: a non-empty list of URLs".into());
        }
    };
    if uris.len() > MAX_REDIRECT_URIS {
        return invalid(format!(
            "redirect_uris has {} entries; at most {MAX_REDIRECT_URIS} are accepted",
            uris.len()
        ));
    }
    for (i, uri) in uris.iter().enumerate() {
        if let Err(why) = check_redirect_uri(uri) {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "invalid_redirect_uri",
                &format!("redirect_uris[{i}] {why}"),
            );
        }
    }
    let text = |field: &str, max: usize| -> Result<Option<String>, String> {
        match meta.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max => Ok(Some(s.trim().to_string())),
            Some(Value::String(_)) => Err(format!("{field} is longer than {max} characters")),
            Some(_) => Err(format!("{field} must be a string")),
        }
    };
    let client_name = match text("client_name", 200) {
        Ok(name) => name.filter(|n| !n.is_empty()),
        Err(e) => return invalid(e),
    };
    let scope = match text("scope", 200).and_then(|s| grant_scope(s.as_deref())) {
        Ok(s) => s,
        Err(e) => return invalid(format!("scope: {e}")),
    };
    let listed = |field: &str, allowed: &[&str]| -> Result<(), String> {
        match meta.get(field) {
            None | Some(Value::Null) => Ok(()),
            Some(Value::Array(items)) => {
                for item in items {
                    let v = item.as_str().unwrap_or_default();
                    if !allowed.contains(&v) {
                        return Err(format!(
                            "{field} may only contain {}; `{}` is not supported",
                            allowed.join(", "),
                            v.chars().take(40).collect::<String>()
                        ));
                    }
                }
                Ok(())
            }
            Some(_) => Err(format!("{field} must be a list")),
        }
    };
    if let Err(e) = listed("grant_types", &["authorization_code", "refresh_token"])
        .and_then(|_| listed("response_types", &["code"]))
    {
        return invalid(e);
    }
    let ip = caller.ip;
    let recent: i64 = match sqlx::query_scalar(
        "SELECT count(*) FROM oauth.clients WHERE created_ip = $1 AND created_at > now() - interval '1 hour'",
    )
    .bind(&ip)
    .fetch_one(&state.services.db)
    .await
    {
        Ok(n) => n,
        Err(err) => return server_error(err),
    };
    if recent >= MAX_REGISTRATIONS_PER_HOUR {
        return oauth_error(
            StatusCode::TOO_MANY_REQUESTS,
            "invalid_request",
            "too many client registrations from this address in the last hour; try again later",
        );
    }
    let client_id = format!("haven-{}", &super::random_token()[..22]);
    let name = client_name.unwrap_or_else(|| "Unnamed MCP client".into());
    let stored = Value::Object(meta.clone());
    let issued: Result<i64, sqlx::Error> = sqlx::query_scalar(
        "INSERT INTO oauth.clients (id, client_name, redirect_uris, scope, metadata, created_ip)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING extract(epoch FROM created_at)::bigint",
    )
    .bind(&client_id)
    .bind(&name)
    .bind(&uris)
    .bind(&scope)
    .bind(&stored)
    .bind(&ip)
    .fetch_one(&state.services.db)
    .await;
    let issued = match issued {
        Ok(t) => t,
        Err(err) => return server_error(err),
    };
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({
            "client_id": client_id,
            "client_id_issued_at": issued,
            "client_name": name,
            "redirect_uris": uris,
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",
            "scope": scope,
        })),
    )
        .into_response();
    super::no_store(&mut resp);
    resp
}

/// A database failure: logged, answered `server_error` without details.
pub fn server_error(err: impl std::fmt::Display) -> Response {
    tracing::error!(%err, "oauth endpoint failed");
    oauth_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "server_error",
        "the authorization server failed; try again",
    )
}

#[cfg(test)]
mod tests {
    use super::check_redirect_uri;

    #[test]
    fn redirect_uris_are_https_loopback_or_private_schemes() {
        assert!(check_redirect_uri("https://claude.ai/api/mcp/auth_callback").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:33418/callback").is_ok());
        assert!(check_redirect_uri("http://localhost:6274/oauth/callback").is_ok());
        assert!(check_redirect_uri("http://[::1]:8000/cb").is_ok());
        assert!(check_redirect_uri("cursor://anysphere.cursor-retrieval/oauth/callback").is_ok());
        assert!(check_redirect_uri("http://example.com/cb").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        assert!(check_redirect_uri("https://a.example/cb#frag").is_err());
        assert!(check_redirect_uri("https://user:pw@a.example/cb").is_err());
        assert!(check_redirect_uri("/relative").is_err());
    }
}
