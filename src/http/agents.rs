//! `POST /agenthub-api/v1/agents/{agentName}/run` (JSON result) and `…/stream` (SSE): run an
//! agent as the calling user. These are routes of their own, not registry operations, because a
//! run is long-lived (it holds no request transaction) and the stream outlives its viewer.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use axum::{Extension, Router};
use futures::Stream;
use haven_agents::executions::Source;
use haven_agents::overrides::AgentConfig;
use haven_agents::run_agent::{design_run, enabled_agent};
use haven_agents::runner::{self, Hub, RunEvent, RunSpec};
use haven_tools::ToolError;
use serde::Deserialize;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tokio_stream::StreamExt;

use super::auth::Caller;
use super::envelope::error_response;
use crate::app::AppState;

/// The agent run routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/agenthub-api/v1/agents/{agentName}/run", post(run))
        .route("/agenthub-api/v1/agents/{agentName}/stream", post(stream))
}

/// The body of a run request.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The user's message to the agent.
    pub input: String,
}

/// The enabled agent `name` and the parsed body, or the error response. Runs need a login: they
/// spend provider tokens and are logged against their user.
async fn prepare(
    state: &AppState,
    caller: &Caller,
    name: &str,
    body: Result<Json<RunBody>, axum::extract::rejection::JsonRejection>,
) -> Result<(AgentConfig, String), Response> {
    if caller.principal.is_none() {
        return Err(error_response(&ToolError::unauthenticated(
            "running an agent needs a login: send an access token or API key",
        ))
        .into_response());
    }
    let Json(body) = body.map_err(|e| {
        error_response(&ToolError::bad_input(format!(
            "the body must be {{\"input\": \"…\"}}: {e}"
        )))
        .into_response()
    })?;
    match enabled_agent(&state.services.db, name).await {
        Ok(agent) => Ok((agent, body.input)),
        Err(err) => Err(error_response(&err).into_response()),
    }
}

fn hub(state: &AppState) -> Hub<'_> {
    state.hub.hub(&state.services)
}

fn spec(agent: AgentConfig, caller: Caller, input: String, source: Source) -> RunSpec {
    design_run(agent, caller.principal, input, source)
}

async fn run(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Result<Json<RunBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let (agent, input) = match prepare(&state, &caller, &name, body).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    match runner::run(hub(&state), spec(agent, caller, input, Source::Rest), None).await {
        Ok(result) => Json(result).into_response(),
        Err(err) => error_response(&ToolError::from(err)).into_response(),
    }
}

async fn stream(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Result<Json<RunBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let (agent, input) = match prepare(&state, &caller, &name, body).await {
        Ok(ok) => ok,
        Err(resp) => return resp,
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let spec = spec(agent, caller, input, Source::Sse);
    // The run is its own task: a viewer that disconnects drops the receiver, not the run.
    tokio::spawn(async move {
        if let Err(err) = runner::run(hub(&state), spec, Some(tx)).await {
            tracing::error!(%err, "agent run failed to log");
        }
    });
    Sse::new(events(rx))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn events(
    rx: tokio::sync::mpsc::UnboundedReceiver<RunEvent>,
) -> impl Stream<Item = Result<Event, Infallible>> {
    UnboundedReceiverStream::new(rx).map(|event| {
        let name = match &event {
            RunEvent::RunStarted { .. } => "run_started",
            RunEvent::TextDelta { .. } => "text_delta",
            RunEvent::ToolCallStarted { .. } => "tool_call_started",
            RunEvent::ToolCallFinished { .. } => "tool_call_finished",
            RunEvent::RunFinished(_) => "run_finished",
        };
        Ok(Event::default()
            .event(name)
            .json_data(&event)
            .unwrap_or_else(|_| Event::default().event(name)))
    })
}
