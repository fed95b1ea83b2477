//! Reviews: double-blind (hidden until both sides wrote or the window passed), moderated by
//! admins, with per-reviewee aggregates recomputed in the same transaction as any change.

pub mod aggregates;
pub mod reviews;

use crate::registry::Operation;

/// Every review operation.
pub fn operations() -> Vec<Operation> {
    [reviews::operations(), aggregates::operations()]
        .into_iter()
        .flatten()
        .collect()
}
