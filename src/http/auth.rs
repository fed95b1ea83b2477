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
use haven_tools::auth::tokens::OAuthAudience;
use haven_tools::{Principal, ToolError};

use super::csrf;
use super::envelope::error_response;
use crate::app::AppState;
use crate::config::AnonymousMcp;

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
    /// The OAuth scopes of the access token (space-separated); `None` for login tokens and API
    /// keys, which act with the user's full role.
    pub scope: Option<String>,
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

impl Caller {
    /// Whether the caller's OAuth token only grants reading (`haven:read` without `haven:full`):
    /// its MCP connection is then read-only.
    pub fn read_only_scope(&self) -> bool {
        self.scope
            .as_deref()
            .is_some_and(|s| !crate::http::oauth::scope_has_full(s))
    }
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
    let path = req.uri().path();
    let on_mcp = path == "/mcp" || path.starts_with("/mcp/");
    // OAuth tokens are minted for the MCP endpoint (RFC 8707): accepted there, nowhere else.
    let (resource, issuer) = (state.config.mcp_resource(), state.config.issuer());
    let oauth = on_mcp.then_some(OAuthAudience {
        resource: &resource,
        issuer: &issuer,
    });
    let (principal, scope) = match credential.map(|(token, _)| token) {
        None => (None, None),
        Some(token) => match state
            .services
            .tokens
            .authenticate_for(&state.services.db, &token, oauth)
            .await
        {
            Ok((p, grant)) => (Some(p), grant.scope),
            Err(err) => return unauthorized(&state, on_mcp, err, true),
        },
    };
    if principal
        .as_ref()
        .is_some_and(haven_tools::Principal::owes_second_factor)
        && !reachable_before_second_factor(path)
    {
        return error_response(&ToolError::forbidden(
            "this session still needs its second factor: complete the email or mobile 2FA \
             verification (/auth-api/verification-services/…-2factor-verification/start, then \
             /complete) before calling anything else",
        ))
        .into_response();
    }
    if principal.is_none() && on_mcp && !anonymous_allowed(&state, &req) {
        return unauthorized(
            &state,
            on_mcp,
            ToolError::unauthenticated(
                "this MCP server requires a credential: sign in with OAuth, or send an access \
                 token or API key as `Authorization: Bearer …`; add `?anonymous=true` to use the \
                 public tools without one",
            ),
            false,
        );
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
        scope,
    });
    next.run(req).await
}

/// The paths a session that owes its second factor may reach: the 2FA routes and logout, and MCP,
/// where every operation but those refuses it itself (`Operation::before_second_factor`).
fn reachable_before_second_factor(path: &str) -> bool {
    path == "/auth-api/logout"
        || path == "/mcp"
        || path.starts_with("/mcp/")
        || (path.starts_with("/auth-api/verification-services/")
            && path.contains("-2factor-verification/"))
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

/// Whether a request without a credential to an MCP path is served anonymously:
/// `HAVEN_MCP_REQUIRE_AUTH` refuses it; otherwise `/mcp/message` (a legacy session already
/// opened) always is, and `/mcp`, `/mcp/sse` are when `HAVEN_MCP_ANONYMOUS=allow` or the request
/// asks with `?anonymous=true` or `X-MCP-Anonymous: true`.
fn anonymous_allowed(state: &AppState, req: &Request) -> bool {
    if state.config.mcp_require_auth {
        return false;
    }
    if req.uri().path() == "/mcp/message" || state.config.mcp_anonymous == AnonymousMcp::Allow {
        return true;
    }
    let yes = |v: &str| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes");
    let by_query = req.uri().query().is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, v)| k == "anonymous" && yes(&v))
    });
    let by_header = req
        .headers()
        .get(ANONYMOUS_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(yes);
    by_query || by_header
}

/// The header asking for anonymous MCP access (`X-MCP-Anonymous: true`).
pub const ANONYMOUS_HEADER: &str = "x-mcp-anonymous";

/// The refusal of a request whose token did not check out (or an MCP request without one): a
/// 401, or the 503 of a database that could not be asked. On MCP paths the challenge names the protected resource metadata (RFC 9728 §5.1) and
/// the scopes, so an MCP client starts the OAuth flow; a presented but bad token adds
/// `error="invalid_token"` (RFC 6750 §3.1).
fn unauthorized(state: &AppState, on_mcp: bool, err: ToolError, bad_token: bool) -> Response {
    let mut resp = error_response(&err).into_response();
    let challenge = if on_mcp {
        let mut c = format!(
            "Bearer resource_metadata=\"{}\", scope=\"{}\"",
            crate::http::oauth::metadata::resource_metadata_url(&state.config),
            crate::http::oauth::SCOPES.join(" ")
        );
        if bad_token {
            c.push_str(", error=\"invalid_token\"");
        }
        HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("Bearer"))
    } else {
        HeaderValue::from_static("Bearer realm=\"haven\"")
    };
    // A 503 (the database could not be asked) is not a challenge.
    if err.kind == haven_tools::ErrorKind::Unauthenticated {
        resp.headers_mut().insert(WWW_AUTHENTICATE, challenge);
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
    let from_cookie = || cookie(headers, TOKEN_NAME);
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

/// The value of the cookie `name` in the request's `Cookie` headers, if sent.
pub fn cookie(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (key, value) = c.trim().split_once('=')?;
            (key == name).then(|| value.to_string())
        })
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
