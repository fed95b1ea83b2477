//! Scope step-up on `POST /mcp` (MCP authorization, "scope challenge handling"; RFC 6750 §3.1).
//!
//! An OAuth token holding only `haven:read` makes the connection read-only. When such a
//! connection calls a tool that changes data — one the user's role could call and the
//! connection's own filters admit, so the scope is the only thing missing — the request is
//! answered `403` with `WWW-Authenticate: Bearer error="insufficient_scope", scope="…"`
//! naming the scopes to ask for, so the client re-authorizes with them (the Python SDK's
//! `OAuthClientProvider` and the Inspector do) instead of showing the user a dead end.
//!
//! Everything else passes untouched: a read-only tool, a tool the role may not call (that stays
//! "not found"), a connection made read-only by its own `?readonly=true` (a choice, not a
//! missing grant: the tool error explains it), and every method other than `tools/call`. The
//! legacy SSE transport answers its POSTs `202` before the call runs, so there the read-only
//! tool error is the answer.

use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::selection::Selection;
use crate::app::AppState;
use crate::http::auth::Caller;
use crate::http::oauth::{metadata::resource_metadata_url, SCOPES, SCOPE_FULL};

/// The middleware (inside `bind_selection`, which has already put the [`Caller`] and the
/// connection's selection on the request).
pub async fn challenge_insufficient_scope(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let read_scoped = req
        .extensions()
        .get::<Caller>()
        .is_some_and(Caller::read_only_scope);
    if req.method() != Method::POST || !read_scoped {
        return next.run(req).await;
    }
    // The connection as its own query and headers make it, before the scope narrowed it.
    let Ok(own) = Selection::from_request(req.uri().query(), req.headers()) else {
        return next.run(req).await;
    };
    if own.read_only {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let Ok(bytes) = to_bytes(body, state.config.max_body_bytes).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            axum::Json(json!({
                "jsonrpc": "2.0", "id": null,
                "error": { "code": -32600, "message": format!(
                    "the request body is larger than {} bytes", state.config.max_body_bytes) }
            })),
        )
            .into_response();
    };
    let message: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let principal = parts
        .extensions
        .get::<Caller>()
        .and_then(|c| c.principal.as_ref());
    let needs_full = called_tool(&message)
        .and_then(|name| state.registry.get(name))
        .filter(|op| !op.annotations.read_only)
        .filter(|op| op.access.allows(principal) && own.admits(op));
    match needs_full {
        Some(op) => challenge(&state, &message, op.name),
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    }
}

/// The operation a JSON-RPC `tools/call` runs: its `name`, or for the `call_tool` meta-tool the
/// name in its arguments.
fn called_tool(message: &Value) -> Option<&str> {
    if message.get("method").and_then(Value::as_str) != Some("tools/call") {
        return None;
    }
    let params = message.get("params")?;
    let name = params.get("name").and_then(Value::as_str)?;
    if name == "call_tool" {
        params
            .get("arguments")
            .and_then(|a| a.get("name"))
            .and_then(Value::as_str)
    } else {
        Some(name)
    }
}

/// The 403: the challenge names every scope (what to request now) and the resource metadata; the
/// body is a JSON-RPC error for the request's id saying the same in words.
fn challenge(state: &AppState, message: &Value, tool: &str) -> Response {
    let description = format!("{tool} changes data, which needs the {SCOPE_FULL} scope");
    let header = format!(
        "Bearer error=\"insufficient_scope\", scope=\"{}\", resource_metadata=\"{}\", error_description=\"{description}\"",
        SCOPES.join(" "),
        resource_metadata_url(&state.config),
    );
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let mut resp = (
        StatusCode::FORBIDDEN,
        axum::Json(json!({
            "jsonrpc": "2.0",
            "id": id,
            "error": {
                "code": -32600,
                "message": format!(
                    "insufficient scope: {description}; this connection was authorized read-only \
                     — sign in again granting {SCOPE_FULL}"
                ),
            }
        })),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&header) {
        resp.headers_mut().insert(WWW_AUTHENTICATE, value);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::called_tool;
    use serde_json::json;

    #[test]
    fn the_called_tool_is_read_through_call_tool() {
        let direct = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "createApiKey", "arguments": {} } });
        assert_eq!(called_tool(&direct), Some("createApiKey"));
        let meta = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call",
            "params": { "name": "call_tool", "arguments": { "name": "deleteListing" } } });
        assert_eq!(called_tool(&meta), Some("deleteListing"));
        let list = json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/list" });
        assert_eq!(called_tool(&list), None);
    }
}
