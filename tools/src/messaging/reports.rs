//! Message reports: a participant reports a message for abuse (the message is flagged; one report
//! per reporter and message); admins handle reports (assign, status, notes) and moderate the message
//! itself with `updateMessage isModerated=true`. A report is visible to its reporter, the reported
//! message's sender (for their defence) and admins.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::load_message;
use crate::context::Ctx;
use crate::error::{self, ErrorKind, ToolError};
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter, Paging, RecordMeta, Text};
use crate::vocabulary::ReportStatuses;

/// A report's moderation state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportStatus {
    /// Waiting for an admin.
    Pending,
    /// An admin looked at it.
    Reviewed,
    /// Handled.
    Closed,
}

impl ReportStatus {
    fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Pending => "pending",
            ReportStatus::Reviewed => "reviewed",
            ReportStatus::Closed => "closed",
        }
    }
}

/// An abuse report about a message.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct MessageReport {
    /// The report's id.
    pub id: Uuid,
    /// The reported message.
    pub message_id: Uuid,
    /// Who reported it.
    pub reported_by: Uuid,
    /// Why.
    pub report_reason: String,
    /// `pending`, `reviewed` or `closed`.
    #[schemars(with = "Choice<ReportStatuses>")]
    pub moderation_status: String,
    /// Index of `moderationStatus`.
    #[serde(rename = "moderationStatus_idx")]
    pub moderation_status_idx: i32,
    /// The admin handling it.
    pub admin_id: Option<Uuid>,
    /// When it was filed.
    pub reported_at: DateTime<Utc>,
    /// The admin's notes.
    pub resolution_notes: Option<String>,
    /// System fields; `_owner`: the reporter.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// The select list producing a [`MessageReport`] from `messaging.message_reports p`.
pub const REPORT_COLUMNS: &str = "p.id, p.message_id, p.reported_by, p.report_reason, p.moderation_status,
    array_position(ARRAY['pending','reviewed','closed'], p.moderation_status) - 1 AS moderation_status_idx,
    p.admin_id, p.reported_at, p.resolution_notes, p.is_active, p.record_version, p.created_at,
    p.updated_at, p.owner_id";

/// Input of `createMessageReport`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewReport {
    /// The message you report (one you received in a thread of yours).
    pub message_id: Uuid,
    /// What is wrong with it (1–1000 characters).
    pub report_reason: Text<1000>,
}

/// Input of `updateMessageReport`: at least one of the changeable fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["moderationStatus"], "properties": { "moderationStatus": { "type": "string" } } },
    { "required": ["adminId"], "properties": { "adminId": { "type": "string" } } },
    { "required": ["resolutionNotes"], "properties": { "resolutionNotes": { "type": "string" } } }
]))]
pub struct ReportPatch {
    /// The report.
    pub message_report_id: Uuid,
    /// `pending`, `reviewed` or `closed`.
    pub moderation_status: Option<ReportStatus>,
    /// The admin who handles it (an admin's user id; default: you, when you change the status).
    pub admin_id: Option<Uuid>,
    /// Your notes on the outcome (1–5000 characters).
    pub resolution_notes: Option<Text<5000>>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one report.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportRef {
    /// The report's id.
    pub message_report_id: Uuid,
}

/// Input of `listMessageReports`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReportFilters {
    /// `pending`, `reviewed` and/or `closed`.
    pub moderation_status: Option<EnumFilter<ReportStatuses>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of reports.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportList {
    /// The reports on this page, newest first.
    pub message_reports: Vec<MessageReport>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The report operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createMessageReport", Service::Messaging)
            .title("Report a message for abuse")
            .who("a participant of the message's thread (not its sender), or an admin")
            .describe(
                "Reports a message you received (spam, harassment, contact details, …) with \
                 reportReason. The message is flagged and the report starts pending for an admin; \
                 the server sets reportedBy, reportedAt and moderationStatus. One report per \
                 message and reporter (a second answers 409). Returns the report.",
            )
            .rest(Method::Post, "/messaging-api/v1/messagereports")
            .access(Access::Authenticated)
            .creates("messageReport")
            .handler(create_report),
        Operation::build("updateMessageReport", Service::Messaging)
            .title("Handle a message report")
            .describe(
                "For moderators: sets a report's moderationStatus (pending/reviewed/closed), the \
                 handling adminId (default: you) and resolutionNotes. To hide the reported \
                 message from its thread, call updateMessage with isModerated=true. Returns the \
                 report.",
            )
            .rest(
                Method::Patch,
                "/messaging-api/v1/messagereports/{messageReportId}",
            )
            .access(Access::Admin)
            .updates("messageReport")
            .handler(update_report),
        Operation::build("getMessageReport", Service::Messaging)
            .title("Get a message report")
            .who("the reporter, the reported message's sender, or an admin")
            .describe("Returns one message report. Others get not found.")
            .rest(
                Method::Get,
                "/messaging-api/v1/messagereports/{messageReportId}",
            )
            .access(Access::Authenticated)
            .reads(Action::Get, "messageReport")
            .handler(get_report),
        Operation::build("listMessageReports", Service::Messaging)
            .title("List message reports")
            .who("any logged-in user, for reports they filed or about messages they sent; admins see all")
            .describe(
                "Lists message reports, newest first: for admins all of them (the moderation \
                 queue: filter moderationStatus=pending), for others those they filed or that \
                 concern messages they sent. Paginated.",
            )
            .rest(Method::Get, "/messaging-api/v1/messagereports")
            .access(Access::Authenticated)
            .reads(Action::List, "messageReports")
            .handler(list_reports),
    ]
}

