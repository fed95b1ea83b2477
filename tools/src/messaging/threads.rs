//! Threads: a guest and a host, optionally about a listing or a reservation, one open thread per
//! context (a partial unique index; a second create answers 409 with the existing thread's id).
//!
//! Who may open one: either party of a reservation, always (a guest with a reservation can always
//! reach its host); anyone signed in may ask the host of a published listing (an inquiry), or write
//! to a host (`hostId`) who has a published listing; a host may write to a guest (`guestId`) who
//! booked one of their listings. Threads without a reservation count against the inquiry limit.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::flood;
use super::model::{load_thread, thread_columns, Thread};
use crate::booking::model::load_reservation;
use crate::catalog::common::visible_listing;
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Flow, Method, Operation, Service};
use crate::sql;
use crate::types::{Filter, Paging};

/// Input of `createMessageThread`: a context (reservation, listing) and/or the other party.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["reservationId"], "properties": { "reservationId": { "type": "string" } } },
    { "required": ["listingId"], "properties": { "listingId": { "type": "string" } } },
    { "required": ["hostId"], "properties": { "hostId": { "type": "string" } } },
    { "required": ["guestId"], "properties": { "guestId": { "type": "string" } } }
]))]
pub struct NewThread {
    /// The reservation the thread is about (you are its guest or its host); sets both parties.
    pub reservation_id: Option<Uuid>,
    /// The listing the thread is about; as a guest you ask its host (an inquiry when you have no
    /// reservation). Optional with reservationId (it must then be the reservation's listing).
    pub listing_id: Option<Uuid>,
    /// The host to write to when there is no listing or reservation (you are the guest).
    pub host_id: Option<Uuid>,
    /// The guest to write to when there is no listing or reservation (you are the host; they must
    /// have booked one of your listings).
    pub guest_id: Option<Uuid>,
}

/// Input of `updateMessageThread`: at least one of the changeable fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("anyOf" = [
    { "required": ["isOpen"], "properties": { "isOpen": { "type": "boolean" } } },
    { "required": ["listingId"], "properties": { "listingId": { "type": "string" } } },
    { "required": ["reservationId"], "properties": { "reservationId": { "type": "string" } } }
]))]
pub struct ThreadPatch {
    /// The thread to change.
    pub message_thread_id: Uuid,
    /// false closes the thread (no new messages); true reopens it.
    pub is_open: Option<bool>,
    /// Move the thread onto this listing of its host.
    pub listing_id: Option<Uuid>,
    /// Move the thread onto this reservation between its two participants.
    pub reservation_id: Option<Uuid>,
    /// The version you read; when sent and stale the update is refused with 409.
    pub record_version: Option<i32>,
}

/// Identifies one thread.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThreadRef {
    /// The thread's id.
    pub message_thread_id: Uuid,
}

/// Input of `listMessageThreads`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ThreadFilters {
    /// Only open (true) or closed (false) threads.
    pub is_open: Option<bool>,
    /// Threads about these listings.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub listing_id: Option<Filter>,
    /// Threads about these reservations.
    #[schemars(with = "Option<crate::types::UuidFilter>")]
    pub reservation_id: Option<Filter>,
    /// Page number (1-based; 0 returns all rows up to 1000).
    #[schemars(range(max = 1_000_000))]
    pub page_number: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub page_row_count: Option<u32>,
}

/// A page of threads.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ThreadList {
    /// The threads on this page, most recent message first.
    pub message_threads: Vec<Thread>,
    /// Where this page sits.
    pub paging: Paging,
}

