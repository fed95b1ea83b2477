//! The notification service's records and closed sets: event types, channels, delivery statuses,
//! devices, in-app notifications and outbox deliveries as the API shows them.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::choices;
use crate::types::Choice;

choices!(
    /// What a notification is about (the key of channel preferences and of the texts).
    EventTypes = [
        "bookingRequested",
        "bookingApproved",
        "bookingDeclined",
        "bookingCancelled",
        "bookingPaid",
        "bookingExpired",
        "paymentFailed",
        "paymentRefunded",
        "newMessage",
        "reviewPublished",
        "disputeOpened",
        "disputeResolved",
        "checkInReminder",
        "announcement"
    ]
);
choices!(
    /// The external channels a notification may also go out on (in-app is always on).
    Channels = ["email", "sms", "push"]
);
choices!(
    /// Where an outbox delivery stands.
    DeliveryStatuses = ["pending", "sent", "failed"]
);
choices!(
    /// The platform of a push device.
    DevicePlatforms = ["ios", "android", "web"]
);
choices!(
    /// How the in-app list may be sorted (`-` first = newest first).
    NotificationSorts = ["-createdAt", "createdAt"]
);

/// A registered push device.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Device {
    /// The device's id (what unregisterDevice takes).
    pub id: Uuid,
    /// The user it belongs to.
    pub user_id: Uuid,
    /// `ios`, `android` or `web`.
    #[schemars(with = "Choice<DevicePlatforms>")]
    pub platform: String,
    /// The push token (FCM registration token) notifications are sent to.
    pub push_token: String,
    /// A name to recognise it by.
    pub device_name: Option<String>,
    /// The app version that registered it.
    pub app_version: Option<String>,
    /// False once unregistered.
    pub is_active: bool,
    /// Optimistic-concurrency version.
    pub record_version: i32,
    /// Registered.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Columns of [`Device`].
pub const DEVICE_COLUMNS: &str = "id, user_id, platform, push_token, device_name, app_version, \
     is_active, record_version, created_at, updated_at";

/// One notification in a user's in-app list.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    /// The notification's id (what markNotificationsSeen takes).
    pub id: Uuid,
    /// The recipient.
    pub user_id: Uuid,
    /// What it is about.
    #[schemars(with = "Choice<EventTypes>")]
    pub event_type: String,
    /// Its title, in the recipient's language.
    pub title: String,
    /// Its text, in the recipient's language.
    pub body: String,
    /// The objects it concerns (`reservationId`, `listingId`, `disputeId`, …), for links.
    pub data: Value,
    /// The language of title and body.
    pub language: String,
    /// Whether the recipient has seen it.
    pub is_seen: bool,
    /// When it was marked seen.
    pub seen_at: Option<DateTime<Utc>>,
    /// The admin who sent it (sendNotification); null for automatic notifications.
    pub sent_by: Option<Uuid>,
    /// Optimistic-concurrency version.
    pub record_version: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// Columns of [`Notification`].
pub const NOTIFICATION_COLUMNS: &str = "id, user_id, event_type, title, body, data, language, \
     is_seen, seen_at, sent_by, record_version, created_at";

/// One outbox delivery (an email, SMS or push message) and where it stands.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// The delivery's id; also the idempotency key and email Message-ID sent to the provider.
    pub id: Uuid,
    /// The in-app notification it delivers (null for a verification code).
    pub notification_id: Option<Uuid>,
    /// The recipient.
    pub user_id: Uuid,
    /// `email`, `sms` or `push`.
    #[schemars(with = "Choice<Channels>")]
    pub channel: String,
    /// The address, phone number or push token.
    pub destination: String,
    /// The push device, for push deliveries.
    pub device_id: Option<Uuid>,
    /// The subject (email) or title (push).
    pub subject: String,
    /// `pending` (waiting or retrying), `sent` or `failed` (gave up).
    #[schemars(with = "Choice<DeliveryStatuses>")]
    pub status: String,
    /// Sending attempts so far.
    pub attempts: i32,
    /// Attempts before it is given up as `failed`.
    pub max_attempts: i32,
    /// When the next attempt is due (pending deliveries).
    pub next_attempt_at: DateTime<Utc>,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// The provider's id for the sent message (SMTP Message-ID, Twilio SID, FCM name).
    pub provider_message_id: Option<String>,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// Queued.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// Columns of [`Delivery`].
pub const DELIVERY_COLUMNS: &str =
    "id, notification_id, user_id, channel, destination, device_id, \
     subject, status, attempts, max_attempts, next_attempt_at, last_error, provider_message_id, \
     sent_at, created_at, updated_at";
