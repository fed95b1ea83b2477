//! Runtime overrides of design-time agents (spec `Sys_agentOverride`, admin only) and the agents'
//! effective configuration (`listAgents`, `getAgent`): the definition with every non-null override
//! field laid on top. A `guardrails` override replaces the design guardrails as a whole object.

use std::collections::HashMap;

use haven_tools::context::Ctx;
use haven_tools::error::{on_constraint, ErrorKind, ToolError};
use haven_tools::registry::{Access, Action, Flow, Method, Operation, Service};
use haven_tools::types::{Choice, Paging, Text};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize};
use sqlx::types::Json;
use sqlx::{PgPool, QueryBuilder};
use uuid::Uuid;

haven_tools::choices!(
    /// An agent's `responseFormat`.
    ResponseFormats = ["text", "json"]
);

use crate::definitions::{
    self, AgentDefinition, Guardrails, MaxTokens, Provider, ResponseFormat, Temperature,
};

/// A stored override; null fields use the design default.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AgentOverride {
    /// The override's id.
    pub id: Uuid,
    /// The design-time agent it applies to.
    pub agent_name: String,
    /// Provider override.
    pub provider: Option<String>,
    /// Model override.
    pub model: Option<String>,
    /// System prompt override.
    pub system_prompt: Option<String>,
    /// Temperature override (0–2).
    pub temperature: Option<f64>,
    /// Max tokens override.
    pub max_tokens: Option<i32>,
    /// Response format override (`text` or `json`).
    #[schemars(with = "Option<Choice<ResponseFormats>>")]
    pub response_format: Option<String>,
    /// Tool names (from the tool catalog) replacing the design selection.
    #[schemars(with = "Option<Vec<String>>")]
    pub selected_tools: Option<Json<Vec<String>>>,
    /// Guardrails replacing the design guardrails as a whole.
    #[schemars(with = "Option<Guardrails>")]
    pub guardrails: Option<Json<Guardrails>>,
    /// Enables or disables the agent (null: the design default).
    pub enabled: Option<bool>,
    /// The admin who last changed it.
    pub updated_by: Option<Uuid>,
    /// System fields (isActive, recordVersion, createdAt, updatedAt, _owner).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: haven_tools::types::RecordMeta,
}

const OVERRIDE_COLUMNS: &str = "id, agent_name, provider, model, system_prompt,
    temperature::float8 AS temperature, max_tokens, response_format, selected_tools, guardrails,
    enabled, updated_by, is_active, record_version, created_at, updated_at, owner_id";

const CONSTRAINTS: &[(&str, ErrorKind, &str)] = &[(
    "agent_overrides_agent_key",
    ErrorKind::Conflict,
    "this agent already has an override: update it (updateAgentOverride) or delete it first",
)];

/// Input of `createAgentOverride`; `enabled` is set only through `updateAgentOverride`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewOverride {
    /// The design-time agent to override (see listAgents).
    pub agent_name: Text<64>,
    /// Provider: openai, ollama, vllm, openrouter or anthropic.
    pub provider: Option<Provider>,
    /// Model name at the provider.
    pub model: Option<Text<200>>,
    /// System prompt replacing the design prompt.
    pub system_prompt: Option<Text<20000>>,
    /// Sampling temperature, 0 to 2.
    pub temperature: Option<Temperature>,
    /// Most tokens per completion, 1 to 32000.
    pub max_tokens: Option<MaxTokens>,
    /// `text` or `json`.
    pub response_format: Option<ResponseFormat>,
    /// Tool names from the tool catalog (listToolCatalog) the agent may call, replacing its design selection.
    pub selected_tools: Option<Vec<Text<64>>>,
    /// Guardrails replacing the design guardrails as a whole: maxToolCalls (1–100), timeoutSeconds (1–600), maxTokenBudget (1–1000000).
    pub guardrails: Option<Guardrails>,
}

