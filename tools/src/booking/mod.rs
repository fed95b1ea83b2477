//! Booking management: availability and quotes, reservations and their lifecycle (one operation
//! per transition, each recorded in the activity timeline), payments through a provider, the
//! append-only payment ledger, and disputes.

pub mod activities;
pub mod disputes;
pub mod lifecycle;
pub mod model;
pub mod payments;
pub mod pricing;
pub mod reservations;

use crate::registry::Operation;

/// Every booking operation.
pub fn operations() -> Vec<Operation> {
    [
        pricing::operations(),
        reservations::operations(),
        lifecycle::operations(),
        activities::operations(),
        payments::operations(),
        disputes::operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
