//! Messaging: threads between a guest and a host (optionally about a listing or a reservation),
//! their messages with read state, edits and soft delete, attachments, abuse reports and admin
//! moderation, and the spam limits on posting and on opening inquiries.
//!
//! Every output names both participants (`guestId`/`hostId` on threads, `senderId`/`recipientId`
//! on messages), so the domain event of a change reaches the other participant's `/events` stream;
//! events never carry a message's text (see `audit::event_payload`).

pub mod attachments;
pub mod flood;
pub mod messages;
pub mod model;
pub mod reports;
pub mod threads;

use crate::registry::Operation;

/// Every messaging operation.
pub fn operations() -> Vec<Operation> {
    [
        threads::operations(),
        messages::operations(),
        reports::operations(),
        attachments::operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