/// Input of `updateAgentOverride`: an absent field is left alone, an explicit `null` clears it
/// (the agent falls back to the design default for that field).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverridePatch {
    /// The override to change.
    #[serde(rename = "sys_agentOverrideId")]
    pub id: Uuid,
    /// Provider: openai, ollama, vllm, openrouter or anthropic; null clears.
    #[serde(default, deserialize_with = "patch")]
    pub provider: Option<Option<Provider>>,
    /// Model name; null clears.
    #[serde(default, deserialize_with = "patch")]
    pub model: Option<Option<Text<200>>>,
    /// System prompt; null clears.
    #[serde(default, deserialize_with = "patch")]
    pub system_prompt: Option<Option<Text<20000>>>,
    /// Temperature 0–2; null clears.
    #[serde(default, deserialize_with = "patch")]
    pub temperature: Option<Option<Temperature>>,
    /// Max tokens 1–32000; null clears.
    #[serde(default, deserialize_with = "patch")]
    pub max_tokens: Option<Option<MaxTokens>>,
    /// `text` or `json`; null clears.
    #[serde(default, deserialize_with = "patch")]
    pub response_format: Option<Option<ResponseFormat>>,
    /// Tool names from the tool catalog; null clears.
    #[serde(default, deserialize_with = "patch")]
    pub selected_tools: Option<Option<Vec<Text<64>>>>,
    /// Whole guardrails object; null clears.
    #[serde(default, deserialize_with = "patch")]
    pub guardrails: Option<Option<Guardrails>>,
    /// Enable or disable the agent; null falls back to the design default.
    #[serde(default, deserialize_with = "patch")]
    pub enabled: Option<Option<bool>>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Tells a present `null` (Some(None)) from an absent field (None).
fn patch<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Identifies one override.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OverrideRef {
    /// The override's id.
    #[serde(rename = "sys_agentOverrideId")]
    pub id: Uuid,
}

/// Input of `listAgentOverrides` (it takes no filters).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OverrideFilters {
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of overrides.
#[derive(Debug, Serialize, JsonSchema)]
pub struct OverrideList {
    /// The overrides on this page.
    #[serde(rename = "sys_agentOverrides")]
    pub overrides: Vec<AgentOverride>,
    /// Where this page sits.
    pub paging: Paging,
}

/// An agent's effective configuration: its definition with its override laid on top.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentConfig {
    /// The agent's name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The LLM provider.
    pub provider: Provider,
    /// The model.
    pub model: String,
    /// The system prompt (shown to admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// Sampling temperature.
    pub temperature: f64,
    /// Most tokens per completion.
    pub max_tokens: u32,
    /// `text` or `json`.
    pub response_format: ResponseFormat,
    /// The tools it may call (with the caller's own permissions).
    pub tools: Vec<String>,
    /// Run limits.
    pub guardrails: Guardrails,
    /// Whether it may be run.
    pub enabled: bool,
    /// The active override's id, if any.
    pub override_id: Option<Uuid>,
    /// The fields the override changed (camelCase names), empty without an override.
    pub overridden_fields: Vec<String>,
}

/// The effective configuration: every non-null field of `ov` replaces the design value (a
/// `guardrails` override replaces the whole guardrails object, not single limits).
pub fn effective(def: &AgentDefinition, ov: Option<&AgentOverride>) -> AgentConfig {
    let mut cfg = AgentConfig {
        name: def.name.clone(),
        description: def.description.clone(),
        provider: def.provider,
        model: def.model.clone(),
        system_prompt: Some(def.system_prompt.clone()),
        temperature: def.temperature.get(),
        max_tokens: def.max_tokens.get(),
        response_format: def.response_format,
        tools: def.tools.clone(),
        guardrails: def.guardrails,
        enabled: def.enabled,
        override_id: None,
        overridden_fields: Vec::new(),
    };
    let Some(ov) = ov else { return cfg };
    cfg.override_id = Some(ov.id);
    let mut changed = |field: &str, applied: bool| {
        if applied {
            cfg.overridden_fields.push(field.to_string());
        }
    };
    // Stored values passed the same checks as the input types, so parsing back cannot fail; a
    // value that somehow does not parse is ignored (the design default stays).
    let provider = ov.provider.as_deref().and_then(parse_enum::<Provider>);
    let format = ov
        .response_format
        .as_deref()
        .and_then(parse_enum::<ResponseFormat>);
    changed("provider", provider.is_some());
    changed("model", ov.model.is_some());
    changed("systemPrompt", ov.system_prompt.is_some());
    changed("temperature", ov.temperature.is_some());
    changed("maxTokens", ov.max_tokens.is_some());
    changed("responseFormat", format.is_some());
    changed("selectedTools", ov.selected_tools.is_some());
    changed("guardrails", ov.guardrails.is_some());
    changed("enabled", ov.enabled.is_some());
    cfg.provider = provider.unwrap_or(cfg.provider);
    cfg.response_format = format.unwrap_or(cfg.response_format);
    if let Some(model) = &ov.model {
        cfg.model = model.clone();
    }
    if let Some(prompt) = &ov.system_prompt {
        cfg.system_prompt = Some(prompt.clone());
    }
    cfg.temperature = ov.temperature.unwrap_or(cfg.temperature);
    cfg.max_tokens = ov.max_tokens.map_or(cfg.max_tokens, |m| m as u32);
    if let Some(Json(tools)) = &ov.selected_tools {
        cfg.tools = tools.clone();
    }
    if let Some(Json(guardrails)) = ov.guardrails {
        cfg.guardrails = guardrails;
    }
    cfg.enabled = ov.enabled.unwrap_or(cfg.enabled);
    cfg
}

