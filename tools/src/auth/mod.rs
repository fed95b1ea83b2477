//! The auth service: users, sessions and tokens, groups, memberships and avatar files.

pub mod avatars;
pub mod groups;
pub mod members;
pub mod model;
pub mod oauth_clients;
pub mod password;
pub mod principal_cache;
pub mod session;
pub mod throttle;
pub mod tokens;
pub mod users;
pub mod verification;

use crate::registry::Operation;

/// Every auth operation.
pub fn operations() -> Vec<Operation> {
    [
        users::operations(),
        session::operations(),
        groups::operations(),
        members::operations(),
        avatars::operations(),
        oauth_clients::operations(),
        verification::operations(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
