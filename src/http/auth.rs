//! Resolves the caller of every request from its own token, in the spec's order: query
//! `access_token`, `Authorization: Bearer`, header `haven-access-token`, cookie
//! `haven-access-token`. No token means anonymous; a bad token is a 401 at once.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{ACCEPT_LANGUAGE, AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use haven_tools::{Principal, ToolError};

use super::csrf;
use super::envelope::error_response;
use crate::app::AppState;

/// The token header and cookie name.
pub const TOKEN_NAME: &str = "haven-access-token";

/// Who is calling, stored in request extensions for REST handlers and MCP (via `Parts`).
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The authenticated principal, if any.
    pub principal: Option<Principal>,
    /// The client's address.
    pub ip: Option<String>,
    /// Preferred languages from `Accept-Language`, best first.
    pub languages: Vec<String>,
    /// Where the credential came from (`None`: anonymous), for the CSRF rules of [`super::csrf`].
    pub credential: Option<TokenSource>,
}

/// Where a request's credential was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    /// The `access_token` query parameter.
    Query,
    /// `Authorization: Bearer`.
    Bearer,
    /// The `haven-access-token` header.
    Header,
    /// The `haven-access-token` cookie: the one a browser sends by itself, so CSRF rules apply.
    Cookie,
}

/// The middleware.
pub async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: Next,
) -> Response {
    let ip = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let credential = find_credential(&req);
    let source = credential.as_ref().map(|(_, source)| *source);
    if source == Some(TokenSource::Cookie) && csrf::is_unsafe(req.method()) {
        if let Err(err) = csrf::check_cookie_mutation(req.headers(), &state.config) {
            return error_response(&err).into_response();
        }
    }
    let principal = match credential.map(|(token, _)| token) {
        None => None,
        Some(token) => match state
            .services
            .tokens
            .authenticate(&state.services.db, &token)
            .await
        {
            Ok(p) => Some(p),
            Err(err) => return unauthorized(err),
        },
    };
    let path = req.uri().path();
    if principal.is_none() && state.config.mcp_require_auth && path.starts_with("/mcp") {
        return unauthorized(ToolError::unauthenticated(
            "this MCP server requires an access token or API key",
        ));
    }
    let languages = req
        .headers()
        .get(ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .map(accepted_languages)
        .unwrap_or_default();
    req.extensions_mut().insert(Caller {
        principal,
        ip,
        languages,
        credential: source,
    });
    next.run(req).await
}

/// Parses `Accept-Language` (`de-CH, de;q=0.9, en;q=0.5`) into tags ordered by quality, best
/// first, lower-cased; `*` and malformed entries are dropped.
pub fn accepted_languages(header: &str) -> Vec<String> {
    let mut tags: Vec<(u16, usize, String)> = header
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.trim().to_ascii_lowercase();
            let valid = !tag.is_empty()
                && tag.len() <= 35
                && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !valid {
                return None;
            }
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then(|| ((q.clamp(0.0, 1.0) * 1000.0) as u16, i, tag))
        })
        .collect();
    tags.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    tags.into_iter().take(8).map(|(_, _, t)| t).collect()
}

/// The refusal of a request whose token did not check out: a 401 with `WWW-Authenticate`, or the
/// 503 of a database that could not be asked.
fn unauthorized(err: ToolError) -> Response {
    let mut resp = error_response(&err).into_response();
    if err.kind == haven_tools::ErrorKind::Unauthenticated {
        resp.headers_mut().insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"haven\""),
        );
    }
    resp
}

/// The first token found in the spec's locations.
pub fn find_token(req: &Request) -> Option<String> {
    find_credential(req).map(|(token, _)| token)
}

/// The first token found in the spec's locations, with where it was found.
pub fn find_credential(req: &Request) -> Option<(String, TokenSource)> {
    let from_query = req.uri().query().and_then(|q| {
        form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    });
    let headers = req.headers();
    let from_bearer = || {
        headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(|v| v.trim().to_string())
    };
    let from_header = || {
        headers
            .get(TOKEN_NAME)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
    };
    let from_cookie = || {
        headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|c| {
                let (name, value) = c.trim().split_once('=')?;
                (name == TOKEN_NAME).then(|| value.to_string())
            })
    };
    let found = [
        (from_query, TokenSource::Query),
        (from_bearer(), TokenSource::Bearer),
        (from_header(), TokenSource::Header),
        (from_cookie(), TokenSource::Cookie),
    ];
    found
        .into_iter()
        .find_map(|(token, source)| token.map(|t| (t, source)))
        .filter(|(t, _)| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::accepted_languages;

    #[test]
    fn accept_language_is_ordered_by_quality() {
        assert_eq!(
            accepted_languages("en;q=0.5, de-CH, de;q=0.9, *;q=0.1"),
            vec!["de-ch", "de", "en"]
        );
        assert!(accepted_languages("").is_empty());
        assert_eq!(accepted_languages("fr;q=0, it"), vec!["it"]);
    }
}
