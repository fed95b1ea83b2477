//! The HTTP surface: REST routes and MCP endpoints derived from the registry, plus health,
//! OpenAPI and the auth middleware that resolves every request's caller from its own token.

pub mod agents;
pub mod auth;
pub mod envelope;
pub mod events;
pub mod guard;
pub mod health;
pub mod legacy_sse;
pub mod live;
pub mod mcp;
pub mod oauth;
pub mod openapi;
pub mod rest;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;

/// Builds the whole router. `shutdown` ends long-lived MCP streams when the server stops.
pub fn router(state: Arc<AppState>, shutdown: CancellationToken) -> Router {
    let limit = state.config.max_body_bytes;
    Router::new()
        .merge(rest::routes(&state))
        .merge(mcp::routes(&state, shutdown.clone()))
        .merge(legacy_sse::routes(&state, shutdown.clone()))
        .merge(events::routes(&state, shutdown))
        .merge(live::routes(&state))
        .merge(openapi::routes())
        .merge(health::routes())
        .merge(webhooks::routes())
        .merge(agents::routes())
        .merge(oauth::routes())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::authenticate,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move { shutdown.cancelled().await })
    .await
}
