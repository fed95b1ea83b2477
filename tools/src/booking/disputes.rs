//! Disputes on a reservation (spec object `Dispute`, lifecycle §4.3). The guest or the host opens
//! one (`pending`); an admin takes it into review (`reviewing`, assigning an admin) and closes it
//! as `resolved` (optionally approving a refund) or `rejected`. The reservation's `disputeStatus`
//! follows: requested → active → resolved. Every step lands in the reservation's timeline. At most
//! one open (pending or reviewing) dispute per reservation.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::model::{load_reservation, load_reservation_unchecked, record_activity, Party};
use super::payments::records::push_party_scope;
use crate::context::Ctx;
use crate::error::{on_constraint, ErrorKind, ToolError};
use crate::money::Money;
use crate::registry::{Access, Action, Flow, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter};
use crate::types::{Filter, LongText, Name, Paging, RecordMeta};
use crate::vocabulary::ResolutionStatuses;

/// A dispute.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Dispute {
    /// The dispute's id.
    pub id: Uuid,
    /// The disputed reservation.
    pub reservation_id: Uuid,
    /// Who opened it (the reservation's guest or host).
    pub raised_by: Uuid,
    /// The admin handling it, once under review.
    pub admin_id: Option<Uuid>,
    /// Free-text category, e.g. `damage`, `cleanliness`, `refund request`.
    pub issue_type: String,
    /// What happened.
    pub description: String,
    /// The payment record it concerns, if any.
    pub related_payment_id: Option<Uuid>,
    /// `pending`, `reviewing`, `resolved` or `rejected`.
    #[schemars(with = "Choice<ResolutionStatuses>")]
    pub resolution_status: String,
    /// Position of `resolutionStatus`'s value in its list of values (0-based).
    #[serde(rename = "resolutionStatus_idx")]
    pub resolution_status_idx: i32,
    /// When it was opened.
    pub reported_at: DateTime<Utc>,
    /// When it was resolved or rejected.
    pub resolved_at: Option<DateTime<Utc>>,
    /// Whether the resolution approved a refund (set when closed).
    pub refund_approved: Option<bool>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: who opened it.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

const DISPUTE_COLUMNS: &str = "d.id, d.reservation_id, d.raised_by, d.admin_id, d.issue_type,
    d.description, d.related_payment_id, d.resolution_status,
    array_position(ARRAY['pending','reviewing','resolved','rejected'], d.resolution_status) - 1 AS resolution_status_idx,
    d.reported_at, d.resolved_at, d.refund_approved, d.is_active, d.record_version, d.created_at,
    d.updated_at, d.owner_id";

/// A dispute's `resolutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    /// Opened, no admin yet.
    Pending,
    /// An admin is handling it.
    Reviewing,
    /// Closed in favour of the raiser (possibly with a refund).
    Resolved,
    /// Closed without action.
    Rejected,
}

impl Resolution {
    /// The stored value.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Pending => "pending",
            Resolution::Reviewing => "reviewing",
            Resolution::Resolved => "resolved",
            Resolution::Rejected => "rejected",
        }
    }
    fn parse(s: &str) -> Result<Resolution, ToolError> {
        serde_json::from_value(json!(s)).map_err(ToolError::internal)
    }
    /// The states a dispute may move to from this one.
    pub fn next(self) -> &'static [Resolution] {
        match self {
            Resolution::Pending => &[Resolution::Reviewing],
            Resolution::Reviewing => &[Resolution::Resolved, Resolution::Rejected],
            Resolution::Resolved | Resolution::Rejected => &[],
        }
    }
    /// The reservation's `disputeStatus` while a dispute is in this state.
    pub fn reservation_status(self) -> &'static str {
        match self {
            Resolution::Pending => "requested",
            Resolution::Reviewing => "active",
            Resolution::Resolved | Resolution::Rejected => "resolved",
        }
    }
    fn is_closed(self) -> bool {
        self.next().is_empty()
    }
}

