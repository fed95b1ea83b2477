//! GDPR requests: a user (for themself) or an admin asks for an `export` of everything Haven holds
//! about the user, a `delete` (erasure), or records a `consent`. Each request is a
//! `platformadmin.gdpr_actions` row plus a durable job written in the same transaction; the
//! [`worker`] processes jobs (any replica, `SKIP LOCKED`) and moves the request from `pending` to
//! `complete` or `failed`. Admins record status changes by hand; nothing is ever deleted.

pub mod sources;
pub mod worker;

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter, Filter, Name, Paging, RecordMeta};

crate::choices!(
    /// What a GDPR request asks for.
    GdprTypes = ["export", "delete", "consent"]
);
crate::choices!(
    /// A GDPR request's processing status.
    GdprStatuses = ["pending", "complete", "failed"]
);

/// The notification channel that wakes the workers when a request is queued.
pub const CHANNEL: &str = "haven_gdpr";

/// A GDPR request and its status.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct GdprAction {
    /// The request's id.
    pub id: Uuid,
    /// The data subject.
    pub user_id: Uuid,
    /// `export`, `delete` or `consent`.
    #[schemars(with = "Choice<GdprTypes>")]
    pub action_type: String,
    /// `pending` until processed, then `complete` or `failed`.
    #[schemars(with = "Choice<GdprStatuses>")]
    pub status: String,
    /// Position of `status`'s value in its list of values (0-based).
    #[serde(rename = "status_idx")]
    pub status_idx: i32,
    /// Who asked (the subject, or an admin).
    pub requested_by: Uuid,
    /// When it was asked.
    pub requested_at: DateTime<Utc>,
    /// When processing finished.
    pub processed_at: Option<DateTime<Utc>>,
    /// Why it failed, when it did.
    pub failure_reason: Option<String>,
    /// For `consent`: the purpose and whether consent was granted.
    pub consent: Option<Value>,
    /// For `export`: whether the document is ready to download (getGdprExport).
    pub export_ready: bool,
    /// System fields; `_owner`: the data subject.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const COLUMNS: &str = "g.id, g.user_id, g.action_type, g.status,
    array_position(ARRAY['pending','complete','failed'], g.status) - 1 AS status_idx,
    g.requested_by, g.requested_at, g.processed_at, g.failure_reason, g.consent,
    EXISTS (SELECT 1 FROM platformadmin.gdpr_exports x WHERE x.gdpr_action_id = g.id) AS export_ready,
    g.is_active, g.record_version, g.created_at, g.updated_at, g.owner_id";

/// What a `consent` request records.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsentInput {
    /// What the consent is for, e.g. `marketingEmails` or `analytics`.
    pub purpose: Name,
    /// `true` to give consent, `false` to withdraw it.
    pub granted: bool,
}

/// Input of `createGdprAction`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewGdprAction {
    /// `export` (a JSON document of all your data), `delete` (erase your personal data and close
    /// the account) or `consent` (record a consent given or withdrawn).
    pub action_type: Choice<GdprTypes>,
    /// The data subject: yourself (the default); admins may name any user.
    pub user_id: Option<Uuid>,
    /// Required with `consent`: the purpose and whether it is granted.
    pub consent: Option<ConsentInput>,
}