/// The thread operations.
pub fn operations() -> Vec<Operation> {
    vec![
        Operation::build("createMessageThread", Service::Messaging)
            .title("Open a conversation with a host or guest")
            .who("any logged-in user, as a party of the reservation, a guest asking about a published listing, or a host writing to a guest who booked with them")
            .describe(
                "Opens a message thread between a guest and a host. Give reservationId (you are \
                 its guest or host: always allowed), or listingId (ask the listing's host before \
                 booking: an inquiry), or hostId (as a guest, to a host with a published listing) \
                 or guestId (as a host, to a guest who booked with you). One open thread per \
                 context: a second one answers 409 naming the existing thread's id. The server \
                 sets guestId/hostId, isOpen=true, messageCount=0 and lastMessageAt. Inquiries are \
                 limited per hour. Then post with createMessage. Returns the thread.",
            )
            .rest(Method::Post, "/messaging-api/v1/messagethreads")
            .access(Access::Authenticated)
            .creates("messageThread")
            .handler(create_thread),
        Operation::build("updateMessageThread", Service::Messaging)
            .title("Close, reopen or move a conversation")
            .who("the thread's guest or host, or an admin")
            .describe(
                "Changes a thread: isOpen=false closes it (no new messages), true reopens it; \
                 listingId / reservationId move it onto another listing of its host or reservation \
                 between the same two people. guestId, hostId, messageCount and lastMessageAt are \
                 the server's. Returns the thread.",
            )
            .rest(
                Method::Patch,
                "/messaging-api/v1/messagethreads/{messageThreadId}",
            )
            .access(Access::Authenticated)
            .updates("messageThread")
            .handler(update_thread),
        Operation::build("deleteMessageThread", Service::Messaging)
            .title("Archive a conversation")
            .who("the thread's guest or host, or an admin")
            .describe(
                "Archives a thread (isActive=false, closed): it leaves both participants' lists; \
                 its messages are kept for audit. Returns the thread's last state.",
            )
            .rest(
                Method::Delete,
                "/messaging-api/v1/messagethreads/{messageThreadId}",
            )
            .access(Access::Authenticated)
            .deletes("messageThread")
            .handler(delete_thread),
        Operation::build("getMessageThread", Service::Messaging)
            .title("Get a conversation")
            .who("the thread's guest or host, or an admin")
            .describe(
                "Returns one thread with its participants' names, your unread count and the \
                 listing (listingDets) and reservation (rezDets) it is about. Others get not found.",
            )
            .rest(
                Method::Get,
                "/messaging-api/v1/messagethreads/{messageThreadId}",
            )
            .access(Access::Authenticated)
            .reads(Action::Get, "messageThread")
            .handler(get_thread),
        Operation::build("listMessageThreads", Service::Messaging)
            .core(Flow::Guest, 130)
            .title("List my conversations")
            .who("any logged-in user, for the threads they are guest or host of; admins see all")
            .describe(
                "Lists your message threads (as guest or host; admins: all), the most recent \
                 message first, each with the other party's name, your unreadCount and the \
                 listing/reservation it is about. Filters: isOpen, listingId, reservationId. \
                 Read a thread's messages with getThreadMessages. Paginated.",
            )
            .rest(Method::Get, "/messaging-api/v1/messagethreads")
            .access(Access::Authenticated)
            .reads(Action::List, "messageThreads")
            .handler(list_threads),
    ]
}

/// The two parties and the context of a new thread, once checked.
struct Context {
    guest: Uuid,
    host: Uuid,
    listing: Option<Uuid>,
    reservation: Option<Uuid>,
}

/// Checks that `field`, when sent, names `expected`.
fn must_be(field: &str, sent: Option<Uuid>, expected: Uuid, who: &str) -> Result<(), ToolError> {
    match sent {
        Some(id) if id != expected => Err(ToolError::field(
            field,
            format!("must be {who} ({expected}) or left out"),
        )),
        _ => Ok(()),
    }
}

async fn user_is_active(ctx: &Ctx, id: Uuid) -> Result<bool, ToolError> {
    let mut db = ctx.db().await?;
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM auth.users WHERE id = $1 AND is_active)")
            .bind(id)
            .fetch_one(&mut *db)
            .await?,
    )
}

