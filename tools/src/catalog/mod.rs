//! The property catalog: listings (with search), calendar entries, the amenity dictionary and
//! per-language texts. Listing reads join amenities, locale texts and the review aggregate in one
//! query each (no N+1).

pub mod amenities;
pub mod calendars;
pub mod common;
pub mod listings;
pub mod locale_texts;
pub mod policies;

use crate::registry::Operation;

/// Every catalog operation.
pub fn operations() -> Vec<Operation> {
    [
        listings::operations(),
        calendars::operations(),
        amenities::operations(),
        locale_texts::operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
