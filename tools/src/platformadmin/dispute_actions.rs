//! Admin dispute actions: an admin's recorded decision on a dispute. Each action drives the
//! dispute through its own transitions (`updateDispute`'s rules: pending → reviewing → resolved |
//! rejected, the reservation's disputeStatus, an approved refund), lands in the reservation's
//! timeline, and is kept append-only (a trigger refuses changes); the audit row is written by the
//! operation itself.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::booking::disputes::{load_dispute, update_dispute, DisputePatch, Resolution};
use crate::booking::model::record_activity;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, Filter, LongText, Name, Paging, RecordMeta};
use crate::vocabulary::ResolutionStatuses;

crate::choices!(
    /// What an admin does to a dispute.
    DisputeActions = ["review", "resolve", "reject", "note"]
);

/// One admin action on a dispute.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AdminDisputeAction {
    /// The action's id.
    pub id: Uuid,
    /// The dispute acted on.
    pub dispute_id: Uuid,
    /// The admin who acted.
    pub admin_id: Uuid,
    /// `review` (take it into review), `resolve`, `reject` or `note` (no state change).
    #[schemars(with = "Choice<DisputeActions>")]
    pub action_taken: String,
    /// The admin's notes (the dispute's resolution notes live here).
    pub notes: Option<String>,
    /// The outcome in words, e.g. "partial refund agreed".
    pub outcome: Option<String>,
    /// The dispute's resolutionStatus before the action.
    #[schemars(with = "Choice<ResolutionStatuses>")]
    pub resolution_before: String,
    /// The dispute's resolutionStatus after it.
    #[schemars(with = "Choice<ResolutionStatuses>")]
    pub resolution_after: String,
    /// When it was taken.
    pub action_date: DateTime<Utc>,
    /// The disputed reservation.
    pub reservation_id: Uuid,
    /// System fields; `_owner`: the admin.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const COLUMNS: &str = "a.id, a.dispute_id, a.admin_id, a.action_taken, a.notes, a.outcome,
    a.resolution_before, a.resolution_after, a.action_date,
    (SELECT d.reservation_id FROM booking.disputes d WHERE d.id = a.dispute_id) AS reservation_id,
    a.is_active, a.record_version, a.created_at, a.updated_at, a.owner_id";

/// Input of `createAdminDisputeAction`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDisputeAction {
    /// The dispute to act on.
    pub dispute_id: Uuid,
    /// `review` (pending → reviewing, you become its admin), `resolve` (→ resolved; a pending
    /// dispute is taken into review first), `reject` (→ rejected, likewise) or `note` (records
    /// notes without changing the state).
    pub action_taken: Choice<DisputeActions>,
    /// With `resolve` only: approve a refund of what the guest paid and has not had back.
    pub refund_approved: Option<bool>,
    /// Your notes.
    pub notes: Option<LongText>,
    /// The outcome in words.
    pub outcome: Option<Name>,
}

/// Input of `listAdminDisputeActions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisputeActionFilters {
    /// Only actions on these disputes.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub dispute_id: Option<Filter>,
    /// Only actions by these admins.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub admin_id: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of admin dispute actions, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeActionList {
    /// The actions on this page.
    pub admin_dispute_actions: Vec<AdminDisputeAction>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The admin dispute action operations (append-only: no update, no delete).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createAdminDisputeAction", Service::PlatformAdmin)
            .title("Act on a dispute")
            .describe(
                "Records an admin decision on a dispute and applies it: `review` takes a pending dispute into \
                 review (you become its admin), `resolve` / `reject` close it (a pending one is taken into review \
                 first; `refundApproved: true` with `resolve` refunds what the guest paid and has not had back), \
                 `note` only records notes. Illegal moves (acting on a closed dispute) get 422. The dispute's \
                 state, the reservation's disputeStatus and timeline follow, and an audit row is written. The \
                 server sets adminId (you) and actionDate. Returns the action.",
            )
            .rest(Method::Post, "/platformadmin-api/v1/admindisputeactions")
            .access(Access::Admin)
            .creates("adminDisputeAction")
            .open_world()
            .handler(create_action),
        Operation::build("listAdminDisputeActions", Service::PlatformAdmin)
            .title("List admin dispute actions")
            .describe(
                "Lists admins' actions on disputes, newest first; filter by disputeId and adminId. Paginated.",
            )
            .rest(Method::Get, "/platformadmin-api/v1/admindisputeactions")
            .access(Access::Admin)
            .reads(Action::List, "adminDisputeActions")
            .handler(list_actions),
    ]
}