fn parse_enum<T: serde::de::DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}

/// Identifies one agent.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentRef {
    /// The agent's name (see listAgents).
    pub agent_name: String,
}

/// Input of `listAgents`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AgentFilters {
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of agents.
#[derive(Debug, Serialize, JsonSchema)]
pub struct AgentList {
    /// The agents on this page, by name.
    pub agents: Vec<AgentConfig>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The override and agent operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createAgentOverride", Service::AgentHub)
            .title("Override an agent's configuration (admin)")
            .describe(
                "Creates the runtime override of a design-time agent (agentName from listAgents): any of provider, model, \
                 systemPrompt, temperature, maxTokens, responseFormat, selectedTools (tool names from listToolCatalog) and \
                 guardrails (replaces the whole object). Omitted fields keep the design default; enabled is set only by \
                 updateAgentOverride. One active override per agent (409 otherwise). Returns the override.",
            )
            .rest(Method::Post, "/agenthub-api/v1/agentoverride")
            .access(Access::Admin)
            .creates("sys_agentOverride")
            .handler(create_override),
        Operation::build("updateAgentOverride", Service::AgentHub)
            .title("Change an agent override (admin)")
            .describe(
                "Changes an agent override: omitted fields stay, an explicit null clears a field so the agent falls back to \
                 its design default, enabled turns the agent on or off. agentName cannot change. Returns the override.",
            )
            .rest(Method::Patch, "/agenthub-api/v1/agentoverride/{sys_agentOverrideId}")
            .access(Access::Admin)
            .updates("sys_agentOverride")
            .handler(update_override),
        Operation::build("deleteAgentOverride", Service::AgentHub)
            .title("Delete an agent override (admin)")
            .describe(
                "Soft-deletes an agent override; the agent runs with its design-time configuration again. Returns the \
                 override's last state (isActive false).",
            )
            .rest(Method::Delete, "/agenthub-api/v1/agentoverride/{sys_agentOverrideId}")
            .access(Access::Admin)
            .deletes("sys_agentOverride")
            .handler(delete_override),
        Operation::build("getAgentOverride", Service::AgentHub)
            .title("Get an agent override (admin)")
            .describe("Returns one active agent override by id, null fields meaning the design default.")
            .rest(Method::Get, "/agenthub-api/v1/agentoverride/{sys_agentOverrideId}")
            .access(Access::Admin)
            .reads(Action::Get, "sys_agentOverride")
            .handler(get_override),
        Operation::build("listAgentOverrides", Service::AgentHub)
            .title("List agent overrides (admin)")
            .describe("Lists the active agent overrides by agent name. Paginated. See listAgents for the effective configurations.")
            .rest(Method::Get, "/agenthub-api/v1/agentoverrides")
            .access(Access::Admin)
            .reads(Action::List, "sys_agentOverrides")
            .handler(list_overrides),
        Operation::build("listAgents", Service::AgentHub)
            .core(Flow::Account, 40)
            .title("List agents")
            .describe(
                "Lists the design-time agents with their effective configuration (design defaults with the admin override \
                 applied): provider, model, temperature, maxTokens, responseFormat, tools, guardrails, enabled. Admins see \
                 every agent and its system prompt; other users see enabled agents without the prompt.",
            )
            .rest(Method::Get, "/agenthub-api/v1/agents")
            .access(Access::Authenticated)
            .reads(Action::List, "agents")
            .handler(list_agents),
        Operation::build("getAgent", Service::AgentHub)
            .title("Get an agent")
            .who("any logged-in user for enabled agents (without the prompt); admins for every agent")
            .describe(
                "Returns one design-time agent's effective configuration by name (design defaults with the admin override \
                 applied, and which fields the override changed). Non-admins see only enabled agents, without the prompt.",
            )
            .rest(Method::Get, "/agenthub-api/v1/agents/{agentName}")
            .access(Access::Authenticated)
            .reads(Action::Get, "agent")
            .handler(get_agent),
    ]
}

