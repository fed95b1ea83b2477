//! The run loop: system prompt + user input → LLM → the tool calls it asks for, executed through
//! the registry with the CALLER's own permissions → back to the LLM, until a final answer or a
//! guardrail (max tool calls, timeout, token budget) stops the run. Every run is logged in the
//! execution log (start, each tool call, finish) and traced with OpenTelemetry GenAI span names.
//! An agent may call another agent as a tool ([`crate::delegate`]); the nested run spends its
//! caller's guardrails through the shared [`RunControl`], and a timeout or cancellation stops the
//! whole chain, each run closing its own row.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use haven_tools::context::Transport;
use haven_tools::{Ctx, Principal, Registry, Services};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;
use uuid::Uuid;

use crate::control::{RunControl, Runs, Stop};
use crate::definitions::ResponseFormat;
use crate::delegate::{self, DelegateInput};
use crate::executions::{self, AgentType, NewExecution, Outcome, Source, Status, TokenUsage};
use crate::llm::{self, ChatRequest, LlmSettings};
use crate::overrides::{effective_agent, AgentConfig};

/// How a run ended, as the triggers return it (`runAgent` also answers `running` for a run
/// still going).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The execution row's id.
    pub execution_id: Uuid,
    /// `success`, `error`, `timeout` or `cancelled` (or `running` from `runAgent`).
    #[schemars(with = "haven_tools::types::Choice<crate::executions::RunStatuses>")]
    pub status: &'static str,
    /// The answer: text, or the parsed JSON object for `json` agents; null on failure.
    pub output: Option<Value>,
    /// Tool calls made (refused ones included), with those of the agents it called.
    pub tool_calls: i32,
    /// Tokens used over the run, with those of the agents it called.
    pub token_usage: TokenUsage,
    /// Wall-clock duration.
    pub duration_ms: i64,
    /// Why the run failed or stopped.
    pub error: Option<String>,
}

/// What happens during a run, for live viewers (SSE).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// The execution row exists.
    RunStarted {
        /// Its id.
        #[serde(rename = "executionId")]
        execution_id: Uuid,
    },
    /// A piece of the model's answer.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A tool call begins.
    ToolCallStarted {
        /// The tool.
        name: String,
        /// Its arguments as the model sent them.
        arguments: String,
    },
    /// A tool call ended.
    ToolCallFinished {
        /// The tool.
        name: String,
        /// Whether it failed or was refused.
        #[serde(rename = "isError")]
        is_error: bool,
        /// How long it took.
        #[serde(rename = "durationMs")]
        duration_ms: i64,
        /// Tool calls the run has made so far (with those of the agents it called).
        #[serde(rename = "toolCalls")]
        tool_calls: i32,
        /// Tokens the run has used so far (with those of the agents it called).
        #[serde(rename = "totalTokens")]
        total_tokens: i64,
    },
    /// The run ended.
    RunFinished(RunResult),
}

/// Everything a run needs besides the agent and the input.
#[derive(Clone, Copy)]
pub struct Hub<'a> {
    /// Handler services (the pool, for the execution log and the tools).
    pub services: &'a Services,
    /// The operations agents may call.
    pub registry: &'a Registry,
    /// How providers are reached.
    pub llm: &'a LlmSettings,
    /// The runs in flight in this process (for cancellation).
    pub runs: &'a Runs,
}

/// One run to make.
pub struct RunSpec {
    /// The effective configuration.
    pub agent: AgentConfig,
    /// Design or dynamic.
    pub agent_type: AgentType,
    /// Who runs it: every tool call uses this caller's permissions.
    pub caller: Option<Principal>,
    /// The user's message.
    pub input: String,
    /// The trigger.
    pub source: Source,
    /// The calling run's control, when an agent called this one as a tool.
    pub parent: Option<Arc<RunControl>>,
}

