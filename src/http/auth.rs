//! Resolves the caller of every request from its own token, in the spec's order: query
//! `access_token`, `Authorization: Bearer`, header `haven-access-token`, cookie
//! `haven-access-token`. No token means anonymous; a bad token is a 401 at once.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::header::{AUTHORIZATION, COOKIE, WWW_AUTHENTICATE};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use haven_tools::{Principal, ToolError};

use super::envelope::error_response;
use crate::app::AppState;

/// The token header and cookie name.
pub const TOKEN_NAME: &str = "haven-access-token";

/// Who is calling, stored in request extensions for REST handlers and MCP (via `Parts`).
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated principal, if any.
    pub principal: Option<Principal>,
    /// The client's address.
    pub ip: Option<String>,
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
    let principal = match find_token(&req) {
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
    req.extensions_mut().insert(Caller { principal, ip });
    next.run(req).await
}

fn unauthorized(err: ToolError) -> Response {
    let mut resp = error_response(&err).into_response();
    resp.headers_mut().insert(
        WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"haven\""),
    );
    resp
}

/// The first token found in the spec's locations.
pub fn find_token(req: &Request) -> Option<String> {
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
    from_query
        .or_else(from_bearer)
        .or_else(from_header)
        .or_else(from_cookie)
        .filter(|t| !t.is_empty())
}
