//! MCP over stdin/stdout for local clients (Claude Desktop's `command` config), acting as the
//! owner of `HAVEN_API_KEY`.

use std::sync::Arc;

use anyhow::Context;
use rmcp::ServiceExt;

use crate::app::AppState;
use crate::http::mcp::HavenMcp;

/// Serves MCP on stdio until the client disconnects or the process is asked to end (SIGTERM,
/// SIGINT), so the caller always leaves the private cluster cleanly.
pub async fn serve(state: Arc<AppState>, api_key: &str) -> anyhow::Result<()> {
    let principal = state
        .services
        .tokens
        .authenticate(&state.services.db, api_key)
        .await
        .map_err(|e| anyhow::anyhow!("HAVEN_API_KEY was refused: {e}"))?;
    tracing::info!(user = %principal.email, "serving MCP on stdio");
    let running = HavenMcp::acting_as(state, principal)
        .serve(rmcp::transport::stdio())
        .await
        .context("starting the stdio MCP server")?;
    let stop = running.cancellation_token();
    let signalled = tokio::spawn(async move {
        crate::app::termination_signal().await;
        tracing::info!("signalled: ending the stdio session");
        stop.cancel();
    });
    running.waiting().await?;
    signalled.abort();
    Ok(())
}
