//! The HTTP surface: REST routes and MCP endpoints derived from the registry, plus health,
//! OpenAPI and the auth middleware that resolves every request's caller from its own token.

pub mod agents;
pub mod auth;
pub mod connections;
pub mod csrf;
pub mod envelope;
pub mod events;
pub mod guard;
pub mod headers;
pub mod health;
pub mod jsonrpc_guard;
pub mod legacy_sse;
pub mod live;
pub mod mcp;
pub mod nul;
pub mod oauth;
pub mod openapi;
pub mod openapi_routes;
pub mod request_log;
pub mod rest;
pub mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use axum::Router;
use haven_tools::ToolError;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::DefaultOnFailure;
use tracing::Level;

use crate::app::AppState;
pub use connections::ConnectionLimits;

/// Builds the whole router. `shutdown` ends long-lived MCP streams when the server stops.
pub fn router(state: Arc<AppState>, shutdown: CancellationToken) -> Router {
    let limit = state.config.max_body_bytes;
    // Every replica drains the notification outbox (claims are SKIP LOCKED leases).
    crate::notifications::spawn_worker(
        state.services.db.clone(),
        state.notification_providers.clone(),
        &state.config.notify,
        shutdown.clone(),
    );
    Router::new()
        .merge(rest::routes(&state))
        .merge(
            // Malformed JSON-RPC on POST /mcp: 400 with a JSON-RPC error, before the transport.
            mcp::routes(&state, shutdown.clone()).route_layer(axum::middleware::from_fn(
                move |req, next| jsonrpc_guard::guard(limit, req, next),
            )),
        )
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
        .layer(axum::middleware::from_fn(nul::refuse_nul_in_url))
        .layer(DefaultBodyLimit::max(limit))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            time_limit,
        ))
        // A 5xx is logged where it arises (a 500 with its cause, a 503 once per burst), so the
        // trace layer does not log a second line for each.
        .layer(request_log::layer().on_failure(DefaultOnFailure::new().level(Level::DEBUG)))
        .layer(axum::middleware::from_fn(headers::security_headers))
        .with_state(state)
}

/// Answers 503 when a request (reading its body, authenticating, running its handler) takes longer
/// than `HAVEN_REQUEST_TIMEOUT_SECS` (at least `HAVEN_AGENT_RUN_WAIT_MS` plus 5 s, so `runAgent`
/// answers `running` first); the dropped handler's transaction rolls back. Only the time until the
/// answer starts counts, so SSE streams (`/mcp/sse`, any `text/event-stream` answer) run on with
/// their keep-alive pings. The agent run routes are exempt: a run has its own deadline guardrail
/// and must close its execution row itself.
async fn time_limit(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    if runs_an_agent(req.uri().path()) {
        return next.run(req).await;
    }
    let limit = Duration::from_secs(state.config.request_timeout_secs.max(1))
        .max(Duration::from_millis(state.config.agent_run_wait_ms) + Duration::from_secs(5));
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(answer) => answer,
        Err(_) => envelope::error_response(&ToolError::unavailable(
            format!(
                "the request took longer than {} s and was stopped; nothing was changed",
                limit.as_secs()
            ),
            1,
        )),
    }
}

/// The agent hub's run and stream routes (`…/agents/{name}/run`, `…/dynamic-agents/stream`, …).
fn runs_an_agent(path: &str) -> bool {
    path.starts_with("/agenthub-api/v1/")
        && (path.contains("/agents/") || path.contains("/dynamic-agents/"))
        && (path.ends_with("/run") || path.ends_with("/stream"))
}

/// Serves `router` on `listener` with the default connection limits until `shutdown` is
/// cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    serve_with(listener, router, ConnectionLimits::default(), shutdown).await
}

/// Serves `router` on `listener` under `limits` (timeouts, connection cap) until `shutdown` is
/// cancelled.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    connections::serve(listener, router, limits, shutdown).await
}

#[cfg(test)]
mod tests {
    use super::runs_an_agent;

    #[test]
    fn only_agent_runs_skip_the_request_timeout() {
        assert!(runs_an_agent(
            "/agenthub-api/v1/agents/guest-booking-assistant/run"
        ));
        assert!(runs_an_agent("/agenthub-api/v1/dynamic-agents/stream"));
        assert!(!runs_an_agent("/agenthub-api/v1/agents"));
        assert!(!runs_an_agent("/propertycatalog-api/v1/listings"));
    }
}
