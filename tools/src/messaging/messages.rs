//! Messages: posted by a thread's participants (the server sets the sender, recipient and
//! `sentAt`, and bumps the thread's `lastMessageAt` and `messageCount` in the same statement's
//! transaction), read state kept for the recipient, edits by the sender (earlier texts kept in
//! `message_edits`), soft delete by the sender or an admin, and moderation by admins. A deleted or
//! moderated message is hidden from both participants; admins still see it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::attachments::{self, MediaUrl, NewAttachment};
use super::flood;
use super::model::{
    load_message, load_thread, reload_message, ListingDets, Message, Side, Thread, MESSAGE_COLUMNS,
};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Flow, Method, Operation, Service};
use crate::sql;
use crate::types::{LongText, Paging, Text};

/// What a participant may post: text, or media (a link or an uploaded file plus a caption).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PostedType {
    /// Plain text.
    Text,
    /// An image or document (mediaUrl or attachment) with a caption in content.
    Media,
}

/// Input of `createMessage`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewMessage {
    /// The thread to post in (you are its guest or host).
    pub thread_id: Uuid,
    /// The text (1–5000 characters; for media, the caption).
    pub content: LongText,
    /// `text` (default) or `media` (needs mediaUrl or attachment). System messages are the
    /// server's own.
    pub message_type: Option<PostedType>,
    /// A link to an image or document, for a media message.
    pub media_url: Option<MediaUrl>,
    /// A file uploaded with a media message (image or document, base64).
    pub attachment: Option<NewAttachment>,
}

/// Input of `updateMessage`: at least one of the changeable fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["content"], "properties": { "content": { "type": "string" } } },
    { "required": ["mediaUrl"], "properties": { "mediaUrl": { "type": "string" } } },
    { "required": ["isRead"], "properties": { "isRead": { "type": "boolean" } } },
    { "required": ["isFlagged"], "properties": { "isFlagged": { "type": "boolean" } } },
    { "required": ["isModerated"], "properties": { "isModerated": { "type": "boolean" } } }
]))]
pub struct MessagePatch {
    /// The message to change.
    pub message_id: Uuid,
    /// Corrected text (the sender).
    pub content: Option<LongText>,
    /// Corrected link (the sender, media messages).
    pub media_url: Option<MediaUrl>,
    /// Mark read / unread (the recipient).
    pub is_read: Option<bool>,
    /// Flag for abuse (the recipient, with flagReason) or retract the flag (its flagger, admins).
    pub is_flagged: Option<bool>,
    /// Why you flag it (1–1000 characters).
    pub flag_reason: Option<Text<1000>>,
    /// Hide it from both participants (true) or show it again (admins only).
    pub is_moderated: Option<bool>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one message.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MessageRef {
    /// The message's id.
    pub message_id: Uuid,
}

/// Input of `getThreadMessages` and `gotthreadMessages`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThreadMessagesQuery {
    /// The thread.
    pub thread_id: Uuid,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of a thread's messages, with the thread and the listing it is about.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadMessages {
    /// The messages on this page, oldest first.
    pub messages: Vec<Message>,
    /// Where this page sits.
    pub paging: Paging,
    /// The thread.
    pub thread: Thread,
    /// The listing the thread is about, when there is one.
    pub listing: Option<ListingDets>,
}

