//! Push devices: a user registers the devices that should receive push notifications, lists them
//! and unregisters them. Every operation works on the caller's own devices only.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{Device, DevicePlatforms, DEVICE_COLUMNS};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Action, Method, Operation, Service};
use crate::sql;
use crate::types::{Choice, Paging, Text};

/// Input of `registerDevice`: the spec's `device` object.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewDevice {
    /// `ios`, `android` or `web`.
    pub platform: Choice<DevicePlatforms>,
    /// The push token (FCM registration token) of the app on this device.
    pub push_token: Text<4096>,
    /// A name to recognise it by ("Ana's phone").
    pub device_name: Option<Text<200>>,
    /// The app version.
    pub app_version: Option<Text<50>>,
}

/// Input of `unregisterDevice`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceRef {
    /// The device to remove (one of yours).
    pub device_id: Uuid,
}

/// Input of `listDevices`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeviceFilters {
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of the caller's devices.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeviceList {
    /// The devices.
    pub devices: Vec<Device>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The device operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("registerDevice", Service::Notification)
            .title("Register a push device")
            .who("any logged-in user, for themself")
            .describe(
                "Registers a device (platform and push token) to receive push notifications for the caller. \
                 Registering a token again updates it (and moves it to the caller if another account had it). \
                 The owner is always the caller.",
            )
            .rest(Method::Post, "/notification-api/v1/devices/register")
            .creates("device")
            .handler(register),
        Operation::build("unregisterDevice", Service::Notification)
            .title("Unregister a push device")
            .who("the device's owner")
            .describe(
                "Removes one of the caller's registered devices; it receives no more push notifications. \
                 Another user's device is not found.",
            )
            .rest(Method::Delete, "/notification-api/v1/devices/unregister/{deviceId}")
            .deletes("device")
            .handler(unregister),
        Operation::build("listDevices", Service::Notification)
            .title("List my push devices")
            .who("any logged-in user, for their own devices")
            .describe("Lists the caller's registered push devices, newest first, paginated.")
            .rest(Method::Get, "/notification-api/v1/devices")
            .reads(Action::List, "devices")
            .handler(list),
    ]
}

async fn register(ctx: Ctx, input: NewDevice) -> Result<Device, ToolError> {
    let owner = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    let sql = format!(
        "INSERT INTO notification.devices (user_id, platform, push_token, device_name, app_version)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (push_token) WHERE is_active DO UPDATE SET
             user_id = EXCLUDED.user_id, platform = EXCLUDED.platform,
             device_name = COALESCE(EXCLUDED.device_name, notification.devices.device_name),
             app_version = COALESCE(EXCLUDED.app_version, notification.devices.app_version),
             record_version = notification.devices.record_version + 1, updated_at = now()
         RETURNING {DEVICE_COLUMNS}"
    );
    Ok(sqlx::query_as(&sql)
        .bind(owner)
        .bind(input.platform.as_str())
        .bind(input.push_token.as_str())
        .bind(input.device_name.as_ref().map(|t| t.as_str()))
        .bind(input.app_version.as_ref().map(|t| t.as_str()))
        .fetch_one(&mut *db)
        .await?)
}

async fn unregister(ctx: Ctx, input: DeviceRef) -> Result<Device, ToolError> {
    let owner = ctx.caller()?.user_id;
    let mut db = ctx.db().await?;
    let sql = format!(
        "UPDATE notification.devices SET is_active = false, record_version = record_version + 1, updated_at = now()
          WHERE id = $1 AND user_id = $2 AND is_active RETURNING {DEVICE_COLUMNS}"
    );
    sqlx::query_as(&sql)
        .bind(input.device_id)
        .bind(owner)
        .fetch_optional(&mut *db)
        .await?
        .ok_or_else(|| ToolError::not_found("device"))
}

async fn list(ctx: Ctx, input: DeviceFilters) -> Result<DeviceList, ToolError> {
    let owner = ctx.caller()?.user_id;
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(
        DEVICE_COLUMNS,
        "notification.devices WHERE is_active AND user_id = ",
    );
    qb.push_bind(owner);
    let mut db = ctx.db().await?;
    let (devices, paging) = sql::fetch_page(&mut db, qb, "created_at DESC, id", page).await?;
    Ok(DeviceList { devices, paging })
}