async fn exists(ctx: &Ctx, sql: &str, a: Uuid, b: Uuid) -> Result<bool, ToolError> {
    let mut db = ctx.db().await?;
    Ok(sqlx::query_scalar(sql)
        .bind(a)
        .bind(b)
        .fetch_one(&mut *db)
        .await?)
}

const SHARE_A_RESERVATION: &str = "SELECT EXISTS (SELECT 1 FROM booking.reservations
    WHERE guest_id = $1 AND host_id = $2 AND is_active)";

async fn hosts_a_published_listing(ctx: &Ctx, host: Uuid) -> Result<bool, ToolError> {
    let mut db = ctx.db().await?;
    Ok(sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM catalog.listings WHERE host_id = $1 AND is_active AND is_published)",
    )
    .bind(host)
    .fetch_one(&mut *db)
    .await?)
}

/// Works out the parties of a new thread from its context, checking the caller may open it.
async fn context_of(ctx: &Ctx, me: Uuid, input: &NewThread) -> Result<Context, ToolError> {
    if let Some(reservation_id) = input.reservation_id {
        let reservation = load_reservation(ctx, reservation_id, false).await?;
        if me != reservation.guest_id && me != reservation.host_id {
            return Err(ToolError::forbidden(
                "only the reservation's guest or host opens a thread about it",
            ));
        }
        must_be(
            "listingId",
            input.listing_id,
            reservation.listing_id,
            "the reservation's listing",
        )?;
        must_be(
            "guestId",
            input.guest_id,
            reservation.guest_id,
            "the reservation's guest",
        )?;
        must_be(
            "hostId",
            input.host_id,
            reservation.host_id,
            "the reservation's host",
        )?;
        return Ok(Context {
            guest: reservation.guest_id,
            host: reservation.host_id,
            listing: Some(reservation.listing_id),
            reservation: Some(reservation.id),
        });
    }
    if let Some(listing_id) = input.listing_id {
        let listing = visible_listing(ctx, listing_id, false).await?;
        if listing.host_id == me {
            return Err(ToolError::unprocessable(
                "you host this listing: guests open threads about it; to write to a guest who booked, use their reservationId",
            ));
        }
        if !listing.is_published {
            return Err(ToolError::not_found("listing"));
        }
        must_be(
            "hostId",
            input.host_id,
            listing.host_id,
            "the listing's host",
        )?;
        must_be("guestId", input.guest_id, me, "you")?;
        return Ok(Context {
            guest: me,
            host: listing.host_id,
            listing: Some(listing.id),
            reservation: None,
        });
    }
    // Both parties named: the caller must be one of them.
    let (host, guest) = match (input.host_id, input.guest_id) {
        (Some(host), Some(guest)) if guest == me => (Some(host), None),
        (Some(host), Some(guest)) if host == me => (None, Some(guest)),
        (Some(_), Some(_)) => {
            return Err(ToolError::forbidden(
                "you open threads you take part in: hostId or guestId must be you",
            ))
        }
        other => other,
    };
    match (host, guest) {
        (Some(host), _) => {
            if host == me {
                return Err(ToolError::field(
                    "hostId",
                    "must be someone else: you cannot open a thread with yourself",
                ));
            }
            if !user_is_active(ctx, host).await? {
                return Err(ToolError::not_found("host"));
            }
            let reachable = exists(ctx, SHARE_A_RESERVATION, me, host).await?
                || hosts_a_published_listing(ctx, host).await?;
            if !reachable {
                return Err(ToolError::unprocessable(
                    "you can write to a host who has a published listing or who hosts one of your reservations; this user is neither",
                ));
            }
            Ok(Context {
                guest: me,
                host,
                listing: None,
                reservation: None,
            })
        }
        (None, Some(guest)) => {
            if guest == me {
                return Err(ToolError::field(
                    "guestId",
                    "must be someone else: you cannot open a thread with yourself",
                ));
            }
            if !user_is_active(ctx, guest).await? {
                return Err(ToolError::not_found("guest"));
            }
            if !exists(ctx, SHARE_A_RESERVATION, guest, me).await? {
                return Err(ToolError::unprocessable(
                    "as a host you can write to a guest who booked one of your listings; this user has not",
                ));
            }
            Ok(Context {
                guest,
                host: me,
                listing: None,
                reservation: None,
            })
        }
        (None, None) => Err(ToolError::bad_input(
            "say who the thread is with: send reservationId, listingId, hostId or guestId",
        )),
    }
}