async fn load_report(ctx: &Ctx, id: Uuid, lock: bool) -> Result<(MessageReport, Uuid), ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {REPORT_COLUMNS}, m.sender_id FROM messaging.message_reports p
           JOIN messaging.messages m ON m.id = p.message_id
          WHERE p.id = $1 AND p.is_active{}",
        if lock { " FOR UPDATE OF p" } else { "" }
    );
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        report: MessageReport,
        sender_id: Uuid,
    }
    let row: Row = sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("message report"))?;
    let me = ctx.user_id();
    if !(ctx.is_admin() || me == Some(row.report.reported_by) || me == Some(row.sender_id)) {
        return Err(ToolError::not_found("message report"));
    }
    Ok((row.report, row.sender_id))
}

async fn reload(ctx: &Ctx, id: Uuid) -> Result<MessageReport, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!("SELECT {REPORT_COLUMNS} FROM messaging.message_reports p WHERE p.id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_one(&mut *db).await?)
}

async fn create_report(ctx: Ctx, input: NewReport) -> Result<MessageReport, ToolError> {
    let me = ctx.caller()?.user_id;
    let (message, _, _) = load_message(&ctx, input.message_id, true).await?;
    if message.sender_id == me {
        return Err(ToolError::unprocessable(
            "you sent this message; delete or edit it instead of reporting it",
        ));
    }
    let reason = input.report_reason.as_str();
    let id: Uuid = {
        let mut db = ctx.db().await?;
        let id = sqlx::query_scalar(
            "INSERT INTO messaging.message_reports (message_id, reported_by, report_reason, owner_id)
             VALUES ($1, $2, $3, $2) RETURNING id",
        )
        .bind(message.id)
        .bind(me)
        .bind(reason)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| {
            error::on_constraint(
                e,
                &[(
                    "message_reports_once_key",
                    ErrorKind::Conflict,
                    "you already reported this message; an admin will look at it",
                )],
            )
        })?;
        sqlx::query(
            "UPDATE messaging.messages SET is_flagged = true, flagged_by = $2, flag_reason = $3,
                 record_version = record_version + 1, updated_at = now()
             WHERE id = $1 AND NOT is_flagged",
        )
        .bind(message.id)
        .bind(me)
        .bind(reason)
        .execute(&mut *db)
        .await?;
        id
    };
    reload(&ctx, id).await
}

async fn update_report(ctx: Ctx, input: ReportPatch) -> Result<MessageReport, ToolError> {
    let me = ctx.caller()?.user_id;
    if input.moderation_status.is_none()
        && input.admin_id.is_none()
        && input.resolution_notes.is_none()
    {
        return Err(ToolError::bad_input(
            "nothing to change: send moderationStatus, adminId or resolutionNotes",
        ));
    }
    let (current, _) = load_report(&ctx, input.message_report_id, true).await?;
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "message report",
    )?;
    let mut db = ctx.db().await?;
    if let Some(admin) = input.admin_id {
        let is_admin: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM auth.users WHERE id = $1 AND is_active
                 AND role_id IN ('admin', 'superAdmin'))",
        )
        .bind(admin)
        .fetch_one(&mut *db)
        .await?;
        if !is_admin {
            return Err(ToolError::field(
                "adminId",
                "must be the id of an active admin",
            ));
        }
    }
    let admin = input
        .admin_id
        .or(input.moderation_status.map(|_| me))
        .or(current.admin_id);
    sqlx::query(
        "UPDATE messaging.message_reports SET moderation_status = COALESCE($2, moderation_status),
             admin_id = $3, resolution_notes = COALESCE($4, resolution_notes),
             record_version = record_version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(current.id)
    .bind(input.moderation_status.map(ReportStatus::as_str))
    .bind(admin)
    .bind(input.resolution_notes.as_ref().map(|n| n.as_str()))
    .execute(&mut *db)
    .await?;
    drop(db);
    reload(&ctx, current.id).await
}

async fn get_report(ctx: Ctx, input: ReportRef) -> Result<MessageReport, ToolError> {
    Ok(load_report(&ctx, input.message_report_id, false).await?.0)
}

async fn list_reports(ctx: Ctx, input: ReportFilters) -> Result<ReportList, ToolError> {
    let caller = ctx.caller()?.clone();
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(
        REPORT_COLUMNS,
        "messaging.message_reports p JOIN messaging.messages m ON m.id = p.message_id WHERE p.is_active",
    );
    if !caller.is_admin() {
        qb.push(" AND (p.reported_by = ");
        qb.push_bind(caller.user_id);
        qb.push(" OR m.sender_id = ");
        qb.push_bind(caller.user_id);
        qb.push(")");
    }
    sql::enum_filter(
        &mut qb,
        "p.moderation_status",
        input.moderation_status.as_deref(),
    );
    let mut db = ctx.db().await?;
    let (message_reports, paging) =
        sql::fetch_page(&mut db, qb, "p.reported_at DESC, p.id", page).await?;
    Ok(ReportList {
        message_reports,
        paging,
    })
}
