//! `listNotificationDeliveries`: admins see every outbox delivery and where it stands (pending,
//! sent, failed; attempts, last error, provider id).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::model::{Channels, Delivery, DeliveryStatuses, DELIVERY_COLUMNS};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Method, Operation, Service};
use crate::sql;
use crate::types::{EnumFilter, Filter, Paging};

/// Input of `listNotificationDeliveries`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliveryFilters {
    /// `pending`, `sent`, `failed`.
    pub status: Option<EnumFilter<DeliveryStatuses>>,
    /// `email`, `sms`, `push`.
    pub channel: Option<EnumFilter<Channels>>,
    /// Recipient id(s).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub user_id: Option<Filter>,
    /// Notification id(s).
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub notification_id: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of deliveries.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryList {
    /// The deliveries, newest first.
    pub deliveries: Vec<Delivery>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The delivery operations.
pub fn operations() -> Vec<Operation> {
    vec![Operation::build("listNotificationDeliveries", Service::Notification)
        .title("List notification deliveries")
        .describe(
            "Admins: the outbox of email, SMS and push deliveries with their status (`pending` waiting or \
             retrying, `sent`, `failed` after the last attempt or a permanent refusal), attempts, next attempt, \
             last error and the provider's message id. Filter by status, channel, userId, notificationId.",
        )
        .rest(Method::Get, "/notification-api/v1/deliveries")
        .access(Access::Admin)
        .reads(Action::List, "deliveries")
        .handler(list)]
}

async fn list(ctx: Ctx, input: DeliveryFilters) -> Result<DeliveryList, ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(DELIVERY_COLUMNS, "notification.deliveries WHERE true");
    sql::enum_filter(&mut qb, "status", input.status.as_deref());
    sql::enum_filter(&mut qb, "channel", input.channel.as_deref());
    sql::id_filter(&mut qb, "user_id", "userId", input.user_id.as_ref())?;
    sql::id_filter(
        &mut qb,
        "notification_id",
        "notificationId",
        input.notification_id.as_ref(),
    )?;
    let mut db = ctx.db().await?;
    let (deliveries, paging) = sql::fetch_page(&mut db, qb, "created_at DESC, id", page).await?;
    Ok(DeliveryList { deliveries, paging })
}