/// Refuses tool names that are not active catalog entries, naming the first one.
async fn check_tools(ctx: &Ctx, tools: &[Text<64>]) -> Result<(), ToolError> {
    let names: Vec<&str> = tools.iter().map(Text::as_str).collect();
    let mut db = ctx.db().await?;
    let missing: Option<String> = sqlx::query_scalar(
        "SELECT t FROM unnest($1::text[]) WITH ORDINALITY AS u(t, n)
         WHERE NOT EXISTS (SELECT 1 FROM agenthub.tool_catalog c WHERE c.tool_name = u.t AND c.is_active)
         ORDER BY n LIMIT 1",
    )
    .bind(&names)
    .fetch_optional(&mut *db)
    .await?;
    match missing {
        Some(name) => Err(ToolError::field(
            "selectedTools",
            format!("`{name}` is not a tool in the tool catalog (see listToolCatalog)"),
        )),
        None => Ok(()),
    }
}

fn tool_names(tools: &[Text<64>]) -> Json<Vec<String>> {
    Json(tools.iter().map(|t| t.as_str().to_string()).collect())
}

async fn create_override(ctx: Ctx, input: NewOverride) -> Result<AgentOverride, ToolError> {
    let name = input.agent_name.as_str();
    if definitions::find(name)?.is_none() {
        return Err(ToolError::field(
            "agentName",
            format!("`{name}` is not a design-time agent (see listAgents)"),
        ));
    }
    if let Some(tools) = &input.selected_tools {
        check_tools(&ctx, tools).await?;
    }
    let caller = ctx.user_id();
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO agenthub.agent_overrides (agent_name, provider, model, system_prompt, temperature, max_tokens,
            response_format, selected_tools, guardrails, updated_by, owner_id)
         VALUES ($1, $2, $3, $4, $5::numeric, $6, $7, $8, $9, $10, $10) RETURNING {OVERRIDE_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(name)
        .bind(input.provider.map(Provider::as_str))
        .bind(input.model.as_ref().map(Text::as_str))
        .bind(input.system_prompt.as_ref().map(Text::as_str))
        .bind(input.temperature.map(Temperature::get))
        .bind(input.max_tokens.map(|m| m.get() as i32))
        .bind(input.response_format.map(ResponseFormat::as_str))
        .bind(input.selected_tools.as_deref().map(tool_names))
        .bind(input.guardrails.map(Json))
        .bind(caller)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| on_constraint(e, CONSTRAINTS))
}

/// Loads an active override, optionally locking it.
async fn load_override(ctx: &Ctx, id: Uuid, lock: bool) -> Result<AgentOverride, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {OVERRIDE_COLUMNS} FROM agenthub.agent_overrides WHERE id = $1 AND is_active{}",
        if lock { " FOR UPDATE" } else { "" }
    );
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("agent override"))
}

async fn update_override(ctx: Ctx, input: OverridePatch) -> Result<AgentOverride, ToolError> {
    let current = load_override(&ctx, input.id, true).await?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "agent override",
    )?;
    if let Some(Some(tools)) = &input.selected_tools {
        check_tools(&ctx, tools).await?;
    }
    let mut qb = QueryBuilder::new(
        "UPDATE agenthub.agent_overrides SET record_version = record_version + 1, updated_at = now(), updated_by = ",
    );
    qb.push_bind(ctx.user_id());
    if let Some(v) = input.provider {
        qb.push(", provider = ").push_bind(v.map(Provider::as_str));
    }
    if let Some(v) = input.model {
        qb.push(", model = ").push_bind(v.map(String::from));
    }
    if let Some(v) = input.system_prompt {
        qb.push(", system_prompt = ").push_bind(v.map(String::from));
    }
    if let Some(v) = input.temperature {
        qb.push(", temperature = ")
            .push_bind(v.map(Temperature::get))
            .push("::numeric");
    }
    if let Some(v) = input.max_tokens {
        qb.push(", max_tokens = ")
            .push_bind(v.map(|m| m.get() as i32));
    }
    if let Some(v) = input.response_format {
        qb.push(", response_format = ")
            .push_bind(v.map(ResponseFormat::as_str));
    }
    if let Some(v) = input.selected_tools {
        qb.push(", selected_tools = ")
            .push_bind(v.as_deref().map(tool_names));
    }
    if let Some(v) = input.guardrails {
        qb.push(", guardrails = ").push_bind(v.map(Json));
    }
    if let Some(v) = input.enabled {
        qb.push(", enabled = ").push_bind(v);
    }
    qb.push(" WHERE id = ").push_bind(input.id);
    qb.push(format!(" RETURNING {OVERRIDE_COLUMNS}"));
    let mut db = ctx.db().await?;
    Ok(qb.build_query_as().fetch_one(&mut *db).await?)
}

