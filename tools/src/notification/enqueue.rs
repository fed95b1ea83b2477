//! Writing a notification: the in-app row, its `notification` event on `/events`, and one outbox
//! delivery per external channel the recipient wants it on, all on the caller's connection, so
//! they commit (or vanish) with the change that caused them.

use serde_json::{json, Map, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use super::channels::ChannelSet;
use super::texts;
use crate::context::Ctx;
use crate::error::ToolError;

/// How notifications are delivered on this server.
#[derive(Debug, Clone)]
pub struct NotificationSettings {
    /// The external channels with a configured provider.
    pub channels: ChannelSet,
    /// Attempts per delivery before it is given up as `failed`.
    pub max_attempts: i32,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            channels: ChannelSet::default(),
            max_attempts: 8,
        }
    }
}

/// A notification to write for one recipient.
#[derive(Debug, Clone)]
pub struct Draft {
    /// The recipient.
    pub user_id: Uuid,
    /// What it is about (one of [`super::model::EventTypes`]).
    pub event_type: &'static str,
    /// Values for the texts' placeholders (`listing`, `checkIn`, `other`, …).
    pub params: Map<String, Value>,
    /// The ids it concerns, shown to clients for links.
    pub data: Value,
    /// Makes it idempotent: a second draft with the same key writes nothing.
    pub dedupe_key: Option<String>,
    /// Own title and body (an admin's message) instead of the event's texts.
    pub texts: Option<(String, String)>,
    /// The admin who sent it.
    pub sent_by: Option<Uuid>,
    /// Only these external channels (an admin's choice); `None` = every channel.
    pub only_channels: Option<Vec<&'static str>>,
}

impl Draft {
    /// An automatic notification of `event_type` to `user_id`.
    pub fn new(user_id: Uuid, event_type: &'static str) -> Self {
        Draft {
            user_id,
            event_type,
            params: Map::new(),
            data: json!({}),
            dedupe_key: None,
            texts: None,
            sent_by: None,
            only_channels: None,
        }
    }
}

/// What [`notify`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    /// The in-app notification.
    pub notification_id: Uuid,
    /// The outbox deliveries queued for it.
    pub deliveries: usize,
}

/// Writes `draft` on `db`: nothing when the recipient is unknown or archived, or when the dedupe
/// key was used before.
pub async fn notify(
    db: &mut PgConnection,
    ctx: &Ctx,
    draft: Draft,
) -> Result<Option<Written>, ToolError> {
    let settings = &ctx.services.settings.notifications;
    let recipient: Option<(String, Option<String>)> = sqlx::query_as(
        "SELECT email, preferred_language FROM auth.users WHERE id = $1 AND is_active",
    )
    .bind(draft.user_id)
    .fetch_optional(&mut *db)
    .await?;
    let Some((email, preferred)) = recipient else {
        return Ok(None);
    };
    let (language, title, body) = match &draft.texts {
        Some((title, body)) => (
            texts::language_for(preferred.as_deref()),
            title.clone(),
            body.clone(),
        ),
        None => match texts::render(draft.event_type, preferred.as_deref(), &draft.params) {
            Some(r) => (r.language, r.title, r.body),
            None => return Ok(None),
        },
    };
    // One statement: the in-app row and, when it was written (a used dedupe key writes
    // nothing), its `notification` event on the recipient's `/events` stream, announced on
    // `haven_events` once the transaction commits ([`Ctx::commit`]). The event carries the title and the ids, never the
    // body: a body may quote a message that is later moderated or deleted, and the event history
    // outlives that (the inbox is scrubbed instead).
    let event = json!({
        "dataName": "notification",
        "action": "create",
        "eventType": draft.event_type,
        "title": title,
        "data": draft.data,
        "isSeen": false,
    });
    let written: Option<(Uuid, i64)> = sqlx::query_as(
        "WITH n AS (
            INSERT INTO notification.notifications (user_id, event_type, title, body, data, language, sent_by, dedupe_key)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (dedupe_key) DO NOTHING RETURNING id),
         event AS (
            INSERT INTO events.domain_events (kind, object_id, actor_id, payload, audience)
            SELECT 'notification', n.id, $7, $9, ARRAY[$1::uuid] FROM n RETURNING id)
         SELECT n.id, event.id FROM n, event",
    )
    .bind(draft.user_id)
    .bind(draft.event_type)
    .bind(&title)
    .bind(&body)
    .bind(&draft.data)
    .bind(language)
    .bind(draft.sent_by)
    .bind(&draft.dedupe_key)
    .bind(event)
    .fetch_optional(&mut *db)
    .await?;
    let Some((id, event_id)) = written else {
        return Ok(None);
    };
    ctx.announce_event(event_id);
    let deliveries =
        queue_deliveries(db, settings, id, &draft, &email, language, &title, &body).await?;
    if deliveries > 0 {
        ctx.wake_outbox();
    }
    Ok(Some(Written {
        notification_id: id,
        deliveries,
    }))
}

