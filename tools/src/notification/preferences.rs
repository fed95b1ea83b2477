//! Per-user channel preferences: which events go out on which external channel (in-app is always
//! on), and the phone number SMS needs. Every event is on every channel until the user turns it off.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::{Channels, EventTypes};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Method, Operation, Service};
use crate::types::{Choice, Choices};

/// One event's channels.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventChannels {
    /// The event.
    #[schemars(with = "Choice<EventTypes>")]
    pub event_type: String,
    /// Always true: every notification is in the in-app list.
    pub in_app: bool,
    /// Sent by email.
    pub email: bool,
    /// Sent by SMS (needs a phone number).
    pub sms: bool,
    /// Sent to the registered push devices.
    pub push: bool,
}

/// A user's notification preferences.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Preferences {
    /// Whose preferences these are (the caller).
    pub user_id: Uuid,
    /// The number SMS go to (E.164), if set.
    pub phone_number: Option<String>,
    /// Each event's channels.
    pub events: Vec<EventChannels>,
    /// The external channels this server has configured (others are stored but not used).
    #[schemars(with = "Vec<Choice<Channels>>")]
    pub configured_channels: Vec<String>,
}

/// One change: an event and the channels to turn on or off (omitted ones stay as they are).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EventChange {
    /// The event.
    pub event_type: Choice<EventTypes>,
    /// Email on or off.
    pub email: Option<bool>,
    /// SMS on or off.
    pub sms: Option<bool>,
    /// Push on or off.
    pub push: Option<bool>,
}

/// Input of `updateNotificationPreferences`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreferencesPatch {
    /// The phone number for SMS in E.164 form (`+351912345678`); an empty string removes it.
    pub phone_number: Option<String>,
    /// Channel changes per event.
    #[schemars(length(max = 50))]
    pub events: Option<Vec<EventChange>>,
}

/// Input of `getNotificationPreferences` (none).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoInput {}

/// The preference operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("getNotificationPreferences", Service::Notification)
            .title("My notification preferences")
            .who("any logged-in user, for themself")
            .describe(
                "Shows, for every event type, whether the caller gets it by email, SMS and push (in-app is \
                 always on), the phone number SMS go to, and which channels the server has configured.",
            )
            .rest(Method::Get, "/notification-api/v1/preferences")
            .reads(crate::registry::Action::Get, "preferences")
            .handler(get),
        Operation::build("updateNotificationPreferences", Service::Notification)
            .title("Change my notification preferences")
            .who("any logged-in user, for themself")
            .describe(
                "Turns email, SMS or push on or off per event type (`events: [{eventType, email?, sms?, push?}]`) \
                 and sets the phone number for SMS. In-app notifications cannot be turned off. Answers the \
                 preferences after the change.",
            )
            .rest(Method::Patch, "/notification-api/v1/preferences")
            .updates("preferences")
            .handler(update),
    ]
}

/// Whether `phone` is an E.164 number.
fn is_e164(phone: &str) -> bool {
    let digits = phone.strip_prefix('+').unwrap_or("");
    (8..=15).contains(&digits.len())
        && digits.chars().all(|c| c.is_ascii_digit())
        && !digits.starts_with('0')
}

async fn load(ctx: &Ctx, user: Uuid) -> Result<Preferences, ToolError> {
    let mut db = ctx.db().await?;
    let phone_number: Option<String> =
        sqlx::query_scalar("SELECT phone_number FROM notification.contacts WHERE user_id = $1")
            .bind(user)
            .fetch_optional(&mut *db)
            .await?
            .flatten();
    let stored: Vec<(String, String, bool)> = sqlx::query_as(
        "SELECT event_type, channel, enabled FROM notification.preferences WHERE user_id = $1",
    )
    .bind(user)
    .fetch_all(&mut *db)
    .await?;
    let on = |event: &str, channel: &str| {
        stored
            .iter()
            .find(|(e, c, _)| e == event && c == channel)
            .is_none_or(|(_, _, enabled)| *enabled)
    };
    let events = EventTypes::VALUES
        .iter()
        .map(|e| EventChannels {
            event_type: e.to_string(),
            in_app: true,
            email: on(e, "email"),
            sms: on(e, "sms"),
            push: on(e, "push"),
        })
        .collect();
    Ok(Preferences {
        user_id: user,
        phone_number,
        events,
        configured_channels: ctx
            .services
            .settings
            .notifications
            .channels
            .names()
            .into_iter()
            .map(str::to_owned)
            .collect(),
    })
}

async fn get(ctx: Ctx, _input: NoInput) -> Result<Preferences, ToolError> {
    let user = ctx.caller()?.user_id;
    load(&ctx, user).await
}

async fn update(ctx: Ctx, input: PreferencesPatch) -> Result<Preferences, ToolError> {
    let user = ctx.caller()?.user_id;
    if input.events.as_ref().is_some_and(|e| e.len() > 50) {
        return Err(ToolError::field("events", "must list at most 50 changes"));
    }
    if let Some(phone) = &input.phone_number {
        let phone = phone.trim();
        if !phone.is_empty() && !is_e164(phone) {
            return Err(ToolError::field(
                "phoneNumber",
                "must be a phone number in international E.164 form, such as +351912345678 (or empty to remove it)",
            ));
        }
        let stored = (!phone.is_empty()).then_some(phone);
        let mut db = ctx.db().await?;
        sqlx::query(
            "INSERT INTO notification.contacts (user_id, phone_number) VALUES ($1, $2)
             ON CONFLICT (user_id) DO UPDATE SET phone_number = EXCLUDED.phone_number, updated_at = now()",
        )
        .bind(user)
        .bind(stored)
        .execute(&mut *db)
        .await?;
    }
    for change in input.events.unwrap_or_default() {
        for (channel, value) in [
            ("email", change.email),
            ("sms", change.sms),
            ("push", change.push),
        ] {
            let Some(enabled) = value else { continue };
            let mut db = ctx.db().await?;
            sqlx::query(
                "INSERT INTO notification.preferences (user_id, event_type, channel, enabled) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (user_id, event_type, channel) DO UPDATE SET enabled = EXCLUDED.enabled, updated_at = now()",
            )
            .bind(user)
            .bind(change.event_type.as_str())
            .bind(channel)
            .bind(enabled)
            .execute(&mut *db)
            .await?;
        }
    }
    load(&ctx, user).await
}

#[cfg(test)]
mod tests {
    #[test]
    fn phone_numbers_are_e164() {
        assert!(super::is_e164("+351912345678"));
        assert!(!super::is_e164("0912345678"));
        assert!(!super::is_e164("+35 19"));
    }
}