/// Input of `createDispute`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDispute {
    /// The reservation in dispute (you must be its guest or host).
    pub reservation_id: Uuid,
    /// Free-text category, e.g. `damage`, `cleanliness`, `refund request`.
    pub issue_type: Name,
    /// What happened.
    pub description: LongText,
    /// A payment record of this reservation the dispute concerns.
    pub related_payment_id: Option<Uuid>,
}

/// Input of `updateDispute`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisputePatch {
    /// The dispute to change.
    pub dispute_id: Uuid,
    /// Admins: the admin handling it (moving a pending dispute to reviewing; default: you).
    pub admin_id: Option<Uuid>,
    /// New category (admins, or the raiser while pending).
    pub issue_type: Option<Name>,
    /// New description (admins, or the raiser while pending).
    pub description: Option<LongText>,
    /// Admins: the next state — pending → reviewing → resolved | rejected.
    pub resolution_status: Option<Resolution>,
    /// Admins, only together with `resolutionStatus: resolved`: whether a refund is approved.
    pub refund_approved: Option<bool>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one dispute.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisputeRef {
    /// The dispute's id.
    pub dispute_id: Uuid,
}

/// Input of `listDisputes`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisputeFilters {
    /// Only disputes on these reservations.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub reservation_id: Option<Filter>,
    /// Only disputes opened by these users.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub raised_by: Option<Filter>,
    /// Only these states (`pending`, `reviewing`, `resolved`, `rejected`).
    pub resolution_status: Option<EnumFilter<ResolutionStatuses>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of disputes, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisputeList {
    /// The disputes on this page.
    pub disputes: Vec<Dispute>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The dispute operations (no delete: disputes are kept).
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createDispute", Service::Booking)
            .core(Flow::Guest, 130)
            .title("Open a dispute on a reservation")
            .who("the reservation's guest or host")
            .describe(
                "Opens a dispute (damage, cleanliness, refund request, …) on a reservation you are \
                 the guest or the host of; the server sets raisedBy (you), reportedAt and \
                 resolutionStatus pending, and the reservation's disputeStatus becomes requested. \
                 relatedPaymentId, when given, must be a payment record of that reservation. Only \
                 one open dispute per reservation (409). An admin then reviews it with \
                 updateDispute. Returns the dispute.",
            )
            .rest(Method::Post, "/bookingmanagement-api/v1/disputes")
            .access(Access::Authenticated)
            .creates("dispute")
            .handler(create_dispute),
        Operation::build("updateDispute", Service::Booking)
            .core(Flow::Admin, 30)
            .title("Update or resolve a dispute")
            .who("admins move it through its states; the user who raised it may edit it while it is pending")
            .describe(
                "Moves a dispute through its lifecycle or edits it. Admins: resolutionStatus \
                 pending → reviewing (assigns adminId, default the caller; reservation disputeStatus \
                 active) → resolved or rejected (sets resolvedAt; reservation disputeStatus \
                 resolved); refundApproved only together with resolved. Illegal transitions get \
                 422; closed disputes cannot change. The user who raised it may edit issueType and \
                 description while it is pending. Every step is recorded in the reservation's \
                 timeline. Returns the dispute.",
            )
            .rest(
                Method::Patch,
                "/bookingmanagement-api/v1/disputes/{disputeId}",
            )
            .access(Access::Authenticated)
            .updates("dispute")
            .handler(update_dispute),
        Operation::build("getDispute", Service::Booking)
            .core(Flow::Admin, 20)
            .title("Get a dispute")
            .who("the reservation's guest and host, the assigned admin, and admins")
            .describe(
                "Returns one dispute by id, without joins. Visible to the reservation's guest and \
                 host, the assigned admin and admins; anyone else gets 'dispute not found'.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/disputes/{disputeId}")
            .access(Access::Authenticated)
            .reads(Action::Get, "dispute")
            .handler(get_dispute),
        Operation::build("listDisputes", Service::Booking)
            .core(Flow::Admin, 10)
            .title("List disputes")
            .who("any logged-in user, for disputes on reservations they are guest or host of; admins for all")
            .describe(
                "Lists the disputes visible to you, newest first: admins see all, others those on \
                 reservations where they are guest or host. Filter by reservationId, raisedBy and \
                 resolutionStatus. Paginated, no joins.",
            )
            .rest(Method::Get, "/bookingmanagement-api/v1/disputes")
            .access(Access::Authenticated)
            .reads(Action::List, "disputes")
            .handler(list_disputes),
    ]
}