/// A page of a thread's messages.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageList {
    /// The messages on this page, oldest first.
    pub messages: Vec<Message>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The message operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createMessage", Service::Messaging)
            .core(Flow::Guest, 125)
            .title("Send a message in a conversation")
            .who("the thread's guest or host")
            .describe(
                "Posts a message in an open thread you take part in (find or open one with \
                 listMessageThreads / createMessageThread). content is the text (1-5000 \
                 characters); for messageType=media also give mediaUrl (an http(s) link to a \
                 .png/.jpg/.gif/.webp image or a .pdf/.txt document) or attachment {fileName, \
                 mimeType, fileData (base64, at most 1 MiB)}. The server sets senderId, \
                 recipientId, sentAt and the thread's lastMessageAt and messageCount. Posting is \
                 limited per minute. Returns the message.",
            )
            .rest(Method::Post, "/messaging-api/v1/messages")
            .access(Access::Authenticated)
            .creates("message")
            .handler(create_message),
        Operation::build("updateMessage", Service::Messaging)
            .title("Edit, mark read, flag or moderate a message")
            .who("the sender (content, mediaUrl), the recipient (isRead, flagging), admins (isModerated, flags)")
            .describe(
                "Changes a message. The sender corrects content or mediaUrl (earlier texts are \
                 kept for audit); the recipient sets isRead or flags it (isFlagged=true with \
                 flagReason); the flagger or an admin retracts a flag; admins set isModerated \
                 (true hides it from both participants). threadId, senderId, sentAt and \
                 messageType never change. Returns the message.",
            )
            .rest(Method::Patch, "/messaging-api/v1/messages/{messageId}")
            .access(Access::Authenticated)
            .updates("message")
            .handler(update_message),
        Operation::build("deleteMessage", Service::Messaging)
            .title("Delete a message")
            .who("the message's sender, or an admin")
            .describe(
                "Soft-deletes a message: it disappears for both participants but is kept for \
                 audit (admins still see it). The thread's messageCount is not changed. Returns \
                 the message's last state (isActive=false).",
            )
            .rest(Method::Delete, "/messaging-api/v1/messages/{messageId}")
            .access(Access::Authenticated)
            .deletes("message")
            .handler(delete_message),
        Operation::build("getMessage", Service::Messaging)
            .title("Get a message")
            .who("the thread's guest or host, or an admin")
            .describe(
                "Returns one message with its sender's name. Deleted and moderated messages are \
                 not found for the participants; admins see them.",
            )
            .rest(Method::Get, "/messaging-api/v1/messages/{messageId}")
            .access(Access::Authenticated)
            .reads(Action::Get, "message")
            .handler(get_message),
        Operation::build("getThreadMessages", Service::Messaging)
            .title("Read a conversation")
            .who("the thread's guest or host, or an admin")
            .describe(
                "Lists a thread's messages oldest first (sentAt ascending) with each sender's \
                 name, plus the thread itself and the listing it is about. Deleted and moderated \
                 messages are left out for the participants. Mark what you read with updateMessage \
                 isRead=true. Paginated.",
            )
            .rest(Method::Get, "/messaging-api/v1/threadmessages/{threadId}")
            .access(Access::Authenticated)
            .reads(Action::List, "messages")
            .handler(get_thread_messages),
        Operation::build("gotthreadMessages", Service::Messaging)
            .title("List a conversation's messages (plain)")
            .who("the thread's guest or host, or an admin")
            .describe(
                "Lists a thread's messages oldest first, like getThreadMessages but without the \
                 thread and listing context. Paginated.",
            )
            .rest(Method::Get, "/messaging-api/v1/gotthreadmessages/{threadId}")
            .access(Access::Authenticated)
            .reads(Action::List, "messages")
            .handler(got_thread_messages),
    ]
}

async fn create_message(ctx: Ctx, input: NewMessage) -> Result<Message, ToolError> {
    let me = ctx.caller()?.user_id;
    let (thread, side) = load_thread(&ctx, input.thread_id, true).await?;
    if side == Side::Admin {
        return Err(ToolError::forbidden(
            "only the thread's guest and host post in it; admins read and moderate",
        ));
    }
    if !thread.is_open {
        return Err(ToolError::unprocessable(
            "this thread is closed; reopen it with updateMessageThread isOpen=true, or open a new one",
        ));
    }
    let kind =
        input
            .message_type
            .unwrap_or(if input.media_url.is_some() || input.attachment.is_some() {
                PostedType::Media
            } else {
                PostedType::Text
            });
    match kind {
        PostedType::Text if input.media_url.is_some() || input.attachment.is_some() => {
            return Err(ToolError::field(
                "messageType",
                "must be `media` for a message with mediaUrl or attachment",
            ))
        }
        PostedType::Media if input.media_url.is_none() && input.attachment.is_none() => {
            return Err(ToolError::field(
                "mediaUrl",
                "a media message needs mediaUrl (a link) or attachment (an uploaded file)",
            ))
        }
        PostedType::Media if input.media_url.is_some() && input.attachment.is_some() => {
            return Err(ToolError::field(
                "attachment",
                "send mediaUrl or attachment, not both",
            ))
        }
        _ => {}
    }
    flood::admit_message(&ctx, me).await?;
    let attachment = match &input.attachment {
        Some(file) => Some(attachments::store(&ctx, me, file).await?),
        None => None,
    };
    let id: Uuid = {
        let mut db = ctx.db().await?;
        // The thread row is locked (load_thread above): count and time move with the insert.
        sqlx::query(
            "UPDATE messaging.message_threads SET message_count = message_count + 1,
                 last_message_at = now(), updated_at = now() WHERE id = $1",
        )
        .bind(thread.id)
        .execute(&mut *db)
        .await?;
        sqlx::query_scalar(
            "INSERT INTO messaging.messages (thread_id, sender_id, recipient_id, content, message_type,
                 media_url, attachment_id, sent_at, owner_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $2) RETURNING id",
        )
        .bind(thread.id)
        .bind(me)
        .bind(thread.other(me))
        .bind(input.content.as_str())
        .bind(match kind {
            PostedType::Text => "text",
            PostedType::Media => "media",
        })
        .bind(input.media_url.as_ref().map(MediaUrl::as_str))
        .bind(attachment)
        .fetch_one(&mut *db)
        .await?
    };
    reload_message(&ctx, id).await
}