/// Why the loop ended without an answer.
enum Ended {
    /// A failure with its reason (provider, guardrail, invalid answer).
    Failed(String),
    /// Stopped by a deadline or a cancellation (see [`RunControl::why`]).
    Stopped,
}

/// A boxed run, so that a run can contain the nested runs of the agents it calls.
type BoxedRun<'a> = Pin<Box<dyn Future<Output = Result<RunResult, sqlx::Error>> + Send + 'a>>;

/// Runs `spec` to the end and logs it; `events` (if any) receives live progress. Errors of the
/// log itself (the database) are returned as `Err`; everything else ends in a [`RunResult`].
pub fn run<'a>(
    hub: Hub<'a>,
    spec: RunSpec,
    events: Option<UnboundedSender<RunEvent>>,
) -> BoxedRun<'a> {
    // Boxed with an explicit `Send` type: a run contains the nested runs of the agents it calls,
    // and a recursive `async fn` can neither have a sized future nor have `Send` inferred.
    Box::pin(run_logged(hub, spec, events))
}

async fn run_logged(
    hub: Hub<'_>,
    spec: RunSpec,
    events: Option<UnboundedSender<RunEvent>>,
) -> Result<RunResult, sqlx::Error> {
    let started = Instant::now();
    let pool = &hub.services.db;
    let input = json!({ "input": spec.input });
    let execution_id = executions::start_execution(
        pool,
        NewExecution {
            agent_name: &spec.agent.name,
            agent_type: spec.agent_type,
            source: spec.source,
            user_id: spec.caller.as_ref().map(|p| p.user_id),
            input: &input,
            parent_execution_id: spec.parent.as_ref().map(|p| p.execution_id),
        },
    )
    .await?;
    let (name, guard) = (&spec.agent.name, spec.agent.guardrails);
    let control = match &spec.parent {
        Some(parent) => RunControl::child(parent, execution_id, name, guard),
        None => RunControl::root(execution_id, name, guard),
    };
    let _listed = hub.runs.register(&control);
    let emit = |e: RunEvent| {
        if let Some(tx) = &events {
            let _ = tx.send(e);
        }
    };
    emit(RunEvent::RunStarted { execution_id });
    let span = tracing::info_span!(
        "invoke_agent",
        "gen_ai.operation.name" = "invoke_agent",
        "gen_ai.agent.name" = %spec.agent.name,
        "gen_ai.request.model" = %spec.agent.model,
        "gen_ai.usage.input_tokens" = tracing::field::Empty,
        "gen_ai.usage.output_tokens" = tracing::field::Empty,
        execution_id = %execution_id,
        parent_execution_id = tracing::field::Empty,
    );
    if let Some(parent) = &spec.parent {
        span.record(
            "parent_execution_id",
            tracing::field::display(parent.execution_id),
        );
    }
    let work = agent_loop(hub, &spec, &control, &emit).instrument(span.clone());
    tokio::pin!(work);
    // The deadline stops the loop through the control rather than dropping it, so nested runs
    // still close their own rows.
    let looped = tokio::select! {
        ended = &mut work => ended,
        () = tokio::time::sleep_until(control.deadline()) => {
            control.stop(control.timed_out());
            work.await
        }
    }?;
    let usage = control.usage();
    span.record("gen_ai.usage.input_tokens", usage.prompt);
    span.record("gen_ai.usage.output_tokens", usage.completion);
    let (status, output, error) = match looped {
        Ok(output) => (Status::Success, Some(output), None),
        Err(Ended::Failed(reason)) => (Status::Error, None, Some(reason)),
        Err(Ended::Stopped) => match control.why() {
            (Stop::Timeout { seconds, own }, stopped_here) => (
                Status::Timeout,
                None,
                Some(if own && stopped_here {
                    format!("guardrail: the run took longer than {seconds} s")
                } else {
                    format!("guardrail of the calling agent: its {seconds} s ran out")
                }),
            ),
            (Stop::Shutdown, _) => (
                Status::Error,
                None,
                Some("interrupted: the server shut down during the run; run it again".to_string()),
            ),
            (Stop::Cancelled, own) => (
                Status::Cancelled,
                None,
                Some(if own {
                    "cancelled on request".to_string()
                } else {
                    "cancelled with the calling run".to_string()
                }),
            ),
        },
    };
    executions::finish_execution(
        pool,
        execution_id,
        Outcome {
            status,
            output: output.as_ref(),
            error: error.as_deref(),
            token_usage: usage,
            tool_calls: control.tool_calls(),
        },
    )
    .await?;
    let result = RunResult {
        execution_id,
        status: status.as_str(),
        output,
        tool_calls: control.tool_calls(),
        token_usage: usage,
        duration_ms: started.elapsed().as_millis() as i64,
        error,
    };
    emit(RunEvent::RunFinished(result.clone()));
    Ok(result)
}