/// Loads an active dispute the caller may see (the reservation's guest or host, the assigned
/// admin, admins), optionally locking it; anyone else gets the same "not found" as a missing id.
pub async fn load_dispute(ctx: &Ctx, id: Uuid, lock: bool) -> Result<Dispute, ToolError> {
    let mut qb = QueryBuilder::new(format!(
        "SELECT {DISPUTE_COLUMNS} FROM booking.disputes d WHERE d.is_active AND d.id = "
    ));
    qb.push_bind(id);
    push_party_scope(
        &mut qb,
        ctx,
        "d.reservation_id",
        &["d.admin_id", "d.raised_by"],
    );
    if lock {
        qb.push(" FOR UPDATE");
    }
    let mut db = ctx.db().await?;
    qb.build_query_as()
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("dispute"))
}

/// Sets the reservation's `disputeStatus` (bumping its version) and records the change.
async fn set_reservation_dispute_status(
    ctx: &Ctx,
    reservation_id: Uuid,
    new: &str,
) -> Result<(), ToolError> {
    let reservation = load_reservation_unchecked(ctx, reservation_id, true)
        .await?
        .ok_or_else(|| ToolError::not_found("reservation"))?;
    if reservation.dispute_status == new {
        return Ok(());
    }
    {
        let mut db = ctx.db().await?;
        sqlx::query(
            "UPDATE booking.reservations SET dispute_status = $2,
                record_version = record_version + 1, updated_at = now()
             WHERE id = $1",
        )
        .bind(reservation_id)
        .bind(new)
        .execute(&mut *db)
        .await?;
    }
    record_activity(
        ctx,
        reservation_id,
        "dispute_status_changed",
        Some(json!(reservation.dispute_status)),
        Some(json!(new)),
        None,
    )
    .await
}

async fn create_dispute(ctx: Ctx, input: NewDispute) -> Result<Dispute, ToolError> {
    let reservation = load_reservation(&ctx, input.reservation_id, true).await?;
    let me = ctx.caller()?.user_id;
    if reservation.party(&ctx) == Some(Party::Admin) {
        return Err(ToolError::forbidden(
            "disputes are opened by the guest or the host of the reservation; admins handle them \
             with updateDispute",
        ));
    }
    let mut db = ctx.db().await?;
    if let Some(payment) = input.related_payment_id {
        let belongs: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM booking.payment_records
                WHERE id = $1 AND reservation_id = $2 AND is_active)",
        )
        .bind(payment)
        .bind(reservation.id)
        .fetch_one(&mut *db)
        .await?;
        if !belongs {
            return Err(ToolError::field(
                "relatedPaymentId",
                format!(
                    "{payment} is not a payment record of reservation {}",
                    reservation.id
                ),
            ));
        }
    }
    let sql = format!(
        "INSERT INTO booking.disputes AS d (reservation_id, raised_by, issue_type, description,
            related_payment_id, owner_id)
         VALUES ($1, $2, $3, $4, $5, $2) RETURNING {DISPUTE_COLUMNS}"
    );
    let dispute: Dispute = sqlx::query_as(&sql)
        .bind(reservation.id)
        .bind(me)
        .bind(input.issue_type.as_str())
        .bind(input.description.as_str())
        .bind(input.related_payment_id)
        .fetch_one(&mut *db)
        .await
        .map_err(|e| {
            on_constraint(
                e,
                &[(
                    "disputes_open_key",
                    ErrorKind::Conflict,
                    "this reservation already has an open dispute (pending or reviewing); add to \
                     that one or wait until an admin closes it",
                )],
            )
        })?;
    drop(db);
    record_activity(
        &ctx,
        reservation.id,
        "dispute_opened",
        None,
        Some(json!({ "disputeId": dispute.id, "issueType": dispute.issue_type })),
        None,
    )
    .await?;
    set_reservation_dispute_status(
        &ctx,
        reservation.id,
        Resolution::Pending.reservation_status(),
    )
    .await?;
    Ok(dispute)
}

