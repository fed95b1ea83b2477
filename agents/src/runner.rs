//! The run loop: system prompt + user input → LLM → the tool calls it asks for, executed through
//! the registry with the CALLER's own permissions → back to the LLM, until a final answer or a
//! guardrail (max tool calls, timeout, token budget) stops the run. Every run is logged in the
//! execution log (start, each tool call, finish) and traced with OpenTelemetry GenAI span names.

use std::time::Instant;

use haven_tools::context::Transport;
use haven_tools::{Ctx, Principal, Registry, Services};
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedSender;
use tracing::Instrument;
use uuid::Uuid;

use crate::definitions::ResponseFormat;
use crate::executions::{self, AgentType, NewExecution, Outcome, Source, Status, TokenUsage};
use crate::llm::{self, ChatRequest, LlmSettings};
use crate::overrides::AgentConfig;

/// How a run ended, as the triggers return it (`runAgent` also answers `running` for a run
/// still going).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The execution row's id.
    pub execution_id: Uuid,
    /// `success`, `error` or `timeout` (or `running` from `runAgent`).
    pub status: &'static str,
    /// The answer: text, or the parsed JSON object for `json` agents; null on failure.
    pub output: Option<Value>,
    /// Tool calls made (refused ones included).
    pub tool_calls: i32,
    /// Tokens used over the run.
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
}

/// Running totals of a run, kept outside the timed future so a timeout still reports them.
#[derive(Default)]
struct Tally {
    usage: TokenUsage,
    tool_calls: i32,
}

/// Runs `spec` to the end and logs it; `events` (if any) receives live progress. Errors of the
/// log itself (the database) are returned as `Err`; everything else ends in a [`RunResult`].
pub async fn run(
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
            parent_execution_id: None,
        },
    )
    .await?;
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
    );
    let guard = spec.agent.guardrails;
    let limit = std::time::Duration::from_secs(guard.timeout_seconds.get() as u64);
    let mut tally = Tally::default();
    let looped = tokio::time::timeout(
        limit,
        agent_loop(hub, &spec, execution_id, &mut tally, &emit).instrument(span.clone()),
    )
    .await;
    span.record("gen_ai.usage.input_tokens", tally.usage.prompt);
    span.record("gen_ai.usage.output_tokens", tally.usage.completion);
    let (status, output, error) = match looped {
        Ok(Ok(Ok(output))) => (Status::Success, Some(output), None),
        Ok(Ok(Err(reason))) => (Status::Error, None, Some(reason)),
        Ok(Err(db)) => return Err(db),
        Err(_) => (
            Status::Timeout,
            None,
            Some(format!(
                "guardrail: the run took longer than {} s",
                guard.timeout_seconds.get()
            )),
        ),
    };
    executions::finish_execution(
        pool,
        execution_id,
        Outcome {
            status,
            output: output.as_ref(),
            error: error.as_deref(),
            token_usage: tally.usage,
        },
    )
    .await?;
    let result = RunResult {
        execution_id,
        status: status.as_str(),
        output,
        tool_calls: tally.tool_calls,
        token_usage: tally.usage,
        duration_ms: started.elapsed().as_millis() as i64,
        error,
    };
    emit(RunEvent::RunFinished(result.clone()));
    Ok(result)
}

/// The OpenAI function tools offered to the model: the agent's selected tools that the caller
/// itself may call (an admin tool is not even offered to a guest).
pub fn offered_tools(
    registry: &Registry,
    agent: &AgentConfig,
    caller: Option<&Principal>,
) -> Vec<Value> {
    agent
        .tools
        .iter()
        .filter_map(|name| registry.get(name))
        .filter(|op| op.access.allows(caller))
        .map(|op| {
            json!({
                "type": "function",
                "function": {
                    "name": op.name,
                    "description": op.description,
                    "parameters": Value::Object((*op.input_schema).clone()),
                }
            })
        })
        .collect()
}