/// The OpenAI function tools offered to the model: the agent's selected operations that the
/// caller itself may call (an admin tool is not even offered to a guest), then the agents it may
/// call (`delegates`), each taking one `input` message.
pub fn offered_tools(
    registry: &Registry,
    agent: &AgentConfig,
    caller: Option<&Principal>,
    delegates: &[AgentConfig],
) -> Vec<Value> {
    let function = |name: &str, description: &str, parameters: Value| {
        json!({
            "type": "function",
            "function": { "name": name, "description": description, "parameters": parameters }
        })
    };
    let operations = agent
        .tools
        .iter()
        .filter_map(|name| registry.get(name))
        .filter(|op| op.access.allows(caller))
        .map(|op| {
            function(
                op.name,
                &op.description,
                Value::Object((*op.input_schema).clone()),
            )
        });
    let agents = delegates.iter().map(|d| {
        function(
            &d.name,
            &delegate::description(&d.name, &d.description),
            Value::Object(delegate::parameters()),
        )
    });
    operations.chain(agents).collect()
}

/// The agents this run may call: the selected tools that are agents, enabled, not already in
/// the chain of callers (no loops), and only while the chain is shallower than
/// [`delegate::MAX_DEPTH`]. A run needs a caller to delegate (nested runs are logged to a user).
async fn delegates(
    hub: Hub<'_>,
    spec: &RunSpec,
    control: &RunControl,
) -> Result<Vec<AgentConfig>, String> {
    if spec.caller.is_none() || control.depth() >= delegate::MAX_DEPTH {
        return Ok(Vec::new());
    }
    let mut found = Vec::new();
    for name in &spec.agent.tools {
        if hub.registry.get(name).is_some() || control.in_chain(name) {
            continue;
        }
        match effective_agent(&hub.services.db, name).await {
            Ok(Some(agent)) if agent.enabled => found.push(agent),
            Ok(_) => {}
            Err(err) => return Err(format!("could not load the agent {name}: {err}")),
        }
    }
    Ok(found)
}

