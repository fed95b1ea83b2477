//! Discovery documents: Protected Resource Metadata (RFC 9728) for the MCP endpoint and
//! Authorization Server Metadata (RFC 8414, also served at the OpenID discovery path that MCP
//! clients probe).

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::SCOPES;
use crate::app::AppState;
use crate::config::Config;

/// Where the MCP endpoint's protected resource metadata is (RFC 9728 §3.1: the well-known
/// prefix inserted before the resource's path).
pub fn resource_metadata_url(config: &Config) -> String {
    format!(
        "{}/.well-known/oauth-protected-resource/mcp",
        config.issuer()
    )
}

/// `GET /.well-known/oauth-protected-resource[/mcp]`.
pub async fn protected_resource(State(state): State<Arc<AppState>>) -> Json<Value> {
    let config = &state.config;
    Json(json!({
        "resource": config.mcp_resource(),
        "authorization_servers": [config.issuer()],
        "scopes_supported": SCOPES,
        "bearer_methods_supported": ["header"],
        "resource_name": "Haven",
        "resource_documentation": format!("{}/openapi.json", config.issuer()),
    }))
}

/// `GET /.well-known/oauth-authorization-server` and `/.well-known/openid-configuration`.
pub async fn authorization_server(State(state): State<Arc<AppState>>) -> Json<Value> {
    let issuer = state.config.issuer();
    Json(json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{issuer}/oauth/authorize"),
        "token_endpoint": format!("{issuer}/oauth/token"),
        "registration_endpoint": format!("{issuer}/oauth/register"),
        "revocation_endpoint": format!("{issuer}/oauth/revoke"),
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": true,
        "client_id_metadata_document_supported": state.config.oauth_client_metadata,
    }))
}