fn patch(dispute_id: Uuid, to: Resolution, refund: Option<bool>) -> DisputePatch {
    DisputePatch {
        dispute_id,
        admin_id: None,
        issue_type: None,
        description: None,
        resolution_status: Some(to),
        refund_approved: refund,
        record_version: None,
    }
}

async fn create_action(ctx: Ctx, input: NewDisputeAction) -> Result<AdminDisputeAction, ToolError> {
    let me = ctx.caller()?.user_id;
    let before = load_dispute(&ctx, input.dispute_id, false).await?;
    let action = input.action_taken.as_str();
    if input.refund_approved.is_some() && action != "resolve" {
        return Err(ToolError::field(
            "refundApproved",
            "is only taken with actionTaken `resolve`",
        ));
    }
    let closed = matches!(before.resolution_status.as_str(), "resolved" | "rejected");
    if closed && action != "note" {
        return Err(ToolError::unprocessable(format!(
            "the dispute is {} and closed; only `note` actions may be recorded on it",
            before.resolution_status
        )));
    }
    let pending = before.resolution_status == "pending";
    let target = match action {
        "review" => Some(Resolution::Reviewing),
        "resolve" => Some(Resolution::Resolved),
        "reject" => Some(Resolution::Rejected),
        _ => None,
    };
    let after = match target {
        Some(Resolution::Reviewing) if !pending => {
            return Err(ToolError::unprocessable(format!(
                "the dispute is already {}; `review` only applies to a pending dispute",
                before.resolution_status
            )))
        }
        Some(to) => {
            if pending && to != Resolution::Reviewing {
                update_dispute(ctx.clone(), patch(before.id, Resolution::Reviewing, None)).await?;
            }
            update_dispute(ctx.clone(), patch(before.id, to, input.refund_approved)).await?
        }
        None => before.clone(),
    };
    let created: AdminDisputeAction = {
        let mut db = ctx.db().await?;
        sqlx::query_as(&format!(
            "WITH a AS (INSERT INTO platformadmin.admin_dispute_actions (dispute_id, admin_id,
                 action_taken, notes, outcome, resolution_before, resolution_after, owner_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $2) RETURNING *)
             SELECT {COLUMNS} FROM a"
        ))
        .bind(before.id)
        .bind(me)
        .bind(action)
        .bind(input.notes.as_ref().map(LongText::as_str))
        .bind(input.outcome.as_ref().map(Name::as_str))
        .bind(&before.resolution_status)
        .bind(&after.resolution_status)
        .fetch_one(&mut *db)
        .await?
    };
    record_activity(
        &ctx,
        before.reservation_id,
        "admin_dispute_action",
        Some(json!({ "disputeId": before.id, "resolutionStatus": before.resolution_status })),
        Some(json!({
            "disputeId": before.id,
            "adminDisputeActionId": created.id,
            "actionTaken": action,
            "resolutionStatus": after.resolution_status,
            "outcome": created.outcome,
        })),
        input.notes.as_ref().map(LongText::as_str),
    )
    .await?;
    Ok(created)
}

async fn list_actions(
    ctx: Ctx,
    input: DisputeActionFilters,
) -> Result<DisputeActionList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(
        COLUMNS,
        "platformadmin.admin_dispute_actions a WHERE a.is_active",
    );
    sql::id_filter(
        &mut qb,
        "a.dispute_id",
        "disputeId",
        input.dispute_id.as_ref(),
    )?;
    sql::id_filter(&mut qb, "a.admin_id", "adminId", input.admin_id.as_ref())?;
    let mut db = ctx.db().await?;
    let (admin_dispute_actions, paging) =
        sql::fetch_page(&mut db, qb, "a.action_date DESC, a.id DESC", page).await?;
    Ok(DisputeActionList {
        admin_dispute_actions,
        paging,
    })
}
