//! Reading the audit trail, and admin-recorded events. Every mutating operation writes its row
//! through `audit::record`; rows are append-only (a database trigger refuses UPDATE and DELETE).
//! Only admins read them.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::principal::Credential;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter, Filter, Name, Paging, RecordMeta};

crate::choices!(
    /// The face a call arrived through, as an audit row records it.
    Faces = ["rest", "mcp", "agent", "internal"]
);
crate::choices!(
    /// How the performer proved who they were.
    CredentialKinds = ["session", "apiKey", "oauth"]
);

/// One audit row.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AuditLog {
    /// The row's id.
    pub id: Uuid,
    /// The user who acted (null: the system).
    pub performed_by: Option<Uuid>,
    /// The object acted on.
    pub object_id: Option<Uuid>,
    /// Free-form details (for operations: the operation and request id).
    pub details: Option<Value>,
    /// The caller's IP address, when known.
    pub ip_address: Option<String>,
    /// The kind of object acted on, e.g. `reservation`, `dispute`.
    pub action_object: String,
    /// What was done: the operation's name, or an admin-recorded action.
    pub action_type: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// The operation that wrote the row (null for admin-recorded events).
    pub operation: Option<String>,
    /// The face the call came through: `rest`, `mcp`, `agent` (a tool call of an agent run) or
    /// `internal`.
    #[schemars(with = "Option<Choice<Faces>>")]
    pub face: Option<String>,
    /// The request id, to correlate with the server's logs.
    pub request_id: Option<String>,
    /// How the performer signed in: `session` (access token), `apiKey` or `oauth` (a connector).
    #[schemars(with = "Option<Choice<CredentialKinds>>")]
    pub credential_kind: Option<String>,
    /// The API key used, when the call came with one.
    pub api_key_id: Option<Uuid>,
    /// The OAuth client (connector) the call came through, when any.
    pub oauth_client_id: Option<String>,
    /// The agent run that made the call, when an agent did.
    pub agent_execution_id: Option<Uuid>,
    /// What the call changed: `table`, `operation` and the changed `fields` of the object (each
    /// `{before, after}`; personal values only say that they changed), plus the `related` rows
    /// it touched.
    pub changes: Option<Value>,
    /// True for rows an admin recorded with createAuditLog.
    pub recorded_by_admin: bool,
    /// System fields; `_owner`: the performer.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const COLUMNS: &str =
    "id, performed_by, object_id, details, ip_address, action_object, action_type,
    occurred_at, operation, face, request_id, credential_kind, api_key_id, oauth_client_id,
    agent_execution_id, changes, recorded_by_admin, is_active, record_version, created_at,
    updated_at, performed_by AS owner_id";

/// Input of `getAuditLog`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditLogRef {
    /// The row's id.
    pub audit_log_id: Uuid,
}

/// Input of `listAuditLogs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditLogFilters {
    /// Only rows performed by these users.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub performed_by: Option<Filter>,
    /// Only rows about these objects.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub object_id: Option<Filter>,
    /// Object kind, partial and case-insensitive (e.g. `reserv`).
    pub action_object: Option<Filter>,
    /// Action, partial and case-insensitive (e.g. `cancel`).
    pub action_type: Option<Filter>,
    /// Day it happened (UTC): `2027-03-10`, `$today`, or ranges `$gte-2027-03-01`, `$lt-…`.
    #[schemars(with = "Option<crate::types::DateFilter>")]
    pub occurred_at: Option<Filter>,
    /// Only calls through these faces.
    pub face: Option<EnumFilter<Faces>>,
    /// Only rows of this agent run.
    pub agent_execution_id: Option<Uuid>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of audit rows, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuditLogList {
    /// The rows on this page.
    pub audit_logs: Vec<AuditLog>,
    /// Where this page sits.
    pub paging: Paging,
}

/// Input of `createAuditLog`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewAuditLog {
    /// The kind of object the event concerns, e.g. `listing` or `user`.
    pub action_object: Name,
    /// What happened, e.g. `manualReview` or `phoneVerifiedByStaff`.
    pub action_type: Name,
    /// The object the event concerns, if any.
    pub object_id: Option<Uuid>,
    /// Free-form details (a JSON object, at most 10 000 characters).
    pub details: Option<serde_json::Map<String, Value>>,
}

