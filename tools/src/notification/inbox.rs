//! The caller's in-app notifications: the paginated list (`getNotifications`), the unseen count
//! and marking notifications seen. Only one's own notifications are ever read or changed.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{EventTypes, Notification, NotificationSorts, NOTIFICATION_COLUMNS};
use crate::context::Ctx;
use crate::error::{ErrorKind, ToolError};
use crate::registry::{Action, Envelope, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, EnumFilter, Page, Paging};

/// Input of `getNotifications`: `page`, `limit`, `sortBy` and filters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NotificationQuery {
    /// Page number (1-based, default 1).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub page: Option<u32>,
    /// Notifications per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// `-createdAt` (newest first, the default) or `createdAt`.
    pub sort_by: Option<Choice<NotificationSorts>>,
    /// Only unseen (`true`) or only seen (`false`) notifications.
    pub is_seen: Option<bool>,
    /// Only these event types.
    pub event_type: Option<EnumFilter<EventTypes>>,
}

/// A page of the caller's notifications.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationList {
    /// The notifications on this page.
    pub notifications: Vec<Notification>,
    /// Where this page sits.
    pub paging: Paging,
    /// How many of the caller's notifications are unseen (all pages).
    pub unseen_count: i64,
}

/// Input of `markNotificationsSeen`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SeenInput {
    /// The notifications to mark seen (1–100 of the caller's own).
    #[schemars(length(min = 1, max = 100))]
    pub notification_ids: Vec<Uuid>,
}

/// The answer of `markNotificationsSeen`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SeenResult {
    /// The notifications now marked seen.
    pub notification_ids: Vec<Uuid>,
    /// How many of them were unseen before this call.
    pub newly_seen: i64,
    /// The caller's unseen notifications left.
    pub unseen_count: i64,
    /// The caller (the notifications' recipient).
    pub user_id: Uuid,
}

/// Input of `getUnseenNotificationCount` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// The unseen count.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UnseenCount {
    /// The caller's unseen notifications.
    pub unseen_count: i64,
}

/// The inbox operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("getNotifications", Service::Notification)
            .title("My notifications")
            .who("any logged-in user, for their own notifications")
            .describe(
                "Lists the caller's in-app notifications (booking requests and answers, payments, messages, \
                 reviews, disputes, check-in reminders, admin announcements), newest first, with the unseen count. \
                 Paginated with page and limit; filter by isSeen or eventType. Mark them read with \
                 markNotificationsSeen.",
            )
            .rest(Method::Get, "/notification-api/v1/notifications")
            .reads(Action::List, "notifications")
            .handler(list),
        Operation::build("markNotificationsSeen", Service::Notification)
            .title("Mark notifications as seen")
            .who("the notifications' recipient")
            .describe(
                "Marks the given notifications (ids from getNotifications) as seen. They must all be the caller's \
                 own: if any is not, nothing is changed and the answer names it.",
            )
            .rest(Method::Post, "/notification-api/v1/notifications/seen")
            .updates("notifications")
            .handler(mark_seen),
        Operation::build("getUnseenNotificationCount", Service::Notification)
            .title("Count my unseen notifications")
            .who("any logged-in user, for their own notifications")
            .describe("Answers how many of the caller's notifications are not yet seen (for a badge).")
            .rest(Method::Get, "/notification-api/v1/notifications/unseencount")
            .reads(Action::Get, "unseenCount")
            .envelope(Envelope::Fields)
            .handler(unseen),
    ]
}

async fn unseen_count(db: &mut sqlx::PgConnection, user: Uuid) -> Result<i64, ToolError> {
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM notification.notifications WHERE user_id = $1 AND is_active AND NOT is_seen",
    )
    .bind(user)
    .fetch_one(&mut *db)
    .await?)
}

async fn list(ctx: Ctx, input: NotificationQuery) -> Result<NotificationList, ToolError> {
    let owner = ctx.caller()?.user_id;
    let limit = input.limit.unwrap_or(25);
    if limit == 0 || limit > ctx.services.settings.max_page_rows {
        return Err(ToolError::field(
            "limit",
            format!(
                "must be between 1 and {}",
                ctx.services.settings.max_page_rows
            ),
        ));
    }
    let page = Page {
        number: input.page.unwrap_or(1).max(1),
        rows: limit,
    };
    let mut qb = sql::list_select(
        NOTIFICATION_COLUMNS,
        "notification.notifications WHERE is_active AND user_id = ",
    );
    qb.push_bind(owner);
    if let Some(seen) = input.is_seen {
        qb.push(" AND is_seen = ");
        qb.push_bind(seen);
    }
    sql::enum_filter(&mut qb, "event_type", input.event_type.as_deref());
    let order = match input.sort_by.as_ref().map(|s| s.as_str()) {
        Some("createdAt") => "created_at, id",
        _ => "created_at DESC, id DESC",
    };
    let mut db = ctx.db().await?;
    let (notifications, paging) = sql::fetch_page(&mut db, qb, order, page).await?;
    let unseen_count = unseen_count(&mut db, owner).await?;
    Ok(NotificationList {
        notifications,
        paging,
        unseen_count,
    })
}

async fn mark_seen(ctx: Ctx, input: SeenInput) -> Result<SeenResult, ToolError> {
    let owner = ctx.caller()?.user_id;
    if input.notification_ids.is_empty() || input.notification_ids.len() > 100 {
        return Err(ToolError::field(
            "notificationIds",
            "must list between 1 and 100 notification ids",
        ));
    }
    let mut ids = input.notification_ids;
    ids.sort();
    ids.dedup();
    let mut db = ctx.db().await?;
    let mine: Vec<(Uuid, bool)> = sqlx::query_as(
        "SELECT id, is_seen FROM notification.notifications
          WHERE id = ANY($1) AND user_id = $2 AND is_active FOR UPDATE",
    )
    .bind(&ids)
    .bind(owner)
    .fetch_all(&mut *db)
    .await?;
    if let Some(missing) = ids.iter().find(|id| !mine.iter().any(|(m, _)| m == *id)) {
        return Err(ToolError::new(
            ErrorKind::NotFound,
            format!(
                "notification {missing} was not found among your notifications; nothing was marked"
            ),
        ));
    }
    let newly_seen = mine.iter().filter(|(_, seen)| !seen).count() as i64;
    sqlx::query(
        "UPDATE notification.notifications SET is_seen = true, seen_at = now(),
                record_version = record_version + 1, updated_at = now()
          WHERE id = ANY($1) AND NOT is_seen",
    )
    .bind(&ids)
    .execute(&mut *db)
    .await?;
    let unseen_count = unseen_count(&mut db, owner).await?;
    Ok(SeenResult {
        notification_ids: ids,
        newly_seen,
        unseen_count,
        user_id: owner,
    })
}

async fn unseen(ctx: Ctx, _input: NoInput) -> Result<UnseenCount, ToolError> {
    let owner = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    Ok(UnseenCount {
        unseen_count: unseen_count(&mut db, owner).await?,
    })
}