/// What a patch asks of the dispute's state, after checking it against the current state.
struct Transition {
    to: Resolution,
    admin_id: Option<Uuid>,
    refund_approved: Option<bool>,
}

/// Checks who may apply `input` to `current` and which state change it means.
async fn plan_update(
    ctx: &Ctx,
    current: &Dispute,
    input: &DisputePatch,
) -> Result<Option<Transition>, ToolError> {
    let from = Resolution::parse(&current.resolution_status)?;
    let admin_fields = input.admin_id.is_some()
        || input.resolution_status.is_some()
        || input.refund_approved.is_some();
    if !ctx.is_admin() {
        if ctx.user_id() != Some(current.raised_by) {
            return Err(ToolError::forbidden(
                "only admins and the user who raised a dispute may change it",
            ));
        }
        if admin_fields {
            return Err(ToolError::forbidden(
                "only admins change resolutionStatus, adminId and refundApproved",
            ));
        }
        if from != Resolution::Pending {
            return Err(ToolError::forbidden(format!(
                "the dispute is {}; only admins may change it once review has started",
                from.as_str()
            )));
        }
    }
    let any_change = admin_fields || input.issue_type.is_some() || input.description.is_some();
    if from.is_closed() && any_change {
        return Err(ToolError::unprocessable(format!(
            "the dispute is {} and closed; closed disputes cannot change",
            from.as_str()
        )));
    }
    // Assigning an admin to a pending dispute is what starts the review.
    let to = match (input.resolution_status, input.admin_id) {
        (Some(to), _) => to,
        (None, Some(_)) if from == Resolution::Pending => Resolution::Reviewing,
        (None, _) => from,
    };
    if to != from && !from.next().contains(&to) {
        let allowed: Vec<&str> = from.next().iter().map(|r| r.as_str()).collect();
        return Err(ToolError::unprocessable(format!(
            "a dispute cannot move from `{}` to `{}`; from `{}` it may go to: {}",
            from.as_str(),
            to.as_str(),
            from.as_str(),
            allowed.join(", ")
        )));
    }
    if input.refund_approved.is_some() && to != Resolution::Resolved {
        return Err(ToolError::unprocessable(
            "refundApproved is set only when resolving: send it with resolutionStatus `resolved`",
        ));
    }
    if let Some(admin) = input.admin_id {
        let is_admin: bool = {
            let mut db = ctx.db().await?;
            sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM auth.users
                    WHERE id = $1 AND is_active AND role_id IN ('admin', 'superAdmin'))",
            )
            .bind(admin)
            .fetch_one(&mut *db)
            .await?
        };
        if !is_admin {
            return Err(ToolError::field(
                "adminId",
                format!("{admin} is not an active admin"),
            ));
        }
    }
    if to == from {
        return Ok(None);
    }
    let admin_id = match to {
        Resolution::Reviewing => input.admin_id.or(ctx.user_id()),
        _ => input.admin_id.or(current.admin_id).or(ctx.user_id()),
    };
    let refund_approved = match to {
        Resolution::Resolved => Some(input.refund_approved.unwrap_or(false)),
        Resolution::Rejected => Some(false),
        _ => None,
    };
    Ok(Some(Transition {
        to,
        admin_id,
        refund_approved,
    }))
}