/// The loop proper: `Ok(Ok(answer))`, `Ok(Err(ended))` for a failed or stopped run, `Err` for
/// the log's database failing.
async fn agent_loop(
    hub: Hub<'_>,
    spec: &RunSpec,
    control: &Arc<RunControl>,
    emit: &(dyn Fn(RunEvent) + Sync),
) -> Result<Result<Value, Ended>, sqlx::Error> {
    let agent = &spec.agent;
    let delegates = match delegates(hub, spec, control).await {
        Ok(found) => found,
        Err(reason) => return Ok(Err(Ended::Failed(reason))),
    };
    let tools = offered_tools(hub.registry, agent, spec.caller.as_ref(), &delegates);
    let mut messages = Vec::new();
    if let Some(prompt) = &agent.system_prompt {
        messages.push(json!({ "role": "system", "content": prompt }));
    }
    messages.push(json!({ "role": "user", "content": spec.input }));
    let json_mode = agent.response_format == ResponseFormat::Json;
    loop {
        let req = ChatRequest {
            model: &agent.model,
            messages: &messages,
            tools: &tools,
            temperature: agent.temperature,
            max_tokens: agent.max_tokens,
            json: json_mode,
        };
        let chat_span = tracing::info_span!(
            "chat",
            "gen_ai.operation.name" = "chat",
            "gen_ai.request.model" = %agent.model,
            "gen_ai.usage.input_tokens" = tracing::field::Empty,
            "gen_ai.usage.output_tokens" = tracing::field::Empty,
        );
        let mut on_text = |t: &str| {
            emit(RunEvent::TextDelta {
                text: t.to_string(),
            })
        };
        let chat =
            llm::chat(hub.llm, agent.provider, &req, &mut on_text).instrument(chat_span.clone());
        let response = tokio::select! {
            answered = chat => match answered {
                Ok(r) => r,
                Err(err) => return Ok(Err(Ended::Failed(err.0))),
            },
            () = control.stopped() => return Ok(Err(Ended::Stopped)),
        };
        if let Some(u) = response.usage {
            chat_span.record("gen_ai.usage.input_tokens", u.prompt_tokens);
            chat_span.record("gen_ai.usage.output_tokens", u.completion_tokens);
        }
        // Close the span now: kept to the end of the iteration, its lifetime would also cover
        // the tool calls that follow (tracing backends report span lifetimes).
        drop(chat_span);
        if let Some(u) = response.usage {
            let total = u.total_tokens.max(u.prompt_tokens + u.completion_tokens);
            if let Err(reason) = control.charge(u.prompt_tokens, u.completion_tokens, total) {
                return Ok(Err(Ended::Failed(reason)));
            }
        }
        if response.tool_calls.is_empty() {
            return Ok(final_answer(response.text, json_mode).map_err(Ended::Failed));
        }
        messages.push(json!({
            "role": "assistant",
            "content": if response.text.is_empty() { Value::Null } else { Value::String(response.text.clone()) },
            "tool_calls": response.tool_calls.iter().map(|c| json!({
                "id": c.id, "type": "function",
                "function": { "name": c.name, "arguments": c.arguments },
            })).collect::<Vec<_>>(),
        }));
        for call in &response.tool_calls {
            if let Err(reason) = control.take_tool_call() {
                return Ok(Err(Ended::Failed(reason)));
            }
            let content = execute_tool(hub, spec, control, &tools, &delegates, call, emit).await?;
            if control.is_stopped() {
                return Ok(Err(Ended::Stopped));
            }
            messages.push(json!({ "role": "tool", "tool_call_id": call.id, "content": content }));
        }
    }
}

fn final_answer(text: String, json_mode: bool) -> Result<Value, String> {
    if !json_mode {
        return Ok(Value::String(text));
    }
    serde_json::from_str::<Value>(text.trim())
        .map_err(|e| format!("the agent must answer with JSON but its answer does not parse ({e})"))
}

