//! The notification service: push devices, the in-app inbox, channel preferences, admin sends and
//! the delivery outbox, plus the automatic notifications written for changes people care about.
//!
//! A notification is always an in-app row (and a `notification` event on the recipient's
//! `/events` stream); for each external channel that is configured and that the recipient allows,
//! it is also an outbox row drained by [`outbox::Outbox`] workers through the channel's
//! [`channels::Provider`]. All of it is written in the transaction of its cause.

pub mod automatic;
pub mod channels;
pub mod deliveries;
pub mod devices;
pub mod enqueue;
pub mod inbox;
pub mod model;
pub mod outbox;
pub mod preferences;
pub mod reminders;
pub mod send;
pub mod texts;

use crate::registry::Operation;

/// Every notification operation.
pub fn operations() -> Vec<Operation> {
    let mut ops = devices::operations();
    ops.extend(inbox::operations());
    ops.extend(send::operations());
    ops.extend(preferences::operations());
    ops.extend(deliveries::operations());
    ops
}