/// `updateDispute`'s handler; admin dispute actions drive disputes through it too.
pub(crate) async fn update_dispute(ctx: Ctx, input: DisputePatch) -> Result<Dispute, ToolError> {
    // Lock the reservation before the dispute, in the same order createDispute takes them.
    let seen = load_dispute(&ctx, input.dispute_id, false).await?;
    load_reservation_unchecked(&ctx, seen.reservation_id, true).await?;
    let current = load_dispute(&ctx, seen.id, true).await?;
    ToolError::check_version(input.record_version, current.meta.record_version, "dispute")?;
    let transition = plan_update(&ctx, &current, &input).await?;
    let (status, admin_id, refund) = match &transition {
        Some(t) => (Some(t.to.as_str()), t.admin_id, t.refund_approved),
        None => (None, input.admin_id, None),
    };
    let updated: Dispute = {
        let mut db = ctx.db().await?;
        let sql = format!(
            "UPDATE booking.disputes d SET issue_type = COALESCE($2, issue_type),
                description = COALESCE($3, description),
                admin_id = COALESCE($4, admin_id),
                resolution_status = COALESCE($5, resolution_status),
                refund_approved = COALESCE($6, refund_approved),
                resolved_at = CASE WHEN $5 IN ('resolved', 'rejected') THEN now() ELSE resolved_at END,
                record_version = record_version + 1, updated_at = now()
             WHERE id = $1 RETURNING {DISPUTE_COLUMNS}"
        );
        sqlx::query_as(&sql)
            .bind(current.id)
            .bind(input.issue_type.as_ref().map(Name::as_str))
            .bind(input.description.as_ref().map(LongText::as_str))
            .bind(admin_id)
            .bind(status)
            .bind(refund)
            .fetch_one(&mut *db)
            .await?
    };
    if let Some(t) = transition {
        record_activity(
            &ctx,
            updated.reservation_id,
            "dispute_resolution",
            Some(json!({ "disputeId": updated.id, "resolutionStatus": current.resolution_status })),
            Some(json!({
                "disputeId": updated.id,
                "resolutionStatus": updated.resolution_status,
                "adminId": updated.admin_id,
                "refundApproved": updated.refund_approved,
            })),
            None,
        )
        .await?;
        set_reservation_dispute_status(&ctx, updated.reservation_id, t.to.reservation_status())
            .await?;
        if updated.refund_approved == Some(true) {
            refund_outstanding(&ctx, updated.reservation_id).await?;
        }
    }
    Ok(updated)
}

/// An approved refund returns what the guest paid and has not yet had back, through the payment
/// provider (ledger row and timeline entry included); nothing happens when nothing was paid.
async fn refund_outstanding(ctx: &Ctx, reservation_id: Uuid) -> Result<(), ToolError> {
    let Some(reservation) = load_reservation_unchecked(ctx, reservation_id, true).await? else {
        return Ok(());
    };
    if reservation.payment_confirmation != "paid" {
        return Ok(());
    }
    let outstanding = reservation.total_price - reservation.refund_amount.unwrap_or_default();
    if outstanding > Money::ZERO {
        super::payments::flow::refund(
            ctx,
            &reservation,
            outstanding,
            "refund approved on dispute resolution",
        )
        .await?;
    }
    Ok(())
}

async fn get_dispute(ctx: Ctx, input: DisputeRef) -> Result<Dispute, ToolError> {
    load_dispute(&ctx, input.dispute_id, false).await
}

async fn list_disputes(ctx: Ctx, input: DisputeFilters) -> Result<DisputeList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(DISPUTE_COLUMNS, "booking.disputes d WHERE d.is_active");
    sql::id_filter(
        &mut qb,
        "d.reservation_id",
        "reservationId",
        input.reservation_id.as_ref(),
    )?;
    sql::id_filter(&mut qb, "d.raised_by", "raisedBy", input.raised_by.as_ref())?;
    sql::enum_filter(
        &mut qb,
        "d.resolution_status",
        input.resolution_status.as_deref(),
    );
    push_party_scope(
        &mut qb,
        &ctx,
        "d.reservation_id",
        &["d.admin_id", "d.raised_by"],
    );
    let mut db = ctx.db().await?;
    let (disputes, paging) =
        sql::fetch_page(&mut db, qb, "d.reported_at DESC, d.id DESC", page).await?;
    Ok(DisputeList { disputes, paging })
}
