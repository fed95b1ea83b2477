//! The reservation activity timeline (Flecto's activity shape): every state change of a
//! reservation, its payments and disputes, as `kind` plus old/new values, actor and time.
//! Entries are written by the operations themselves through `model::record_activity`; this module
//! only reads them.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::QueryBuilder;
use uuid::Uuid;

use super::model::load_reservation;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter, Paging};
use crate::vocabulary::ActivityKinds;

/// One entry of a reservation's timeline.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// The entry's id.
    pub id: Uuid,
    /// The reservation it belongs to.
    pub reservation_id: Uuid,
    /// What happened: a request, approval or status change, a payment, refund or dispute step.
    #[schemars(with = "Choice<ActivityKinds>")]
    pub kind: String,
    /// The value before the change (absent for pure events).
    pub old_value: Option<Value>,
    /// The value after the change, or the event's details.
    pub new_value: Option<Value>,
    /// Who did it (null: the system, e.g. a webhook or an expired hold).
    pub actor_id: Option<Uuid>,
    /// A free-text remark, e.g. a cancellation reason.
    pub note: Option<String>,
    /// When it happened.
    pub created_at: DateTime<Utc>,
}

/// Input of `listReservationActivities`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ActivityFilters {
    /// The reservation whose timeline to read.
    pub reservation_id: Uuid,
    /// Only these kinds (case-insensitive).
    pub kind: Option<EnumFilter<ActivityKinds>>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of timeline entries, newest first.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActivityList {
    /// The entries on this page.
    pub reservation_activities: Vec<Activity>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The activity operations.
pub fn operations() -> Vec<Operation> {
    vec![Operation::build("listReservationActivities", Service::Booking)
        .title("List a reservation's activity timeline")
        .who("the reservation's guest and host, and admins")
        .describe(
            "Returns what happened to a reservation, newest first: status changes, payments, \
             disputes and their resolution. Each entry has kind, oldValue, newValue, actorId \
             (null = the system), note and createdAt. Filter by kind. Only the reservation's guest, \
             its host or an admin can read it; anyone else gets 'reservation not found'. Paginated.",
        )
        .rest(
            Method::Get,
            "/bookingmanagement-api/v1/reservations/{reservationId}/activities",
        )
        .access(Access::Authenticated)
        .reads(Action::List, "reservationActivities")
        .handler(list_activities)]
}

async fn list_activities(ctx: Ctx, input: ActivityFilters) -> Result<ActivityList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    load_reservation(&ctx, input.reservation_id, false).await?;
    let mut qb = QueryBuilder::new(
        "SELECT id, reservation_id, kind, old_value, new_value, actor_id, note, created_at,
            count(*) OVER () AS total_count
         FROM booking.reservation_activities WHERE reservation_id = ",
    );
    qb.push_bind(input.reservation_id);
    sql::enum_filter(&mut qb, "kind", input.kind.as_deref());
    let mut db = ctx.db().await?;
    let (reservation_activities, paging) =
        sql::fetch_page(&mut db, qb, "created_at DESC, kind DESC, id DESC", page).await?;
    Ok(ActivityList {
        reservation_activities,
        paging,
    })
}
