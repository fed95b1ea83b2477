//! `sendNotification`: an admin sends a message to chosen users, in-app and on the external
//! channels each recipient allows for announcements.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

use super::enqueue::{notify, Draft};
use super::model::Channels;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Method, Operation, Service};
use crate::types::{Choice, Text};

/// Input of `sendNotification`: the notification and its recipients.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewNotification {
    /// The users to notify (1–1000 ids).
    #[schemars(length(min = 1, max = 1000))]
    pub recipient_ids: Vec<Uuid>,
    /// The title (email subject, push title).
    pub title: Text<200>,
    /// The message.
    pub body: Text<2000>,
    /// The external channels to use besides in-app (default: every configured one the recipient
    /// allows for announcements).
    #[schemars(length(max = 3))]
    pub channels: Option<Vec<Choice<Channels>>>,
    /// Ids or values for links in clients (an object of strings).
    pub data: Option<serde_json::Map<String, Value>>,
}

/// The answer of `sendNotification`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SentNotification {
    /// The in-app notifications written, one per active recipient.
    pub notification_ids: Vec<Uuid>,
    /// Recipients that got it.
    pub recipient_count: usize,
    /// Ids that are not active users (nothing sent to them).
    pub skipped_recipient_ids: Vec<Uuid>,
    /// Outbox deliveries queued (email, SMS, push).
    pub deliveries_queued: usize,
}

/// The send operation.
pub fn operations() -> Vec<Operation> {
    vec![Operation::build("sendNotification", Service::Notification)
        .title("Send a notification")
        .describe(
            "An admin sends a notification (title, body) to the given users: always in-app, and on email, SMS \
             and push where configured and allowed by each recipient's preferences for announcements \
             (or just the `channels` listed). External deliveries go through the outbox and are \
             retried; follow them with listNotificationDeliveries.",
        )
        .rest(Method::Post, "/notification-api/v1/notifications")
        .access(Access::Admin)
        .creates("notification")
        // Email, SMS and push reach outside Haven.
        .open_world()
        .handler(send)]
}

async fn send(ctx: Ctx, input: NewNotification) -> Result<SentNotification, ToolError> {
    let admin = ctx.caller()?.user_id;
    if input.recipient_ids.is_empty() || input.recipient_ids.len() > 1000 {
        return Err(ToolError::field(
            "recipientIds",
            "must list between 1 and 1000 user ids",
        ));
    }
    let mut recipients = input.recipient_ids;
    recipients.sort();
    recipients.dedup();
    if input.channels.as_ref().is_some_and(|c| c.len() > 3) {
        return Err(ToolError::field(
            "channels",
            "must list at most 3 channels (email, sms, push)",
        ));
    }
    let only: Option<Vec<&'static str>> = input
        .channels
        .map(|cs| cs.iter().map(|c| c.as_str()).collect());
    let data = input.data.map(Value::Object).unwrap_or_else(|| json!({}));
    let mut db = ctx.db().await?;
    let mut out = SentNotification {
        notification_ids: Vec::new(),
        recipient_count: 0,
        skipped_recipient_ids: Vec::new(),
        deliveries_queued: 0,
    };
    for user in recipients {
        let mut draft = Draft::new(user, "announcement");
        draft.texts = Some((input.title.as_str().into(), input.body.as_str().into()));
        draft.sent_by = Some(admin);
        draft.only_channels = only.clone();
        draft.data = data.clone();
        match notify(&mut db, &ctx, draft).await? {
            Some(written) => {
                out.notification_ids.push(written.notification_id);
                out.recipient_count += 1;
                out.deliveries_queued += written.deliveries;
            }
            None => out.skipped_recipient_ids.push(user),
        }
    }
    Ok(out)
}