/// The id of the open thread of a context (the one a second create collides with).
async fn open_thread_of(ctx: &Ctx, c: &Context) -> Result<Option<Uuid>, ToolError> {
    let mut db = ctx.db().await?;
    Ok(sqlx::query_scalar(
        "SELECT id FROM messaging.message_threads
          WHERE guest_id = $1 AND host_id = $2 AND listing_id IS NOT DISTINCT FROM $3
            AND reservation_id IS NOT DISTINCT FROM $4 AND is_open AND is_active",
    )
    .bind(c.guest)
    .bind(c.host)
    .bind(c.listing)
    .bind(c.reservation)
    .fetch_optional(&mut *db)
    .await?)
}

fn already_open(id: Uuid) -> ToolError {
    ToolError::conflict(format!(
        "an open thread for this conversation already exists: messageThreadId {id}; post to it with createMessage"
    ))
}

async fn create_thread(ctx: Ctx, input: NewThread) -> Result<Thread, ToolError> {
    let me = ctx.caller()?.user_id;
    let context = context_of(&ctx, me, &input).await?;
    if let Some(existing) = open_thread_of(&ctx, &context).await? {
        return Err(already_open(existing));
    }
    let inquiry = context.reservation.is_none();
    if inquiry {
        flood::admit_inquiry(&ctx, me).await?;
    }
    let id: Option<Uuid> = {
        let mut db = ctx.db().await?;
        sqlx::query_scalar(
            "INSERT INTO messaging.message_threads (guest_id, host_id, listing_id, reservation_id, is_inquiry, owner_id)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(context.guest)
        .bind(context.host)
        .bind(context.listing)
        .bind(context.reservation)
        .bind(inquiry)
        .bind(me)
        .fetch_optional(&mut *db)
        .await?
    };
    let Some(id) = id else {
        // A concurrent create won the race for this context.
        return Err(match open_thread_of(&ctx, &context).await? {
            Some(existing) => already_open(existing),
            None => ToolError::transient(),
        });
    };
    Ok(load_thread(&ctx, id, false).await?.0)
}

async fn update_thread(ctx: Ctx, input: ThreadPatch) -> Result<Thread, ToolError> {
    let (current, _) = load_thread(&ctx, input.message_thread_id, true).await?;
    if input.is_open.is_none() && input.listing_id.is_none() && input.reservation_id.is_none() {
        return Err(ToolError::bad_input(
            "nothing to change: send isOpen, listingId or reservationId",
        ));
    }
    ToolError::check_version(
        input.record_version,
        current.meta.record_version,
        "message thread",
    )?;
    let mut listing = current.listing_id;
    let mut reservation = current.reservation_id;
    if let Some(reservation_id) = input.reservation_id {
        let r = crate::booking::model::load_reservation_unchecked(&ctx, reservation_id, false)
            .await?
            .filter(|r| r.guest_id == current.guest_id && r.host_id == current.host_id)
            .ok_or_else(|| {
                ToolError::field(
                    "reservationId",
                    "must be a reservation between this thread's guest and host",
                )
            })?;
        reservation = Some(r.id);
        listing = Some(r.listing_id);
    }
    if let Some(listing_id) = input.listing_id {
        let mut db = ctx.db().await?;
        let host: Option<Uuid> =
            sqlx::query_scalar("SELECT host_id FROM catalog.listings WHERE id = $1 AND is_active")
                .bind(listing_id)
                .fetch_optional(&mut *db)
                .await?;
        if host != Some(current.host_id) {
            return Err(ToolError::field(
                "listingId",
                "must be a listing of this thread's host",
            ));
        }
        if input.reservation_id.is_some() && listing != Some(listing_id) {
            return Err(ToolError::field(
                "listingId",
                "must be the reservation's listing",
            ));
        }
        listing = Some(listing_id);
    }
    let is_open = input.is_open.unwrap_or(current.is_open);
    let context = Context {
        guest: current.guest_id,
        host: current.host_id,
        listing,
        reservation,
    };
    if is_open {
        if let Some(other) = open_thread_of(&ctx, &context)
            .await?
            .filter(|id| *id != current.id)
        {
            return Err(already_open(other));
        }
    }
    {
        let mut db = ctx.db().await?;
        sqlx::query(
            "UPDATE messaging.message_threads SET is_open = $2, listing_id = $3, reservation_id = $4,
                 record_version = record_version + 1, updated_at = now()
             WHERE id = $1",
        )
        .bind(current.id)
        .bind(is_open)
        .bind(listing)
        .bind(reservation)
        .execute(&mut *db)
        .await
        .map_err(|e| {
            crate::error::on_constraint(
                e,
                &[(
                    "message_threads_open_context_key",
                    crate::error::ErrorKind::Conflict,
                    "an open thread for this conversation already exists",
                )],
            )
        })?;
    }
    Ok(load_thread(&ctx, current.id, false).await?.0)
}

async fn delete_thread(ctx: Ctx, input: ThreadRef) -> Result<Thread, ToolError> {
    let (current, _) = load_thread(&ctx, input.message_thread_id, true).await?;
    {
        let mut db = ctx.db().await?;
        sqlx::query(
            "UPDATE messaging.message_threads SET is_active = false, is_open = false,
                 record_version = record_version + 1, updated_at = now() WHERE id = $1",
        )
        .bind(current.id)
        .execute(&mut *db)
        .await?;
    }
    let mut db = ctx.db().await?;
    let sql = format!(
        "SELECT {} FROM messaging.message_threads t WHERE t.id = $1",
        thread_columns(ctx.user_id())
    );
    Ok(sqlx::query_as(&sql)
        .bind(current.id)
        .fetch_one(&mut *db)
        .await?)
}

async fn get_thread(ctx: Ctx, input: ThreadRef) -> Result<Thread, ToolError> {
    Ok(load_thread(&ctx, input.message_thread_id, false).await?.0)
}

async fn list_threads(ctx: Ctx, input: ThreadFilters) -> Result<ThreadList, ToolError> {
    let caller = ctx.caller()?.clone();
    let page = ctx.page(input.page_number, input.page_row_count)?;
    let columns = thread_columns(Some(caller.user_id));
    let mut qb = sql::list_select(&columns, "messaging.message_threads t WHERE t.is_active");
    if !caller.is_admin() {
        qb.push(" AND (t.guest_id = ");
        qb.push_bind(caller.user_id);
        qb.push(" OR t.host_id = ");
        qb.push_bind(caller.user_id);
        qb.push(")");
    }
    if let Some(open) = input.is_open {
        qb.push(" AND t.is_open = ");
        qb.push_bind(open);
    }
    sql::id_filter(
        &mut qb,
        "t.listing_id",
        "listingId",
        input.listing_id.as_ref(),
    )?;
    sql::id_filter(
        &mut qb,
        "t.reservation_id",
        "reservationId",
        input.reservation_id.as_ref(),
    )?;
    let mut db = ctx.db().await?;
    let (message_threads, paging) =
        sql::fetch_page(&mut db, qb, "t.last_message_at DESC, t.id", page).await?;
    Ok(ThreadList {
        message_threads,
        paging,
    })
}