/// The loop proper: `Ok(Ok(answer))`, `Ok(Err(reason))` for a failed run, `Err` for the log's
/// database failing.
async fn agent_loop(
    hub: Hub<'_>,
    spec: &RunSpec,
    execution_id: Uuid,
    tally: &mut Tally,
    emit: &(dyn Fn(RunEvent) + Sync),
) -> Result<Result<Value, String>, sqlx::Error> {
    let agent = &spec.agent;
    let caller = spec.caller.as_ref();
    let tools = offered_tools(hub.registry, agent, caller);
    let offered: Vec<&str> = tools
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    let mut messages = Vec::new();
    if let Some(prompt) = &agent.system_prompt {
        messages.push(json!({ "role": "system", "content": prompt }));
    }
    messages.push(json!({ "role": "user", "content": spec.input }));
    let max_calls = agent.guardrails.max_tool_calls.get() as i32;
    let budget = agent.guardrails.max_token_budget.get() as i64;
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
        let response = match llm::chat(hub.llm, agent.provider, &req, &mut on_text)
            .instrument(chat_span.clone())
            .await
        {
            Ok(r) => r,
            Err(err) => return Ok(Err(err.0)),
        };
        if let Some(u) = response.usage {
            chat_span.record("gen_ai.usage.input_tokens", u.prompt_tokens);
            chat_span.record("gen_ai.usage.output_tokens", u.completion_tokens);
            tally.usage.prompt += u.prompt_tokens;
            tally.usage.completion += u.completion_tokens;
            tally.usage.total += u.total_tokens.max(u.prompt_tokens + u.completion_tokens);
        }
        if tally.usage.total > budget {
            return Ok(Err(format!(
                "guardrail: token budget of {budget} tokens exceeded ({} used)",
                tally.usage.total
            )));
        }
        if response.tool_calls.is_empty() {
            return Ok(final_answer(response.text, json_mode));
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
            if tally.tool_calls >= max_calls {
                return Ok(Err(format!("guardrail: more than {max_calls} tool calls")));
            }
            let content =
                execute_tool(hub, spec, execution_id, &offered, call, tally, emit).await?;
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

/// Runs one tool call as the caller, logs it, and returns the `tool` message content.
async fn execute_tool(
    hub: Hub<'_>,
    spec: &RunSpec,
    execution_id: Uuid,
    offered: &[&str],
    call: &llm::ToolCall,
    tally: &mut Tally,
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
    let op = hub
        .registry
        .get(&call.name)
        .filter(|_| offered.contains(&call.name.as_str()));
    let outcome: Result<Value, String> = match (op, arguments.clone()) {
        (None, _) => Err(format!(
            "not allowed: tool {} is not available to this agent for this caller",
            call.name
        )),
        (Some(_), Err(e)) => Err(e),
        (Some(op), Ok(args)) => {
            let ctx = Ctx::new(
                hub.services.clone(),
                spec.caller.clone(),
                format!("agent-{}-{}", execution_id.simple(), tally.tool_calls + 1),
                None,
            )
            .via(Transport::Agent);
            op.invoke(ctx, args)
                .instrument(span.clone())
                .await
                .map_err(|e| e.to_string())
        }
    };
    let duration_ms = started.elapsed().as_millis() as i64;
    let (result, is_error) = match outcome {
        Ok(v) => (v, false),
        Err(message) => (json!({ "error": message }), true),
    };
    let args_value = arguments.unwrap_or_else(|_| Value::String(call.arguments.clone()));
    executions::record_tool_call(
        &hub.services.db,
        execution_id,
        executions::ToolCallRecord {
            tool_name: &call.name,
            arguments: &args_value,
            result: &result,
            is_error,
            duration_ms,
        },
    )
    .await?;
    tally.tool_calls += 1;
    emit(RunEvent::ToolCallFinished {
        name: call.name.clone(),
        is_error,
        duration_ms,
    });
    Ok(result.to_string())
}