/// The audit-log operations (no update, no delete: the trail is append-only).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("getAuditLog", Service::PlatformAdmin)
            .title("Get an audit-log row")
            .describe(
                "Returns one audit row by id: who acted (performedBy, credentialKind, apiKeyId, \
                 oauthClientId, agentExecutionId), through which face (rest, mcp, agent) and request, \
                 which operation on which object, and the before/after summary of what changed.",
            )
            .rest(Method::Get, "/platformadmin-api/v1/auditlogs/{auditLogId}")
            .access(Access::Admin)
            .reads(Action::Get, "auditLog")
            .handler(get_log),
        Operation::build("listAuditLogs", Service::PlatformAdmin)
            .title("List audit-log rows")
            .describe(
                "Lists audit rows, newest first. Filter by performedBy, objectId, actionObject and \
                 actionType (partial, case-insensitive), occurredAt (dates and ranges), face and \
                 agentExecutionId. Every change made through any face is here; rows are never \
                 changed or deleted. Paginated.",
            )
            .rest(Method::Get, "/platformadmin-api/v1/auditlogs")
            .access(Access::Admin)
            .reads(Action::List, "auditLogs")
            .handler(list_logs),
        Operation::build("createAuditLog", Service::PlatformAdmin)
            .title("Record an event in the audit log")
            .describe(
                "Records an event that happened outside Haven's operations (a phone call, a manual \
                 check) in the audit log. The server sets performedBy (you), ipAddress, occurredAt \
                 and the face; the row can never be changed or deleted afterwards. Returns the row.",
            )
            .rest(Method::Post, "/platformadmin-api/v1/auditlogs")
            .access(Access::Admin)
            .creates("auditLog")
            .handler(create_log),
    ]
}

async fn get_log(ctx: Ctx, input: AuditLogRef) -> Result<AuditLog, ToolError> {
    let mut db = ctx.db().await?;
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM platformadmin.audit_logs WHERE id = $1"
    ))
    .bind(input.audit_log_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or_else(|| ToolError::not_found("audit log"))
}

async fn list_logs(ctx: Ctx, input: AuditLogFilters) -> Result<AuditLogList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(COLUMNS, "platformadmin.audit_logs WHERE true");
    sql::id_filter(
        &mut qb,
        "performed_by",
        "performedBy",
        input.performed_by.as_ref(),
    )?;
    sql::id_filter(&mut qb, "object_id", "objectId", input.object_id.as_ref())?;
    sql::text_filter(&mut qb, "action_object", input.action_object.as_ref());
    sql::text_filter(&mut qb, "action_type", input.action_type.as_ref());
    sql::date_filter(
        &mut qb,
        "(occurred_at AT TIME ZONE 'UTC')::date",
        "occurredAt",
        input.occurred_at.as_ref(),
    )?;
    sql::enum_filter(&mut qb, "face", input.face.as_deref());
    if let Some(run) = input.agent_execution_id {
        qb.push(" AND agent_execution_id = ");
        qb.push_bind(run);
    }
    let mut db = ctx.db().await?;
    let (audit_logs, paging) =
        sql::fetch_page(&mut db, qb, "occurred_at DESC, id DESC", page).await?;
    Ok(AuditLogList { audit_logs, paging })
}

async fn create_log(ctx: Ctx, input: NewAuditLog) -> Result<AuditLog, ToolError> {
    let caller = ctx.caller()?.clone();
    let details = input.details.map(Value::Object);
    if details
        .as_ref()
        .is_some_and(|d| d.to_string().chars().count() > 10_000)
    {
        return Err(ToolError::field(
            "details",
            "must be at most 10000 characters of JSON",
        ));
    }
    let (session, api_key) = match caller.credential {
        Credential::Session(id) | Credential::SecondFactorPending(id) => (Some(id), None),
        Credential::ApiKey(id) => (None, Some(id)),
    };
    let details = details.unwrap_or_else(|| json!({}));
    let mut db = ctx.db().await?;
    Ok(sqlx::query_as(&format!(
        "INSERT INTO platformadmin.audit_logs (performed_by, object_id, details, ip_address,
             action_object, action_type, face, request_id, credential_kind, session_id, api_key_id,
             agent_execution_id, recorded_by_admin)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8,
             CASE WHEN $10::uuid IS NOT NULL THEN 'apiKey' ELSE 'session' END, $9, $10, $11, true)
         RETURNING {COLUMNS}"
    ))
    .bind(caller.user_id)
    .bind(input.object_id)
    .bind(details)
    .bind(ctx.ip.as_deref())
    .bind(input.action_object.as_str())
    .bind(input.action_type.as_str())
    .bind(ctx.transport.as_str())
    .bind(&ctx.request_id)
    .bind(session)
    .bind(api_key)
    .bind(ctx.agent_execution)
    .fetch_one(&mut *db)
    .await?)
}
