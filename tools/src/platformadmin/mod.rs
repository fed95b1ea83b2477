//! The platform-admin service. For now: API keys (the rest of the service comes later).

pub mod api_keys;

use crate::registry::Operation;

/// Every platform-admin operation.
pub fn operations() -> Vec<Operation> {
    api_keys::operations()
}
