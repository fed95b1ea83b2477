//! (being written)

use crate::registry::Operation;

/// The operations of this module.
pub fn operations() -> Vec<Operation> {
    Vec::new()
}