async fn delete_override(ctx: Ctx, input: OverrideRef) -> Result<AgentOverride, ToolError> {
    load_override(&ctx, input.id, true).await?;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE agenthub.agent_overrides SET is_active = false, record_version = record_version + 1,
            updated_at = now(), updated_by = $2
         WHERE id = $1 RETURNING {OVERRIDE_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(input.id)
        .bind(ctx.user_id())
        .fetch_one(&mut *db)
        .await?)
}

async fn get_override(ctx: Ctx, input: OverrideRef) -> Result<AgentOverride, ToolError> {
    load_override(&ctx, input.id, false).await
}

async fn list_overrides(ctx: Ctx, input: OverrideFilters) -> Result<OverrideList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let qb =
        haven_tools::sql::list_select(OVERRIDE_COLUMNS, "agenthub.agent_overrides WHERE is_active");
    let mut db = ctx.db().await?;
    let (overrides, paging) =
        haven_tools::sql::fetch_page(&mut db, qb, "agent_name, id", page).await?;
    Ok(OverrideList { overrides, paging })
}

/// The effective configuration of every design-time agent the caller may see, in file order:
/// admins see all (with prompts), others only enabled agents without prompts.
pub async fn effective_agents(ctx: &Ctx) -> Result<Vec<AgentConfig>, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!("SELECT {OVERRIDE_COLUMNS} FROM agenthub.agent_overrides WHERE is_active");
    let overrides: Vec<AgentOverride> = sqlx::query_as(&sql).fetch_all(&mut *db).await?;
    let by_name: HashMap<&str, &AgentOverride> = overrides
        .iter()
        .map(|o| (o.agent_name.as_str(), o))
        .collect();
    let admin = ctx.is_admin();
    Ok(definitions::all()?
        .iter()
        .map(|def| effective(def, by_name.get(def.name.as_str()).copied()))
        .filter(|cfg| admin || cfg.enabled)
        .map(|mut cfg| {
            if !admin {
                cfg.system_prompt = None;
            }
            cfg
        })
        .collect())
}

/// The full effective configuration (prompt included) of the design-time agent `name`, for the
/// run loop; None when no such agent exists.
pub async fn effective_agent(pool: &PgPool, name: &str) -> Result<Option<AgentConfig>, ToolError> {
    let Some(def) = definitions::find(name)? else {
        return Ok(None);
    };
    let sql = format!(
        "SELECT {OVERRIDE_COLUMNS} FROM agenthub.agent_overrides WHERE is_active AND agent_name = $1"
    );
    let ov: Option<AgentOverride> = sqlx::query_as(&sql).bind(name).fetch_optional(pool).await?;
    Ok(Some(effective(def, ov.as_ref())))
}

async fn list_agents(ctx: Ctx, input: AgentFilters) -> Result<AgentList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut agents = effective_agents(&ctx).await?;
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    let total = agents.len() as i64;
    let agents = agents
        .into_iter()
        .skip(page.offset() as usize)
        .take(page.limit() as usize)
        .collect();
    Ok(AgentList {
        agents,
        paging: page.paging(total),
    })
}

async fn get_agent(ctx: Ctx, input: AgentRef) -> Result<AgentConfig, ToolError> {
    effective_agents(&ctx)
        .await?
        .into_iter()
        .find(|a| a.name == input.agent_name)
        .ok_or_else(|| ToolError::not_found("agent"))
}
