//! The thread and message records as every messaging operation reads them, and the one rule for
//! who may see them: a thread's guest and host (its two participants) and admins. Anyone else gets
//! "not found", so ids leak nothing. A message that was deleted or moderated is hidden from the
//! participants too (admins still see it: it is kept for audit).

use chrono::{DateTime, NaiveDate, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::context::Ctx;
use crate::error::ToolError;
use crate::types::{Choice, RecordMeta};
use crate::vocabulary::{BookingStatuses, MessageTypes, PropertyTypes};

/// The listing a thread is about, as a thread shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListingDets {
    /// The listing's title.
    pub title: String,
    /// Its street address.
    pub address: String,
    /// Its kind of property.
    #[schemars(with = "Choice<PropertyTypes>")]
    pub property_type: String,
    /// Index of `propertyType`.
    #[serde(rename = "propertyType_idx")]
    pub property_type_idx: i32,
    /// City and country.
    pub location: ListingLocation,
}

/// Where a listing is.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ListingLocation {
    /// City.
    pub city: String,
    /// Country, when given.
    pub country: Option<String>,
}

/// The reservation a thread is about, as a thread shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RezDets {
    /// The reservation's status.
    #[schemars(with = "Choice<BookingStatuses>")]
    pub booking_status: String,
    /// Index of `bookingStatus`.
    #[serde(rename = "bookingStatus_idx")]
    pub booking_status_idx: i32,
    /// First night.
    pub check_in: NaiveDate,
    /// Departure day.
    pub check_out: NaiveDate,
}

/// A conversation between a guest and a host, optionally about a listing or a reservation.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Thread {
    /// The thread's id.
    pub id: Uuid,
    /// The guest participant.
    pub guest_id: Uuid,
    /// The host participant.
    pub host_id: Uuid,
    /// The guest's name.
    pub guest_name: String,
    /// The host's name.
    pub host_name: String,
    /// The listing it is about, if any.
    pub listing_id: Option<Uuid>,
    /// The reservation it is about, if any.
    pub reservation_id: Option<Uuid>,
    /// False once closed; a closed thread takes no new messages.
    pub is_open: bool,
    /// Messages posted so far (set by the server; hidden and deleted ones included).
    pub message_count: i32,
    /// When the last message was posted (the thread's opening time before any).
    pub last_message_at: DateTime<Utc>,
    /// Messages to you in this thread that you have not marked read.
    pub unread_count: i64,
    /// The listing it is about (empty when none).
    #[sqlx(json)]
    pub listing_dets: Vec<ListingDets>,
    /// The reservation it is about (empty when none).
    #[sqlx(json)]
    pub rez_dets: Vec<RezDets>,
    /// System fields; `_owner`: who opened the thread.
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// How the caller relates to a thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The guest participant.
    Guest,
    /// The host participant.
    Host,
    /// An admin who is neither.
    Admin,
}

impl Thread {
    /// The caller's side of the thread, if any.
    pub fn side(&self, ctx: &Ctx) -> Option<Side> {
        let user = ctx.user_id()?;
        if user == self.guest_id {
            Some(Side::Guest)
        } else if user == self.host_id {
            Some(Side::Host)
        } else if ctx.is_admin() {
            Some(Side::Admin)
        } else {
            None
        }
    }
    /// The participant who is not `user`.
    pub fn other(&self, user: Uuid) -> Uuid {
        if user == self.guest_id {
            self.host_id
        } else {
            self.guest_id
        }
    }
}

/// The select list producing a [`Thread`] from `messaging.message_threads t` for `viewer`
/// (whose unread messages are counted; a UUID, so formatting it into SQL is safe).
pub fn thread_columns(viewer: Option<Uuid>) -> String {
    let viewer = viewer.unwrap_or_else(Uuid::nil);
    thread_columns_for(&format!("'{viewer}'::uuid"))
}

/// The select list producing a [`Thread`] from `messaging.message_threads t`, counting the unread
/// messages of the user the SQL expression `viewer` names (e.g. `p.uid` in a search index query;
/// it must come from code, never from a request).
pub fn thread_columns_for(viewer: &str) -> String {
    format!(
        "t.id, t.guest_id, t.host_id,
         (SELECT fullname FROM auth.users u WHERE u.id = t.guest_id) AS guest_name,
         (SELECT fullname FROM auth.users u WHERE u.id = t.host_id) AS host_name,
         t.listing_id, t.reservation_id, t.is_open, t.message_count, t.last_message_at,
         (SELECT count(*) FROM messaging.messages um WHERE um.thread_id = t.id
             AND um.recipient_id = {viewer} AND NOT um.is_read AND um.is_active
             AND NOT um.is_moderated) AS unread_count,
         COALESCE((SELECT jsonb_agg(jsonb_build_object('title', l.title, 'address', l.address,
             'propertyType', l.property_type,
             'propertyType_idx', array_position(ARRAY['apartment','house','villa','room','condo','loft','studio','other'], l.property_type) - 1,
             'location', jsonb_build_object('city', l.city, 'country', l.country)))
             FROM catalog.listings l WHERE l.id = t.listing_id), '[]'::jsonb) AS listing_dets,
         COALESCE((SELECT jsonb_agg(jsonb_build_object('bookingStatus', r.booking_status,
             'bookingStatus_idx', array_position(ARRAY['pending','confirmed','complete','cancelled','declined'], r.booking_status) - 1,
             'checkIn', r.check_in, 'checkOut', r.check_out))
             FROM booking.reservations r WHERE r.id = t.reservation_id), '[]'::jsonb) AS rez_dets,
         t.is_active, t.record_version, t.created_at, t.updated_at, t.owner_id"
    )
}

