//! Starting a run of a design-time agent as the caller — shared by the REST triggers
//! (`…/run`, `…/stream`) and the MCP tool `runAgent`, which waits a bounded time and otherwise
//! answers `running` with the execution id while the run goes on in the background.
//!
//! The tool's handler needs the hub's registry and LLM client, which haven-tools (a dependency of
//! this crate) cannot name; the server stores a [`HubDeps`] in the `Services::extension` slot and
//! the handler downcasts it. A process-wide `OnceLock` was not used because every server state
//! (every test app in one test process) has its own LLM base URL and wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use haven_tools::context::{Ctx, Progress};
use haven_tools::error::ToolError;
use haven_tools::registry::{
    Access, Annotations, Flow, Method, Operation, OperationBuilder, Service,
};
use haven_tools::{Principal, Registry, Services};
use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::PgPool;
use uuid::Uuid;

use crate::control::Runs;
use crate::executions::{AgentType, Source, TokenUsage};
use crate::llm::LlmSettings;
use crate::overrides::{effective_agent, AgentConfig};
use crate::runner::{self, Hub, RunEvent, RunResult, RunSpec};

/// What a run needs besides the handler services, stored by the server in
/// `Services::extension`.
pub struct HubDeps {
    /// The operations agents may call.
    pub registry: &'static Registry,
    /// How providers are reached.
    pub llm: LlmSettings,
    /// How long `runAgent` waits before answering `running`.
    pub mcp_wait: Duration,
    /// The runs in flight in this process (cancellation reaches them through it).
    pub runs: Arc<Runs>,
}

impl HubDeps {
    /// The run-loop view of these dependencies over `services`.
    pub fn hub<'a>(&'a self, services: &'a Services) -> Hub<'a> {
        Hub {
            services,
            registry: self.registry,
            llm: &self.llm,
            runs: &self.runs,
        }
    }
}

/// The enabled agent `name` with its effective configuration; a missing or disabled agent is a
/// 404 (a disabled one is not offered to anyone).
pub async fn enabled_agent(pool: &PgPool, name: &str) -> Result<AgentConfig, ToolError> {
    match effective_agent(pool, name).await? {
        Some(agent) if agent.enabled => Ok(agent),
        _ => Err(ToolError::not_found("agent")),
    }
}

/// A run of the design-time `agent` on `input` as `caller`, triggered from `source`.
pub fn design_run(
    agent: AgentConfig,
    caller: Option<Principal>,
    input: String,
    source: Source,
) -> RunSpec {
    RunSpec {
        agent,
        agent_type: AgentType::Design,
        caller,
        input,
        source,
        parent: None,
    }
}

/// The input of `runAgent`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RunAgentInput {
    /// The agent to run (a name from listAgents).
    pub agent_name: String,
    /// The user's message to the agent.
    pub input: String,
}

/// The `runAgent` operation.
pub fn operations() -> Vec<Operation> {
    vec![run_operation(
        "runAgent",
        "/agenthub-api/v1/agents/{agentName}/runs",
        Access::Authenticated,
    )
    .core(Flow::Account, 30)
    .title("Run an agent")
    .who("any logged-in user, for enabled agents; the agent acts with the caller's own permissions")
    .describe(
        "Runs an enabled agent (agentName from listAgents) on the input message as the caller: every tool the agent \
         calls uses the caller's own permissions. Waits up to about 45 s; returns executionId, status (success, \
         error, timeout, cancelled, or running if the run is still going), output (text, or a JSON object for json \
         agents), toolCalls, tokenUsage, durationMs and error. A running run goes on in the background: poll \
         getAgentExecution with the executionId until its status is no longer running, or stop it with \
         cancelAgentExecution.",
    )
    .handler(run_agent)]
}

/// An operation that starts a run (`runAgent`, `runDynamicAgent`) at `POST path`: it creates an
/// `agentRun`, is not idempotent, and reaches outside Haven (the provider), so it is open-world.
/// Its handler should end in [`run_and_wait`].
pub fn run_operation(name: &'static str, path: &'static str, access: Access) -> OperationBuilder {
    Operation::build(name, Service::AgentHub)
        .rest(Method::Post, path)
        .access(access)
        .creates("agentRun")
        // An agent calls an LLM (open world) and may call any tool it was given with the
        // caller's permissions, destructive ones included: clients must ask before running one.
        .annotations(Annotations {
            read_only: false,
            destructive: true,
            idempotent: false,
            open_world: true,
        })
}

