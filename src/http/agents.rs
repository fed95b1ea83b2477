//! Run triggers over plain HTTP: `POST /agenthub-api/v1/agents/{agentName}/run` (JSON result) and
//! `…/stream` (SSE) run a design-time agent as the calling user; `POST
//! /agenthub-api/v1/dynamic-agents/run` and `…/stream` run an agent defined in the body (admins
//! only). These are routes of their own, not registry operations, because a run is long-lived (it
//! holds no request transaction) and the stream outlives its viewer.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::post;
use axum::{Extension, Router};
use futures::Stream;
use haven_agents::dynamic::{dynamic_run, DynamicRunInput};
use haven_agents::executions::Source;
use haven_agents::run_agent::{design_run, enabled_agent};
use haven_agents::runner::{self, Hub, RunEvent, RunSpec};
use haven_tools::registry::{parse_input, reject_nul, Access};
use haven_tools::ToolError;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
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
        .route(
            "/agenthub-api/v1/dynamic-agents/run",
            post(dynamic_run_json),
        )
        .route(
            "/agenthub-api/v1/dynamic-agents/stream",
            post(dynamic_stream),
        )
}

/// The body of a design-time agent's run request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// The user's message to the agent.
    pub input: String,
}

/// A request body as JSON.
type Body = Result<Json<Value>, JsonRejection>;

/// The refusal of a trigger, as the standard error envelope.
fn refuse(err: &ToolError) -> Response {
    error_response(err).into_response()
}

/// Parses `body` as `T` with the registry's rules, so errors name the field.
fn parse_body<T: DeserializeOwned + JsonSchema>(body: Body) -> Result<T, ToolError> {
    let Json(value) =
        body.map_err(|e| ToolError::bad_input(format!("the body must be a JSON object: {e}")))?;
    reject_nul(&value)?;
    parse_input(value)
}

/// The run of the enabled design-time agent `name`, or the refusal. Runs need a login: they spend
/// provider tokens and are logged against their user.
async fn named(
    state: &AppState,
    caller: Caller,
    name: &str,
    body: Body,
    source: Source,
) -> Result<RunSpec, ToolError> {
    if caller.principal.is_none() {
        return Err(ToolError::unauthenticated(
            "running an agent needs a login: send an access token or API key",
        ));
    }
    let body: RunBody = parse_body(body)?;
    let agent = enabled_agent(&state.services.db, name).await?;
    Ok(design_run(agent, caller.principal, body.input, source))
}

/// The run of the agent defined in `body`, or the refusal: only admins define agents (401
/// anonymous, 403 otherwise, like `runDynamicAgent`), and the agent passes the checks of a
/// design-time file.
fn dynamic(
    state: &AppState,
    caller: Caller,
    body: Body,
    source: Source,
) -> Result<RunSpec, ToolError> {
    Access::Admin.check(caller.principal.as_ref())?;
    let body: DynamicRunInput = parse_body(body)?;
    let agent = body.agent.config(state.registry)?;
    Ok(dynamic_run(agent, caller.principal, body.input, source))
}

fn hub(state: &AppState) -> Hub<'_> {
    state.hub.hub(&state.services)
}

/// Runs `spec` to the end and answers its result as JSON.
async fn answer_json(state: &AppState, spec: Result<RunSpec, ToolError>) -> Response {
    let spec = match spec {
        Ok(spec) => spec,
        Err(refused) => return refuse(&refused),
    };
    match runner::run(hub(state), spec, None).await {
        Ok(result) => Json(result).into_response(),
        Err(err) => refuse(&ToolError::from(err)),
    }
}

/// Starts `spec` and answers its events as SSE while it runs.
fn answer_sse(state: Arc<AppState>, spec: Result<RunSpec, ToolError>) -> Response {
    let spec = match spec {
        Ok(spec) => spec,
        Err(refused) => return refuse(&refused),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
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

async fn run(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    let spec = named(&state, caller, &name, body, Source::Rest).await;
    answer_json(&state, spec).await
}

async fn stream(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    body: Body,
) -> Response {
    let spec = named(&state, caller, &name, body, Source::Sse).await;
    answer_sse(state, spec)
}

async fn dynamic_run_json(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Response {
    let spec = dynamic(&state, caller, body, Source::Rest);
    answer_json(&state, spec).await
}

async fn dynamic_stream(
    State(state): State<Arc<AppState>>,
    Extension(caller): Extension<Caller>,
    body: Body,
) -> Response {
    let spec = dynamic(&state, caller, body, Source::Sse);
    answer_sse(state, spec)
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