async fn update_message(ctx: Ctx, input: MessagePatch) -> Result<Message, ToolError> {
    let me = ctx.caller()?.user_id;
    if input.content.is_none()
        && input.media_url.is_none()
        && input.is_read.is_none()
        && input.is_flagged.is_none()
        && input.is_moderated.is_none()
    {
        return Err(ToolError::bad_input(
            "nothing to change: send content, mediaUrl, isRead, isFlagged or isModerated",
        ));
    }
    let (current, thread, side) = load_message(&ctx, input.message_id, true).await?;
    ToolError::check_version(input.record_version, current.meta.record_version, "message")?;
    let admin = ctx.is_admin();
    let sender = current.sender_id == me;
    let recipient = current.recipient_id == me;
    let _ = side;
    if (input.content.is_some() || input.media_url.is_some()) && !sender {
        return Err(ToolError::forbidden(
            "only the sender edits a message's content or mediaUrl",
        ));
    }
    if input.is_moderated.is_some() && !admin {
        return Err(ToolError::forbidden(
            "only admins moderate messages (isModerated)",
        ));
    }
    if input.is_read.is_some() && !recipient {
        return Err(ToolError::forbidden(
            "only the recipient marks a message read (isRead)",
        ));
    }
    if input.flag_reason.is_some() && input.is_flagged != Some(true) {
        return Err(ToolError::field("flagReason", "goes with isFlagged=true"));
    }
    match input.is_flagged {
        Some(true) if !(recipient || admin) => {
            return Err(ToolError::forbidden(
                "only the recipient (or an admin) flags a message; or report it with createMessageReport",
            ))
        }
        Some(true) if input.flag_reason.is_none() => {
            return Err(ToolError::field(
                "flagReason",
                "say why you flag the message (1-1000 characters)",
            ))
        }
        Some(false) if !(admin || current.flagged_by == Some(me)) => {
            return Err(ToolError::forbidden(
                "only whoever flagged the message, or an admin, retracts the flag",
            ))
        }
        _ => {}
    }
    if input.content.is_some() || input.media_url.is_some() {
        if !thread.is_open {
            return Err(ToolError::unprocessable(
                "this thread is closed; its messages can no longer be edited",
            ));
        }
        if input.media_url.is_some() && current.message_type != "media" {
            return Err(ToolError::field(
                "mediaUrl",
                "only a media message carries a link",
            ));
        }
    }
    let mut db = ctx.db().await?;
    if let Some(content) = &input.content {
        if content.as_str() != current.content {
            sqlx::query(
                "INSERT INTO messaging.message_edits (message_id, previous_content, edited_by)
                 VALUES ($1, $2, $3)",
            )
            .bind(current.id)
            .bind(&current.content)
            .bind(me)
            .execute(&mut *db)
            .await?;
        }
    }
    sqlx::query(
        "UPDATE messaging.messages SET
             content = COALESCE($2, content),
             edited_at = CASE WHEN $2 IS NOT NULL OR $3 IS NOT NULL THEN now() ELSE edited_at END,
             media_url = COALESCE($3, media_url),
             is_read = COALESCE($4, is_read),
             read_at = CASE WHEN $4 THEN COALESCE(read_at, now()) WHEN NOT $4 THEN NULL ELSE read_at END,
             is_flagged = COALESCE($5, is_flagged),
             flagged_by = CASE WHEN $5 THEN $7 WHEN NOT $5 THEN NULL ELSE flagged_by END,
             flag_reason = CASE WHEN $5 THEN $6 WHEN NOT $5 THEN NULL ELSE flag_reason END,
             is_moderated = COALESCE($8, is_moderated),
             record_version = record_version + 1, updated_at = now()
         WHERE id = $1",
    )
    .bind(current.id)
    .bind(input.content.as_ref().map(LongText::as_str))
    .bind(input.media_url.as_ref().map(MediaUrl::as_str))
    .bind(input.is_read)
    .bind(input.is_flagged)
    .bind(input.flag_reason.as_ref().map(|r| r.as_str()))
    .bind(me)
    .bind(input.is_moderated)
    .execute(&mut *db)
    .await?;
    if input.is_moderated == Some(true) {
        scrub_notifications(&mut db, current.id).await?;
    }
    drop(db);
    reload_message(&ctx, current.id).await
}

