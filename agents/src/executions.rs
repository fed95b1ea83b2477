//! The execution log (spec `Sys_agentExecution`): one row per agent run plus its tool-call trace.
//! The run loop writes it through [`start_execution`], [`record_tool_call`] and
//! [`finish_execution`] on the pool directly (a run outlives any request transaction); the two read
//! operations show a user their own runs and admins every run.

use chrono::{DateTime, Utc};
use haven_tools::context::Ctx;
use haven_tools::error::ToolError;
use haven_tools::registry::{Access, Action, Method, Operation, Service};
use haven_tools::types::{Choice, Choices, EnumFilter, Filter, Paging};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::types::Json;
use sqlx::PgPool;
use uuid::Uuid;

/// Whether a run used a design-time or a dynamic (request-defined) agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentType {
    /// A file in `agents/definitions/`.
    Design,
    /// Defined in the request body by an admin.
    Dynamic,
}

/// What triggered a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `POST …/run`.
    Rest,
    /// `POST …/stream`.
    Sse,
    /// A message queue (reserved; nothing sends through it yet).
    Kafka,
    /// Another agent calling this one as a tool.
    Agent,
    /// The MCP `runAgent` tool.
    Mcp,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A final answer.
    Success,
    /// A failure (provider, tool-call or token guardrail, invalid JSON answer).
    Error,
    /// A time guardrail (the run's own or a calling agent's).
    Timeout,
    /// Cancelled on request (`cancelAgentExecution`), or with the run that called it.
    Cancelled,
}

haven_tools::choices!(
    /// A run's `agentType`.
    AgentTypes = ["design", "dynamic"]
);
haven_tools::choices!(
    /// What triggered a run (`source`).
    Sources = ["rest", "sse", "kafka", "agent", "mcp"]
);
haven_tools::choices!(
    /// A run's `status`: the three end states of the reference API, then `running` for runs in
    /// flight and `cancelled` for runs stopped on request (indexes 3 and 4).
    RunStatuses = ["success", "error", "timeout", "running", "cancelled"]
);
const AGENT_TYPES: &[&str] = AgentTypes::VALUES;
const SOURCES: &[&str] = Sources::VALUES;
const STATUSES: &[&str] = RunStatuses::VALUES;

impl AgentType {
    fn as_str(self) -> &'static str {
        AGENT_TYPES[self as usize]
    }
}
impl Source {
    /// The source of a run started by an operation call arriving through `transport` (`runAgent`
    /// over REST is logged `rest`, over MCP `mcp`).
    pub fn of(transport: haven_tools::context::Transport) -> Source {
        use haven_tools::context::Transport;
        match transport {
            Transport::Rest => Source::Rest,
            Transport::Agent => Source::Agent,
            Transport::Mcp | Transport::Internal => Source::Mcp,
        }
    }

    /// The source's name as stored.
    pub fn as_str(self) -> &'static str {
        SOURCES[self as usize]
    }
}
impl Status {
    /// The status's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Success => STATUSES[0],
            Status::Error => STATUSES[1],
            Status::Timeout => STATUSES[2],
            Status::Cancelled => STATUSES[4],
        }
    }
}

/// Prompt, completion and total tokens of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TokenUsage {
    /// Prompt (input) tokens.
    pub prompt: i64,
    /// Completion (output) tokens.
    pub completion: i64,
    /// Their sum.
    pub total: i64,
}