/// Loads an active thread with no visibility check, optionally locking it.
pub async fn load_thread_unchecked(
    ctx: &Ctx,
    id: Uuid,
    lock: bool,
) -> Result<Option<Thread>, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {} FROM messaging.message_threads t WHERE t.id = $1 AND t.is_active{}",
        thread_columns(ctx.user_id()),
        if lock { " FOR UPDATE OF t" } else { "" }
    );
    Ok(sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(&mut *db)
        .await?)
}

/// Loads a thread the caller may see (a participant or an admin); anyone else gets the same
/// "not found" as for a missing id.
pub async fn load_thread(ctx: &Ctx, id: Uuid, lock: bool) -> Result<(Thread, Side), ToolError> {
    let thread = load_thread_unchecked(ctx, id, lock)
        .await?
        .ok_or_else(|| ToolError::not_found("message thread"))?;
    let side = thread
        .side(ctx)
        .ok_or_else(|| ToolError::not_found("message thread"))?;
    Ok((thread, side))
}

/// An uploaded file's metadata as a message shows it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentInfo {
    /// The file's id (read it with getMessageAttachment).
    pub id: Uuid,
    /// The name it was uploaded under.
    pub file_name: String,
    /// Its type.
    pub mime_type: String,
    /// Its size in bytes.
    pub file_size: i32,
}

/// One message of a thread.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The message's id.
    pub id: Uuid,
    /// Its thread.
    pub thread_id: Uuid,
    /// Who wrote it (a participant).
    pub sender_id: Uuid,
    /// The sender's name.
    pub sender_name: String,
    /// The other participant, to whom it was written.
    pub recipient_id: Uuid,
    /// The text.
    pub content: String,
    /// `text`, `media` or `system`.
    #[schemars(with = "Choice<MessageTypes>")]
    pub message_type: String,
    /// Index of `messageType`.
    #[serde(rename = "messageType_idx")]
    pub message_type_idx: i32,
    /// A linked image or document, for media messages.
    pub media_url: Option<String>,
    /// An uploaded image or document, for media messages.
    #[sqlx(json(nullable))]
    pub attachment: Option<AttachmentInfo>,
    /// When it was posted (set by the server).
    pub sent_at: DateTime<Utc>,
    /// Whether the recipient marked it read.
    pub is_read: bool,
    /// When the recipient marked it read.
    pub read_at: Option<DateTime<Utc>>,
    /// Hidden by an admin (only admins still see it).
    pub is_moderated: bool,
    /// Flagged for abuse.
    pub is_flagged: bool,
    /// Who flagged it.
    pub flagged_by: Option<Uuid>,
    /// Why it was flagged.
    pub flag_reason: Option<String>,
    /// When its text was last edited by its sender (earlier texts are kept for audit).
    pub edited_at: Option<DateTime<Utc>>,
    /// System fields; `isActive` false once deleted (kept for audit, hidden from the participants).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// The select list producing a [`Message`] from `messaging.messages m`.
pub const MESSAGE_COLUMNS: &str = "m.id, m.thread_id, m.sender_id,
    (SELECT fullname FROM auth.users u WHERE u.id = m.sender_id) AS sender_name,
    m.recipient_id, m.content, m.message_type,
    array_position(ARRAY['text','media','system'], m.message_type) - 1 AS message_type_idx,
    m.media_url,
    (SELECT jsonb_build_object('id', a.id, 'fileName', a.file_name, 'mimeType', a.mime_type, 'fileSize', a.file_size)
       FROM messaging.message_attachments a WHERE a.id = m.attachment_id) AS attachment,
    m.sent_at, m.is_read, m.read_at, m.is_moderated, m.is_flagged, m.flagged_by, m.flag_reason,
    m.edited_at, m.is_active, m.record_version, m.created_at, m.updated_at, m.owner_id";

impl Message {
    /// Whether the participants still see it (not deleted, not moderated).
    pub fn shown(&self) -> bool {
        self.meta.is_active && !self.is_moderated
    }
}

/// Loads a message the caller may see, with its thread and the caller's side: participants see
/// messages that are neither deleted nor moderated, admins every message; anyone else gets "not
/// found".
pub async fn load_message(
    ctx: &Ctx,
    id: Uuid,
    lock: bool,
) -> Result<(Message, Thread, Side), ToolError> {
    let message: Message = {
        let mut db = ctx.db().await?;
        let sql = format!(
            "SELECT {MESSAGE_COLUMNS} FROM messaging.messages m WHERE m.id = $1{}",
            if lock { " FOR UPDATE OF m" } else { "" }
        );
        sqlx::query_as(&sql)
            .bind(id)
            .fetch_optional(&mut *db)
            .await?
            .ok_or_else(|| ToolError::not_found("message"))?
    };
    let thread = load_thread_unchecked(ctx, message.thread_id, false)
        .await?
        .ok_or_else(|| ToolError::not_found("message"))?;
    let side = thread
        .side(ctx)
        .ok_or_else(|| ToolError::not_found("message"))?;
    if side != Side::Admin && !message.shown() {
        return Err(ToolError::not_found("message"));
    }
    Ok((message, thread, side))
}

/// Reloads one message by id (after a change), with no visibility check.
pub async fn reload_message(ctx: &Ctx, id: Uuid) -> Result<Message, ToolError> {
    let mut db = ctx.db().await?;
    let sql = format!("SELECT {MESSAGE_COLUMNS} FROM messaging.messages m WHERE m.id = $1");
    Ok(sqlx::query_as(&sql).bind(id).fetch_one(&mut *db).await?)
}
