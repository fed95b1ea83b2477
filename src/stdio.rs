//! MCP over stdin/stdout for local clients (Claude Desktop's `command` config), acting as the
//! owner of `HAVEN_API_KEY`.

use std::sync::Arc;

use anyhow::Context;
use rmcp::ServiceExt;

use crate::app::AppState;
use crate::http::mcp::selection::Choices;
use crate::http::mcp::{HavenMcp, Selection};

/// The connection's selection from the `--toolsets`, `--readonly` and `--tools` flags (or
/// `HAVEN_MCP_TOOLSETS`, `HAVEN_MCP_READONLY`, `HAVEN_MCP_TOOLS`); a bad value stops startup with
/// the valid ones.
pub fn selection(
    toolsets: Option<&str>,
    readonly: Option<&str>,
    tools: Option<&str>,
) -> anyhow::Result<Selection> {
    let mut choices = Choices::default();
    let bad = |flag: &str, e: String| anyhow::anyhow!("haven stdio --{flag}: {e}");
    if let Some(v) = toolsets {
        choices.toolsets(v).map_err(|e| bad("toolsets", e))?;
    }
    if let Some(v) = readonly {
        choices.read_only(v).map_err(|e| bad("readonly", e))?;
    }
    if let Some(v) = tools {
        choices.listing(v).map_err(|e| bad("tools", e))?;
    }
    Ok(choices.finish())
}

/// Serves MCP on stdio, acting as the key's owner through `selection`, until the client
/// disconnects or the process is asked to end (SIGTERM, SIGINT), so the caller always leaves the
/// private cluster cleanly.
pub async fn serve(
    state: Arc<AppState>,
    api_key: &str,
    selection: Selection,
) -> anyhow::Result<()> {
    let principal = state
        .services
        .tokens
        .authenticate(&state.services.db, api_key)
        .await
        .map_err(|e| anyhow::anyhow!("HAVEN_API_KEY was refused: {e}"))?;
    tracing::info!(user = %principal.email, selection = %selection.describe(), "serving MCP on stdio");
    let running = HavenMcp::acting_as(state, principal, selection)
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