/// One agent run.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AgentExecution {
    /// The run's id.
    pub id: Uuid,
    /// The agent that ran.
    pub agent_name: String,
    /// `design` or `dynamic`.
    #[schemars(with = "Choice<AgentTypes>")]
    pub agent_type: String,
    /// Index of `agentType`.
    #[serde(rename = "agentType_idx")]
    pub agent_type_idx: i32,
    /// `rest`, `sse`, `kafka`, `agent` or `mcp`.
    #[schemars(with = "Choice<Sources>")]
    pub source: String,
    /// Index of `source`.
    #[serde(rename = "source_idx")]
    pub source_idx: i32,
    /// Who triggered it (every tool call ran with this user's permissions).
    pub user_id: Option<Uuid>,
    /// The request input (truncated when large).
    pub input: Value,
    /// The answer (truncated when large); null while running or after a failure.
    pub output: Option<Value>,
    /// Tool calls made.
    pub tool_calls: i32,
    /// Tokens used: { prompt, completion, total }.
    #[schemars(with = "TokenUsage")]
    pub token_usage: Json<TokenUsage>,
    /// Wall-clock duration in milliseconds; null while running.
    pub duration_ms: Option<i64>,
    /// `success`, `error`, `timeout`, `cancelled`, or `running` while in flight.
    #[schemars(with = "Choice<RunStatuses>")]
    pub status: String,
    /// Index of `status` (running is 3, cancelled 4).
    #[serde(rename = "status_idx")]
    pub status_idx: i32,
    /// Why it failed or stopped.
    pub error: Option<String>,
    /// The calling run, for agent-to-agent calls.
    pub parent_execution_id: Option<Uuid>,
    /// When someone asked to cancel it.
    pub cancel_requested_at: Option<DateTime<Utc>>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// System fields (isActive, recordVersion, createdAt, updatedAt, _owner).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: haven_tools::types::RecordMeta,
}

pub(crate) const EXECUTION_COLUMNS: &str = "e.id, e.agent_name, e.agent_type,
    array_position(ARRAY['design','dynamic'], e.agent_type) - 1 AS agent_type_idx,
    e.source, array_position(ARRAY['rest','sse','kafka','agent','mcp'], e.source) - 1 AS source_idx,
    e.user_id, e.input, e.output, e.tool_calls, e.token_usage, e.duration_ms, e.status,
    array_position(ARRAY['success','error','timeout','running','cancelled'], e.status) - 1 AS status_idx,
    e.error, e.parent_execution_id, e.cancel_requested_at, e.finished_at, e.is_active, e.record_version, e.created_at,
    e.updated_at, e.owner_id";

/// One tool call of a run, in order.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ToolCallEntry {
    /// 1-based position in the run.
    pub seq: i32,
    /// The tool called.
    pub tool_name: String,
    /// The arguments the model sent (truncated when large).
    pub arguments: Value,
    /// The tool's result or error payload (truncated when large).
    pub result: Option<Value>,
    /// Whether the tool answered with an error.
    pub is_error: bool,
    /// How long the call took.
    pub duration_ms: i64,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// A run with its tool-call trace (`getAgentExecution`).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionDetail {
    /// The run.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub execution: AgentExecution,
    /// Its tool calls in order.
    #[sqlx(json)]
    pub tool_call_trace: Vec<ToolCallEntry>,
}

/// Largest JSON payload stored whole; bigger ones keep a prefix (spec: "truncated for large payloads").
pub const MAX_PAYLOAD_BYTES: usize = 64 * 1024;

/// `value` itself when its JSON is at most [`MAX_PAYLOAD_BYTES`], else a marker object with the
/// original size and a prefix of the text.
pub fn truncate_payload(value: &Value) -> Value {
    let text = value.to_string();
    if text.len() <= MAX_PAYLOAD_BYTES {
        return value.clone();
    }
    let mut end = MAX_PAYLOAD_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    json!({ "truncated": true, "originalBytes": text.len(), "prefix": &text[..end] })
}

/// What a new run records before it starts.
#[derive(Debug, Clone)]
pub struct NewExecution<'a> {
    /// The agent's name.
    pub agent_name: &'a str,
    /// Design or dynamic.
    pub agent_type: AgentType,
    /// The trigger.
    pub source: Source,
    /// The calling user.
    pub user_id: Option<Uuid>,
    /// The request input.
    pub input: &'a Value,
    /// The calling run, for agent-to-agent calls.
    pub parent_execution_id: Option<Uuid>,
}

/// Inserts a `running` row for a new run and returns its id.
pub async fn start_execution(pool: &PgPool, new: NewExecution<'_>) -> Result<Uuid, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO agenthub.agent_executions (agent_name, agent_type, source, user_id, input, parent_execution_id, owner_id)
         VALUES ($1, $2, $3, $4, $5, $6, $4) RETURNING id",
    )
    .bind(new.agent_name)
    .bind(new.agent_type.as_str())
    .bind(new.source.as_str())
    .bind(new.user_id)
    .bind(truncate_payload(new.input))
    .bind(new.parent_execution_id)
    .fetch_one(pool)
    .await
}

