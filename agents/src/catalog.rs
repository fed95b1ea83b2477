//! The tool catalog (spec `Sys_toolCatalog`): one row per tool an agent can be given — every
//! selectable registry operation and every design-time agent (agents call each other as tools) —
//! refreshed at startup so agents, admins and overrides can see which tools exist, with their JSON
//! Schemas.

use chrono::{DateTime, Utc};
use haven_tools::context::Ctx;
use haven_tools::error::ToolError;
use haven_tools::registry::{Access, Action, Method, Operation, Service};
use haven_tools::types::{Filter, Paging};
use haven_tools::Registry;

use crate::definitions::{AgentDefinition, NOT_SELECTABLE};
use crate::delegate;
use crate::runner::RunResult;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// One tool.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct ToolCatalogEntry {
    /// The entry's id.
    pub id: Uuid,
    /// The tool (operation) name, as agents and MCP clients call it.
    pub tool_name: String,
    /// The owning service's segment, e.g. `bookingmanagement`.
    pub service_name: String,
    /// What the tool does, written for an LLM.
    pub description: String,
    /// JSON Schema of the tool's parameters.
    pub parameters: Value,
    /// JSON Schema of the tool's result.
    pub output_schema: Value,
    /// Who may call it: public, authenticated, admin or superAdmin (an agent always calls with
    /// its caller's permissions).
    pub access: String,
    /// When the catalog last saw this tool in the registry.
    pub last_refreshed: DateTime<Utc>,
    /// System fields (isActive, recordVersion, createdAt, updatedAt, _owner).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: haven_tools::types::RecordMeta,
}

const ENTRY_COLUMNS: &str = "id, tool_name, service_name, description, parameters, output_schema,
    access, last_refreshed, is_active, record_version, created_at, updated_at, owner_id";

/// Makes the catalog match `registry` and the design-time `agents`: upserts one row per tool and
/// deactivates rows whose tool vanished, in one transaction; returns the number of active tools.
pub async fn refresh(
    pool: &PgPool,
    registry: &Registry,
    agents: &[AgentDefinition],
) -> Result<usize, sqlx::Error> {
    let run_result = schemars::schema_for!(RunResult).to_value();
    let operations = registry
        .all()
        .filter(|op| !NOT_SELECTABLE.contains(&op.name))
        .map(|op| {
            json!({
                "tool_name": op.name,
                "service_name": op.service.segment(),
                "description": op.description,
                "parameters": Value::Object((*op.input_schema).clone()),
                "output_schema": Value::Object((*op.output_schema).clone()),
                "access": op.access.as_str(),
            })
        });
    let delegates = agents.iter().map(|def| {
        json!({
            "tool_name": def.name,
            "service_name": Service::AgentHub.segment(),
            "description": delegate::catalog_description(def),
            "parameters": Value::Object(delegate::parameters()),
            "output_schema": run_result,
            "access": Access::Authenticated.as_str(),
        })
    });
    let rows: Vec<Value> = operations.chain(delegates).collect();
    let names: Vec<String> = rows
        .iter()
        .filter_map(|r| r["tool_name"].as_str().map(String::from))
        .collect();
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO agenthub.tool_catalog AS c (tool_name, service_name, description, parameters, output_schema, access)
         SELECT tool_name, service_name, description, parameters, output_schema, access
         FROM jsonb_to_recordset($1) AS r(tool_name text, service_name text, description text,
              parameters jsonb, output_schema jsonb, access text)
         ON CONFLICT (tool_name) DO UPDATE SET
            service_name = EXCLUDED.service_name, description = EXCLUDED.description,
            parameters = EXCLUDED.parameters, output_schema = EXCLUDED.output_schema,
            access = EXCLUDED.access, last_refreshed = now(), is_active = true,
            record_version = c.record_version + CASE WHEN
                (c.service_name, c.description, c.parameters, c.output_schema, c.access, c.is_active)
                IS DISTINCT FROM (EXCLUDED.service_name, EXCLUDED.description, EXCLUDED.parameters,
                                  EXCLUDED.output_schema, EXCLUDED.access, true)
                THEN 1 ELSE 0 END,
            updated_at = CASE WHEN
                (c.service_name, c.description, c.parameters, c.output_schema, c.access, c.is_active)
                IS DISTINCT FROM (EXCLUDED.service_name, EXCLUDED.description, EXCLUDED.parameters,
                                  EXCLUDED.output_schema, EXCLUDED.access, true)
                THEN now() ELSE c.updated_at END",
    )
    .bind(Value::Array(rows))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE agenthub.tool_catalog SET is_active = false, record_version = record_version + 1,
            updated_at = now(), last_refreshed = now()
         WHERE is_active AND NOT (tool_name = ANY($1))",
    )
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(names.len())
}

/// Input of `listToolCatalog`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogFilters {
    /// Partial, case-insensitive service name match (e.g. `booking`).
    pub service_name: Option<Filter>,
    /// Partial, case-insensitive tool name match (e.g. `reservation`).
    pub tool_name: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// Identifies one catalog entry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryRef {
    /// The entry's id.
    #[serde(rename = "sys_toolCatalogId")]
    pub id: Uuid,
}

/// A page of catalog entries.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CatalogList {
    /// The entries on this page, by tool name.
    #[serde(rename = "sys_toolCatalogs")]
    pub entries: Vec<ToolCatalogEntry>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The catalog operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("listToolCatalog", Service::AgentHub)
            .title("List the tool catalog")
            .describe(
                "Lists the tools agents can be given (every Haven operation an agent may call, and every agent, which other \
                 agents can call with one `input` message), by name, with service, description, JSON \
                 Schema of parameters and result, access rule and lastRefreshed. Filters: serviceName, toolName (partial). \
                 Paginated. The names are what an agent override's selectedTools takes.",
            )
            .rest(Method::Get, "/agenthub-api/v1/toolcatalog")
            .access(Access::Authenticated)
            .reads(Action::List, "sys_toolCatalogs")
            .handler(list_entries),
        Operation::build("getToolCatalogEntry", Service::AgentHub)
            .title("Get a tool catalog entry")
            .describe("Returns one active tool catalog entry by id, with the tool's parameter and result JSON Schemas.")
            .rest(Method::Get, "/agenthub-api/v1/toolcatalogentry/{sys_toolCatalogId}")
            .access(Access::Authenticated)
            .reads(Action::Get, "sys_toolCatalog")
            .handler(get_entry),
    ]
}

async fn list_entries(ctx: Ctx, input: CatalogFilters) -> Result<CatalogList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb =
        haven_tools::sql::list_select(ENTRY_COLUMNS, "agenthub.tool_catalog WHERE is_active");
    haven_tools::sql::text_filter(&mut qb, "service_name", input.service_name.as_ref());
    haven_tools::sql::text_filter(&mut qb, "tool_name", input.tool_name.as_ref());
    let mut db = ctx.db().await?;
    let (entries, paging) =
        haven_tools::sql::fetch_page(&mut db, qb, "tool_name, id", page).await?;
    Ok(CatalogList { entries, paging })
}

async fn get_entry(ctx: Ctx, input: EntryRef) -> Result<ToolCatalogEntry, ToolError> {
    let mut db = ctx.db().await?;
    let sql =
        format!("SELECT {ENTRY_COLUMNS} FROM agenthub.tool_catalog WHERE id = $1 AND is_active");
    sqlx::query_as(&sql)
        .bind(input.id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("tool catalog entry"))
}