/// Blanks the preview that "new message" notifications quote of a message that was moderated or
/// deleted, so the inbox (and the stored copies of its email, SMS and push) stops showing what
/// the thread no longer shows. A delivery still pending goes out as written (blanking it would
/// send an empty message); its stored copy keeps the preview.
async fn scrub_notifications(
    db: &mut sqlx::PgConnection,
    message_id: Uuid,
) -> Result<(), ToolError> {
    sqlx::query(
        "WITH n AS (UPDATE notification.notifications SET body = ''
                     WHERE event_type = 'newMessage' AND data->>'messageId' = $1::text RETURNING id)
         UPDATE notification.deliveries d SET body_text = '', body_html = NULL, payload = '{}'
          FROM n WHERE d.notification_id = n.id AND d.status <> 'pending'",
    )
    .bind(message_id)
    .execute(db)
    .await?;
    Ok(())
}

async fn delete_message(ctx: Ctx, input: MessageRef) -> Result<Message, ToolError> {
    let me = ctx.caller()?.user_id;
    let (current, _, _) = load_message(&ctx, input.message_id, true).await?;
    if current.sender_id != me && !ctx.is_admin() {
        return Err(ToolError::forbidden(
            "only the message's sender, or an admin, deletes it",
        ));
    }
    {
        let mut db = ctx.db().await?;
        sqlx::query(
            "UPDATE messaging.messages SET is_active = false, record_version = record_version + 1,
                 updated_at = now() WHERE id = $1",
        )
        .bind(current.id)
        .execute(&mut *db)
        .await?;
        scrub_notifications(&mut db, current.id).await?;
    }
    reload_message(&ctx, current.id).await
}

async fn get_message(ctx: Ctx, input: MessageRef) -> Result<Message, ToolError> {
    Ok(load_message(&ctx, input.message_id, false).await?.0)
}

/// A page of `thread`'s messages as `side` sees them, oldest first.
async fn page_of(
    ctx: &Ctx,
    thread: &Thread,
    side: Side,
    input: &ThreadMessagesQuery,
) -> Result<(Vec<Message>, Paging), ToolError> {
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let mut qb = sql::list_select(MESSAGE_COLUMNS, "messaging.messages m WHERE m.thread_id = ");
    qb.push_bind(thread.id);
    if side != Side::Admin {
        qb.push(" AND m.is_active AND NOT m.is_moderated");
    }
    let mut db = ctx.db().await?;
    sql::fetch_page(&mut db, qb, "m.sent_at, m.id", page).await
}

async fn get_thread_messages(
    ctx: Ctx,
    input: ThreadMessagesQuery,
) -> Result<ThreadMessages, ToolError> {
    let (thread, side) = load_thread(&ctx, input.thread_id, false).await?;
    let (messages, paging) = page_of(&ctx, &thread, side, &input).await?;
    Ok(ThreadMessages {
        messages,
        paging,
        listing: thread.listing_dets.first().cloned(),
        thread,
    })
}

async fn got_thread_messages(
    ctx: Ctx,
    input: ThreadMessagesQuery,
) -> Result<MessageList, ToolError> {
    let (thread, side) = load_thread(&ctx, input.thread_id, false).await?;
    let (messages, paging) = page_of(&ctx, &thread, side, &input).await?;
    Ok(MessageList { messages, paging })
}