/// Runs one tool call as the caller — an operation, or another agent — logs it, and returns the
/// `tool` message content.
async fn execute_tool(
    hub: Hub<'_>,
    spec: &RunSpec,
    control: &Arc<RunControl>,
    offered: &[Value],
    delegates: &[AgentConfig],
    call: &llm::ToolCall,
    emit: &(dyn Fn(RunEvent) + Sync),
) -> Result<String, sqlx::Error> {
    let span = tracing::info_span!(
        "execute_tool",
        "gen_ai.operation.name" = "execute_tool",
        "gen_ai.tool.name" = %call.name,
        "gen_ai.tool.call.id" = %call.id,
    );
    emit(RunEvent::ToolCallStarted {
        name: call.name.clone(),
        arguments: call.arguments.clone(),
    });
    let started = Instant::now();
    let arguments: Result<Value, String> = if call.arguments.trim().is_empty() {
        Ok(json!({}))
    } else {
        serde_json::from_str(&call.arguments)
            .map_err(|e| format!("the arguments are not valid JSON: {e}"))
    };
    let is_offered = offered
        .iter()
        .any(|t| t["function"]["name"] == call.name.as_str());
    let outcome: Result<Value, String> = match (is_offered, arguments.clone()) {
        (false, _) => Err(format!(
            "not allowed: tool {} is not available to this agent for this caller",
            call.name
        )),
        (true, Err(e)) => Err(e),
        (true, Ok(args)) => match delegates.iter().find(|d| d.name == call.name) {
            Some(agent) => ask_agent(hub, spec, control, agent, args).await?,
            None => {
                invoke_operation(hub, spec, control, &call.name, args)
                    .instrument(span.clone())
                    .await
            }
        },
    };
    let duration_ms = started.elapsed().as_millis() as i64;
    let (result, is_error) = match outcome {
        Ok(v) => (v, false),
        Err(message) => (json!({ "error": message }), true),
    };
    let args_value = arguments.unwrap_or_else(|_| Value::String(call.arguments.clone()));
    let recorded = executions::record_tool_call(
        &hub.services.db,
        control.execution_id,
        executions::ToolCallRecord {
            tool_name: &call.name,
            arguments: &args_value,
            result: &result,
            is_error,
            duration_ms,
        },
    )
    .await?;
    // A cancel whose notification this process missed is still seen here.
    if recorded.cancel_requested {
        control.stop(Stop::Cancelled);
    }
    emit(RunEvent::ToolCallFinished {
        name: call.name.clone(),
        is_error,
        duration_ms,
        tool_calls: control.tool_calls(),
        total_tokens: control.usage().total,
    });
    Ok(result.to_string())
}

/// Invokes a registry operation with the caller's own principal, abandoning it (its transaction
/// rolls back) if the run is stopped meanwhile.
async fn invoke_operation(
    hub: Hub<'_>,
    spec: &RunSpec,
    control: &RunControl,
    name: &str,
    args: Value,
) -> Result<Value, String> {
    let Some(op) = hub.registry.get(name) else {
        return Err(format!("not allowed: tool {name} is not an operation"));
    };
    let ctx = Ctx::new(
        hub.services.clone(),
        spec.caller.clone(),
        format!(
            "agent-{}-{}",
            control.execution_id.simple(),
            control.tool_calls()
        ),
        None,
    )
    .via(Transport::Agent)
    .in_agent_run(control.execution_id);
    tokio::select! {
        done = op.invoke(ctx, args) => done.map_err(|e| e.to_string()),
        () = control.stopped() => Err("stopped: the run was stopped during this call".to_string()),
    }
}

/// Runs `agent` as a nested run of this one (same caller, source `agent`, this run's guardrails
/// shared) and turns its result into the tool result: the answer and the nested execution id, or
/// an error naming how it ended.
async fn ask_agent(
    hub: Hub<'_>,
    spec: &RunSpec,
    control: &Arc<RunControl>,
    agent: &AgentConfig,
    args: Value,
) -> Result<Result<Value, String>, sqlx::Error> {
    let input: DelegateInput = match haven_tools::registry::parse_input(args) {
        Ok(input) => input,
        Err(e) => return Ok(Err(e.message)),
    };
    let nested = RunSpec {
        agent: agent.clone(),
        agent_type: AgentType::Design,
        caller: spec.caller.clone(),
        input: input.input,
        source: Source::Agent,
        parent: Some(control.clone()),
    };
    let result = run(hub, nested, None).await?;
    Ok(if result.status == Status::Success.as_str() {
        Ok(json!({ "executionId": result.execution_id, "answer": result.output }))
    } else {
        Err(format!(
            "the agent {} ended with status {} ({}); execution {}",
            agent.name,
            result.status,
            result.error.as_deref().unwrap_or("no reason given"),
            result.execution_id
        ))
    })
}