/// Input of `updateGdprAction`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GdprActionPatch {
    /// The request to change.
    pub gdpr_action_id: Uuid,
    /// `failed` stops a pending request; `pending` queues a failed one again. `complete` is set
    /// by the worker when it has processed the request.
    pub status: Option<Choice<GdprStatuses>>,
    /// When processing finished (not in the future).
    pub processed_at: Option<DateTime<Utc>>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Input of `listGdprActions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GdprActionFilters {
    /// Admins: only requests about these users.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub user_id: Option<Filter>,
    /// Only these kinds.
    pub action_type: Option<EnumFilter<GdprTypes>>,
    /// Only these statuses.
    pub status: Option<EnumFilter<GdprStatuses>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of GDPR requests, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GdprActionList {
    /// The requests on this page.
    pub gdpr_actions: Vec<GdprAction>,
    /// Where this page sits.
    pub paging: Paging,
}

/// Identifies one GDPR request.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GdprActionRef {
    /// The request's id.
    pub gdpr_action_id: Uuid,
}

/// A finished export.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GdprExport {
    /// The export request.
    pub gdpr_action_id: Uuid,
    /// The data subject.
    pub user_id: Uuid,
    /// When the document was made.
    pub generated_at: DateTime<Utc>,
    /// Everything Haven holds about the user, one key per kind of data (profile, credentials,
    /// groups, listings, reservations, payments, disputes, reviews, agentRuns, gdpr, auditTrail, …).
    pub document: Value,
}

/// The GDPR operations (no delete: compliance records are kept).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createGdprAction", Service::PlatformAdmin)
            .title("Ask for a GDPR export, erasure or consent record")
            .who("any logged-in user, for themself; admins for any user")
            .describe(
                "Files a GDPR request: `export` (a worker assembles everything Haven holds about the user into \
                 one JSON document; download it with getGdprExport once the status is complete), `delete` \
                 (a worker erases the user's personal data everywhere, revokes every session, API key and \
                 OAuth grant, closes the account and frees the email; reservations, reviews and the payment \
                 ledger stay, shown as a \"Deleted user\"), or `consent` (records `consent.purpose` as granted or \
                 withdrawn). Starts `pending`; the server sets requestedAt, status and processedAt. Returns the \
                 request.",
            )
            .rest(Method::Post, "/platformadmin-api/v1/gdpractions")
            .access(Access::Authenticated)
            .creates("gdprAction")
            .handler(create_action),
        Operation::build("updateGdprAction", Service::PlatformAdmin)
            .title("Record a GDPR request's status")
            .describe(
                "Compliance admins record a request's status: `failed` stops a pending request, `pending` queues \
                 a failed one again; `complete` is the worker's to set. processedAt may be corrected (not in the \
                 future). Requests are never deleted. Returns the request.",
            )
            .rest(Method::Patch, "/platformadmin-api/v1/gdpractions/{gdprActionId}")
            .access(Access::Admin)
            .updates("gdprAction")
            .handler(update_action),
        Operation::build("listGdprActions", Service::PlatformAdmin)
            .title("List GDPR requests")
            .who("any logged-in user, for their own requests; admins for all")
            .describe(
                "Lists GDPR requests with their status, newest first: your own, or everyone's for admins. Filter \
                 by userId (admins), actionType and status. Paginated.",
            )
            .rest(Method::Get, "/platformadmin-api/v1/gdpractions")
            .access(Access::Authenticated)
            .reads(Action::List, "gdprActions")
            .handler(list_actions),
        Operation::build("getGdprExport", Service::PlatformAdmin)
            .title("Download a GDPR export")
            .who("the user the export is about")
            .describe(
                "Returns the finished export of a complete `export` request as one JSON document. Only the data \
                 subject may download it; a request still pending answers 409.",
            )
            .rest(
                Method::Get,
                "/platformadmin-api/v1/gdpractions/{gdprActionId}/export",
            )
            .access(Access::Authenticated)
            .reads(Action::Get, "gdprExport")
            .handler(get_export),
    ]
}

async fn load(ctx: &Ctx, id: Uuid, lock: bool) -> Result<GdprAction, ToolError> {
    let caller = ctx.caller()?.clone();
    let mut db = ctx.db().await?;
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM platformadmin.gdpr_actions g
         WHERE g.id = $1 AND g.is_active AND ($2 OR g.user_id = $3){}",
        if lock { " FOR UPDATE OF g" } else { "" }
    ))
    .bind(id)
    .bind(caller.is_admin())
    .bind(caller.user_id)
    .fetch_optional(&mut *db)
    .await?
    .ok_or_else(|| ToolError::not_found("GDPR request"))
}

async fn create_action(ctx: Ctx, input: NewGdprAction) -> Result<GdprAction, ToolError> {
    let caller = ctx.caller()?.clone();
    let subject = input.user_id.unwrap_or(caller.user_id);
    if subject != caller.user_id && !caller.is_admin() {
        return Err(ToolError::forbidden(
            "you may file GDPR requests only for yourself (leave userId out); admins file them for others",
        ));
    }
    let kind = input.action_type.as_str();
    let consent = match (kind, input.consent) {
        ("consent", Some(c)) => Some(json!({ "purpose": c.purpose.as_str(), "granted": c.granted })),
        ("consent", None) => {
            return Err(ToolError::field(
                "consent",
                "is required with actionType `consent`: send {\"purpose\": \"…\", \"granted\": true|false}",
            ))
        }
        (_, Some(_)) => {
            return Err(ToolError::field(
                "consent",
                "is only taken with actionType `consent`",
            ))
        }
        (_, None) => None,
    };
    let mut db = ctx.db().await?;
    let role: Option<String> =
        sqlx::query_scalar("SELECT role_id FROM auth.users WHERE id = $1 AND is_active")
            .bind(subject)
            .fetch_optional(&mut *db)
            .await?;
    let Some(role) = role else {
        return Err(ToolError::field(
            "userId",
            format!("{subject} is not an active user"),
        ));
    };
    if kind == "delete" && role == "superAdmin" {
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM auth.users WHERE role_id = 'superAdmin' AND is_active AND id <> $1",
        )
        .bind(subject)
        .fetch_one(&mut *db)
        .await?;
        if others == 0 {
            return Err(ToolError::unprocessable(
                "erasing the last active superAdmin is refused: the instance would have no superAdmin left. \
                 Make another user superAdmin first (updateUserRole)",
            ));
        }
    }
    let id: Uuid = sqlx::query_scalar(
        "INSERT INTO platformadmin.gdpr_actions (user_id, action_type, requested_by, consent, owner_id)
         VALUES ($1, $2, $3, $4, $1) RETURNING id",
    )
    .bind(subject)
    .bind(kind)
    .bind(caller.user_id)
    .bind(consent)
    .fetch_one(&mut *db)
    .await?;
    sqlx::query("INSERT INTO platformadmin.gdpr_jobs (gdpr_action_id) VALUES ($1)")
        .bind(id)
        .execute(&mut *db)
        .await?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(id.to_string())
        .execute(&mut *db)
        .await?;
    drop(db);
    load(&ctx, id, false).await
}

async fn update_action(ctx: Ctx, input: GdprActionPatch) -> Result<GdprAction, ToolError> {
    if input
        .processed_at
        .is_some_and(|t| t > Utc::now() + chrono::Duration::seconds(60))
    {
        return Err(ToolError::field("processedAt", "must not be in the future"));
    }
    let current = load(&ctx, input.gdpr_action_id, true).await?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "GDPR request",
    )?;
    let to = input.status.as_ref().map(Choice::as_str);
    let job_state = match (current.status.as_str(), to) {
        (_, None) => None,
        (from, Some(to)) if from == to => None,
        (_, Some("complete")) => {
            return Err(ToolError::unprocessable(
                "a request becomes complete when the worker has processed it; set `failed` to stop it instead",
            ))
        }
        ("complete", Some(_)) => {
            return Err(ToolError::unprocessable(
                "the request is complete; a complete request cannot change status (file a new one)",
            ))
        }
        ("pending", Some("failed")) => Some("cancelled"),
        ("failed", Some("pending")) => Some("queued"),
        (from, Some(to)) => {
            return Err(ToolError::unprocessable(format!(
                "a GDPR request cannot move from `{from}` to `{to}`"
            )))
        }
    };
    {
        let mut db = ctx.db().await?;
        sqlx::query(
            "UPDATE platformadmin.gdpr_actions SET status = COALESCE($2, status),
                processed_at = CASE WHEN $2 = 'failed' THEN COALESCE($3, now())
                                    WHEN $2 = 'pending' THEN NULL ELSE COALESCE($3, processed_at) END,
                failure_reason = CASE WHEN $2 = 'failed' THEN 'stopped by an admin'
                                      WHEN $2 = 'pending' THEN NULL ELSE failure_reason END,
                record_version = record_version + 1, updated_at = now()
             WHERE id = $1",
        )
        .bind(current.id)
        .bind(to)
        .bind(input.processed_at)
        .execute(&mut *db)
        .await?;
        if let Some(state) = job_state {
            sqlx::query(
                "UPDATE platformadmin.gdpr_jobs SET state = $2, locked_until = NULL,
                    attempts = CASE WHEN $2 = 'queued' THEN 0 ELSE attempts END, updated_at = now()
                 WHERE gdpr_action_id = $1",
            )
            .bind(current.id)
            .bind(state)
            .execute(&mut *db)
            .await?;
            if state == "queued" {
                sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(CHANNEL)
                    .bind(current.id.to_string())
                    .execute(&mut *db)
                    .await?;
            }
        }
    }
    load(&ctx, current.id, false).await
}

async fn list_actions(ctx: Ctx, input: GdprActionFilters) -> Result<GdprActionList, ToolError> {
    let caller = ctx.caller()?.clone();
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(COLUMNS, "platformadmin.gdpr_actions g WHERE g.is_active");
    if !caller.is_admin() {
        qb.push(" AND g.user_id = ");
        qb.push_bind(caller.user_id);
    }
    sql::id_filter(&mut qb, "g.user_id", "userId", input.user_id.as_ref())?;
    sql::enum_filter(&mut qb, "g.action_type", input.action_type.as_deref());
    sql::enum_filter(&mut qb, "g.status", input.status.as_deref());
    let mut db = ctx.db().await?;
    let (gdpr_actions, paging) =
        sql::fetch_page(&mut db, qb, "g.requested_at DESC, g.id DESC", page).await?;
    Ok(GdprActionList {
        gdpr_actions,
        paging,
    })
}

async fn get_export(ctx: Ctx, input: GdprActionRef) -> Result<GdprExport, ToolError> {
    let me = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    let row: Option<(String, String, Uuid)> = sqlx::query_as(
        "SELECT action_type, status, user_id FROM platformadmin.gdpr_actions WHERE id = $1 AND is_active",
    )
    .bind(input.gdpr_action_id)
    .fetch_optional(&mut *db)
    .await?;
    let Some((kind, status, subject)) = row.filter(|r| r.2 == me) else {
        return Err(ToolError::not_found("GDPR export"));
    };
    if kind != "export" {
        return Err(ToolError::unprocessable(format!(
            "this is a `{kind}` request; only `export` requests have a document"
        )));
    }
    let doc: Option<(Value, DateTime<Utc>)> = sqlx::query_as(
        "SELECT document, created_at FROM platformadmin.gdpr_exports WHERE gdpr_action_id = $1",
    )
    .bind(input.gdpr_action_id)
    .fetch_optional(&mut *db)
    .await?;
    let Some((document, generated_at)) = doc else {
        return Err(ToolError::conflict(format!(
            "the export is not ready yet (status `{status}`); try again shortly"
        )));
    };
    Ok(GdprExport {
        gdpr_action_id: input.gdpr_action_id,
        user_id: subject,
        generated_at,
        document,
    })
}