/// One finished tool call to append to a run's trace.
#[derive(Debug, Clone)]
pub struct ToolCallRecord<'a> {
    /// The tool called.
    pub tool_name: &'a str,
    /// Its arguments.
    pub arguments: &'a Value,
    /// Its result or error payload.
    pub result: &'a Value,
    /// Whether it failed.
    pub is_error: bool,
    /// How long it took.
    pub duration_ms: i64,
}

/// What [`record_tool_call`] learned.
#[derive(Debug, Clone, Copy, sqlx::FromRow)]
pub struct Recorded {
    /// The call's 1-based position in the run's trace.
    pub seq: i32,
    /// Whether someone has asked to cancel the run (the run loop's fallback when the cancel
    /// notification did not reach its process).
    pub cancel_requested: bool,
}

/// Appends a tool call to a run's trace and counts it on the run, atomically (the run row's lock
/// orders concurrent calls).
pub async fn record_tool_call(
    pool: &PgPool,
    execution_id: Uuid,
    call: ToolCallRecord<'_>,
) -> Result<Recorded, sqlx::Error> {
    sqlx::query_as(
        "WITH bumped AS (
            UPDATE agenthub.agent_executions SET tool_calls = tool_calls + 1,
                record_version = record_version + 1, updated_at = now()
            WHERE id = $1 RETURNING tool_calls, cancel_requested_at IS NOT NULL AS cancel_requested),
         added AS (
            INSERT INTO agenthub.agent_tool_calls (execution_id, seq, tool_name, arguments, result, is_error, duration_ms)
            SELECT $1, tool_calls, $2, $3, $4, $5, $6 FROM bumped RETURNING seq)
         SELECT added.seq, bumped.cancel_requested FROM added, bumped",
    )
    .bind(execution_id)
    .bind(call.tool_name)
    .bind(truncate_payload(call.arguments))
    .bind(truncate_payload(call.result))
    .bind(call.is_error)
    .bind(call.duration_ms)
    .fetch_one(pool)
    .await
}

/// How a run ended, for [`finish_execution`].
#[derive(Debug, Clone)]
pub struct Outcome<'a> {
    /// Success, error or timeout.
    pub status: Status,
    /// The answer, if any.
    pub output: Option<&'a Value>,
    /// Why it failed or stopped.
    pub error: Option<&'a str>,
    /// Tokens used over the whole run (nested agents' included).
    pub token_usage: TokenUsage,
    /// Tool calls made over the whole run (nested agents' included: they count against its
    /// guardrail).
    pub tool_calls: i32,
}