async fn run_agent(ctx: Ctx, input: RunAgentInput) -> Result<RunResult, ToolError> {
    let caller = ctx.caller()?.clone();
    let deps = hub_deps(&ctx)?;
    let agent = enabled_agent(&ctx.services.db, &input.agent_name).await?;
    let spec = design_run(agent, Some(caller), input.input, Source::of(ctx.transport));
    run_and_wait(&ctx, deps, spec).await
}

/// The hub's dependencies, stored by the server in `Services::extension`.
pub fn hub_deps(ctx: &Ctx) -> Result<Arc<HubDeps>, ToolError> {
    ctx.services
        .extension
        .clone()
        .and_then(|ext| ext.downcast::<HubDeps>().ok())
        .ok_or_else(|| ToolError::internal("the agent hub is not installed in this server"))
}

/// Runs `spec` for an operation call (`runAgent`, `runDynamicAgent`): starts the run in its own
/// task (it never touches the call's transaction: the execution log is written on the pool) and
/// waits for it at most `deps.mcp_wait`; a run still going then is answered `running` with its
/// execution id and goes on in the background.
///
/// While it waits, every finished tool call is reported to the caller's progress sink (MCP
/// `notifications/progress`: tool calls made and tokens used). If the caller gives up on the call
/// (MCP cancellation) before the answer, the run is cancelled too and closes its row `cancelled`:
/// dropping this future cancels it.
pub async fn run_and_wait(
    ctx: &Ctx,
    deps: Arc<HubDeps>,
    spec: RunSpec,
) -> Result<RunResult, ToolError> {
    let wait = deps.mcp_wait;
    let services = ctx.services.clone();
    let runs = deps.runs.clone();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let started = Instant::now();
    let mut task =
        tokio::spawn(async move { runner::run(deps.hub(&services), spec, Some(tx)).await });
    let mut abandon = CancelOnDrop { runs, id: None };
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    let mut events_open = true;
    let mut timed_out = false;
    loop {
        tokio::select! {
            joined = &mut task => {
                abandon.id = None;
                return joined.map_err(ToolError::internal)?.map_err(Into::into);
            }
            event = rx.recv(), if events_open => match event {
                Some(RunEvent::RunStarted { execution_id }) => {
                    abandon.id = Some(execution_id);
                    if timed_out {
                        return Ok(still_running(&mut abandon, execution_id, started));
                    }
                }
                Some(RunEvent::ToolCallFinished { name, is_error, tool_calls, total_tokens, .. }) => {
                    ctx.report_progress(Progress {
                        progress: f64::from(tool_calls),
                        total: None,
                        message: format!(
                            "{tool_calls} tool call{} made ({name}{}), {total_tokens} tokens used",
                            if tool_calls == 1 { "" } else { "s" },
                            if is_error { " failed" } else { "" },
                        ),
                    });
                }
                Some(_) => {}
                None => events_open = false,
            },
            _ = &mut deadline, if !timed_out => {
                timed_out = true;
                if let Some(id) = abandon.id {
                    return Ok(still_running(&mut abandon, id, started));
                }
                // No id yet: the log has not started; keep waiting for the start or the end.
            }
        }
    }
}

/// The `running` answer for a run that goes on in the background (it is no longer cancelled
/// with the call).
fn still_running(abandon: &mut CancelOnDrop, execution_id: Uuid, started: Instant) -> RunResult {
    abandon.id = None;
    RunResult {
        execution_id,
        status: "running",
        output: None,
        tool_calls: 0,
        token_usage: TokenUsage::default(),
        duration_ms: started.elapsed().as_millis() as i64,
        error: None,
    }
}

/// Cancels the run `id` (if set) when dropped: a call abandoned by its client takes its run
/// with it, and the run closes its own row as `cancelled`.
struct CancelOnDrop {
    runs: Arc<Runs>,
    id: Option<Uuid>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            tracing::info!(execution_id = %id, "the caller cancelled the call; cancelling its run");
            self.runs.cancel(id);
        }
    }
}