/// Queues one delivery per configured, wanted channel with a destination; wakes the workers.
#[allow(clippy::too_many_arguments)]
async fn queue_deliveries(
    db: &mut PgConnection,
    settings: &NotificationSettings,
    id: Uuid,
    draft: &Draft,
    email: &str,
    language: &str,
    title: &str,
    body: &str,
) -> Result<usize, ToolError> {
    let configured = settings.channels;
    let wanted: Vec<&str> = configured
        .names()
        .into_iter()
        .filter(|c| {
            draft
                .only_channels
                .as_ref()
                .is_none_or(|only| only.contains(c))
        })
        .collect();
    if wanted.is_empty() {
        return Ok(0);
    }
    let off: Vec<String> = sqlx::query_scalar(
        "SELECT channel FROM notification.preferences
         WHERE user_id = $1 AND event_type = $2 AND NOT enabled",
    )
    .bind(draft.user_id)
    .bind(draft.event_type)
    .fetch_all(&mut *db)
    .await?;
    // (destination, device)
    let mut targets: Vec<(&str, String, Option<Uuid>)> = Vec::new();
    for channel in wanted.into_iter().filter(|c| !off.iter().any(|o| o == c)) {
        match channel {
            "email" => targets.push(("email", email.to_string(), None)),
            "sms" => {
                // The number set in the preferences, else the account's verified mobile.
                let phone: Option<String> = sqlx::query_scalar(
                    "SELECT COALESCE(
                         (SELECT phone_number FROM notification.contacts WHERE user_id = $1),
                         (SELECT mobile FROM auth.users WHERE id = $1 AND mobile_verified))",
                )
                .bind(draft.user_id)
                .fetch_one(&mut *db)
                .await?;
                if let Some(phone) = phone {
                    targets.push(("sms", phone, None));
                }
            }
            "push" => {
                let devices: Vec<(Uuid, String)> = sqlx::query_as(
                    "SELECT id, push_token FROM notification.devices WHERE user_id = $1 AND is_active",
                )
                .bind(draft.user_id)
                .fetch_all(&mut *db)
                .await?;
                for (device, token) in devices {
                    targets.push(("push", token, Some(device)));
                }
            }
            _ => {}
        }
    }
    if targets.is_empty() {
        return Ok(0);
    }
    let html = texts::email_html(language, title, body);
    for (channel, destination, device) in &targets {
        sqlx::query(
            "INSERT INTO notification.deliveries (notification_id, user_id, channel, destination, device_id,
                 subject, body_text, body_html, payload, max_attempts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(id)
        .bind(draft.user_id)
        .bind(channel)
        .bind(destination)
        .bind(device)
        .bind(title)
        .bind(body)
        .bind((*channel == "email").then_some(&html))
        .bind(&draft.data)
        .bind(settings.max_attempts)
        .execute(&mut *db)
        .await?;
    }
    Ok(targets.len())
}

/// Queues one message that is not a notification (a verification code) on `channel` to
/// `destination`, whatever the recipient's preferences say. It is `sensitive`: the text is wiped
/// from the outbox once sent or given up, and admins never see it. Answers whether the channel is
/// configured (nothing is queued when it is not).
#[allow(clippy::too_many_arguments)]
pub async fn send_direct(
    db: &mut PgConnection,
    ctx: &Ctx,
    user_id: Uuid,
    channel: &'static str,
    destination: &str,
    subject: &str,
    text: &str,
) -> Result<bool, ToolError> {
    let settings = &ctx.services.settings.notifications;
    if !settings.channels.has(channel) {
        return Ok(false);
    }
    let html = (channel == "email").then(|| texts::email_html("en", subject, text));
    sqlx::query(
        "INSERT INTO notification.deliveries (user_id, channel, destination, subject, body_text, body_html,
             max_attempts, sensitive)
         VALUES ($1, $2, $3, $4, $5, $6, $7, true)",
    )
    .bind(user_id)
    .bind(channel)
    .bind(destination)
    .bind(subject)
    .bind(text)
    .bind(html)
    .bind(settings.max_attempts)
    .execute(&mut *db)
    .await?;
    ctx.wake_outbox();
    Ok(true)
}