/// Closes a running run: status, output, error, usage and the duration since it started. A run
/// that is no longer running is left as it is (returns false).
pub async fn finish_execution(
    pool: &PgPool,
    execution_id: Uuid,
    outcome: Outcome<'_>,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE agenthub.agent_executions SET status = $2, output = $3, error = $4, token_usage = $5,
            tool_calls = $6, finished_at = clock_timestamp(),
            duration_ms = (extract(epoch FROM clock_timestamp() - created_at) * 1000)::bigint,
            record_version = record_version + 1, updated_at = now()
         WHERE id = $1 AND status = 'running'",
    )
    .bind(execution_id)
    .bind(outcome.status.as_str())
    .bind(outcome.output.map(truncate_payload))
    .bind(outcome.error)
    .bind(Json(outcome.token_usage))
    .bind(outcome.tool_calls)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Input of `listAgentExecutions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExecutionFilters {
    /// Partial, case-insensitive agent name match.
    pub agent_name: Option<Filter>,
    /// `design` or `dynamic` (case-insensitive).
    pub agent_type: Option<EnumFilter<AgentTypes>>,
    /// `rest`, `sse`, `kafka`, `agent` or `mcp` (case-insensitive).
    pub source: Option<EnumFilter<Sources>>,
    /// The triggering user's id (admins; other users only ever see their own runs).
    #[schemars(with = "Option<haven_tools::types::UuidFilter>")]
    pub user_id: Option<Filter>,
    /// `success`, `error`, `timeout`, `cancelled` or `running` (case-insensitive).
    pub status: Option<EnumFilter<RunStatuses>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// Identifies one run.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecutionRef {
    /// The run's id.
    #[serde(rename = "sys_agentExecutionId")]
    pub id: Uuid,
}

/// A page of runs, newest first.
#[derive(Debug, Serialize, JsonSchema)]
pub struct ExecutionList {
    /// The runs on this page.
    #[serde(rename = "sys_agentExecutions")]
    pub executions: Vec<AgentExecution>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The execution-log operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("listAgentExecutions", Service::AgentHub)
            .title("List agent runs")
            .who("any logged-in user, for their own runs; admins for everyone's")
            .describe(
                "Lists agent runs, newest first: agent, type, trigger source, user, input, output, tool call count, token \
                 usage, duration, status and error. Users see their own runs, admins everyone's. Filters: agentName \
                 (partial), agentType, source, userId, status. Paginated.",
            )
            .rest(Method::Get, "/agenthub-api/v1/agentexecutions")
            .access(Access::Authenticated)
            .reads(Action::List, "sys_agentExecutions")
            .handler(list_executions),
        Operation::build("getAgentExecution", Service::AgentHub)
            .title("Get an agent run")
            .who("the run's user, or an admin")
            .describe(
                "Returns one agent run with its tool-call trace (each call's tool, arguments, result, error flag and \
                 duration, in order); poll it to follow a run (status running until it ends). Only the run's user and \
                 admins may see it.",
            )
            .rest(Method::Get, "/agenthub-api/v1/agentexecution/{sys_agentExecutionId}")
            .access(Access::Authenticated)
            .reads(Action::Get, "sys_agentExecution")
            .handler(get_execution),
    ]
}

async fn list_executions(ctx: Ctx, input: ExecutionFilters) -> Result<ExecutionList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let caller = ctx.caller()?.user_id;
    let mut qb = haven_tools::sql::list_select(
        EXECUTION_COLUMNS,
        "agenthub.agent_executions e WHERE e.is_active",
    );
    if !ctx.is_admin() {
        qb.push(" AND e.user_id = ").push_bind(caller);
    }
    haven_tools::sql::text_filter(&mut qb, "e.agent_name", input.agent_name.as_ref());
    haven_tools::sql::enum_filter(&mut qb, "e.agent_type", input.agent_type.as_deref());
    haven_tools::sql::enum_filter(&mut qb, "e.source", input.source.as_deref());
    haven_tools::sql::enum_filter(&mut qb, "e.status", input.status.as_deref());
    haven_tools::sql::id_filter(&mut qb, "e.user_id", "userId", input.user_id.as_ref())?;
    let mut db = ctx.db().await?;
    let (executions, paging) =
        haven_tools::sql::fetch_page(&mut db, qb, "e.created_at DESC, e.id", page).await?;
    Ok(ExecutionList { executions, paging })
}

async fn get_execution(ctx: Ctx, input: ExecutionRef) -> Result<ExecutionDetail, ToolError> {
    let caller = ctx.caller()?.user_id;
    let admin = ctx.is_admin();
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {EXECUTION_COLUMNS}, t.trace AS tool_call_trace
         FROM agenthub.agent_executions e
         CROSS JOIN LATERAL (
            SELECT COALESCE(jsonb_agg(jsonb_build_object('seq', c.seq, 'toolName', c.tool_name,
                'arguments', c.arguments, 'result', c.result, 'isError', c.is_error,
                'durationMs', c.duration_ms, 'createdAt', c.created_at) ORDER BY c.seq), '[]') AS trace
            FROM agenthub.agent_tool_calls c WHERE c.execution_id = e.id) t
         WHERE e.id = $1 AND e.is_active AND ($2 OR e.user_id = $3)"
    );
    sqlx::query_as(&sql)
        .bind(input.id)
        .bind(admin)
        .bind(caller)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("agent execution"))
}
