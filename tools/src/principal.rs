//! Who is calling: the authenticated principal and its role.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The auth service's roles, from least to most powerful.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub enum Role {
    /// Every registered person (guests and hosts alike).
    #[serde(rename = "user")]
    User,
    /// Platform staff.
    #[serde(rename = "admin")]
    Admin,
    /// The platform owner; the only role that may manage admins.
    #[serde(rename = "superAdmin")]
    SuperAdmin,
}

impl Role {
    /// The spec's `roleId` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
            Role::SuperAdmin => "superAdmin",
        }
    }
    /// Parses a stored `roleId`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "user" => Some(Role::User),
            "admin" => Some(Role::Admin),
            "superAdmin" => Some(Role::SuperAdmin),
            _ => None,
        }
    }
    /// Admins and superAdmins.
    pub fn is_admin(self) -> bool {
        self >= Role::Admin
    }
}

/// How the caller proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    /// A JWT access token bound to a login session.
    Session(Uuid),
    /// A long-lived `sk_` API key (its row id).
    ApiKey(Uuid),
    /// A login session (its id) that passed the password but still owes the second factor the
    /// server requires (email or mobile 2FA): it may call only the operations marked
    /// `before_second_factor` (the 2FA verification and logout).
    SecondFactorPending(Uuid),
}

/// An authenticated caller, rebuilt from its own token on every request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user acting.
    pub user_id: Uuid,
    /// The user's role as stored now (not as it was when the token was minted).
    pub role: Role,
    /// The user's email.
    pub email: String,
    /// The user's full name.
    pub fullname: String,
    /// The credential presented.
    pub credential: Credential,
}

impl Principal {
    /// The login session id, when the caller used an access token.
    pub fn session_id(&self) -> Option<Uuid> {
        match self.credential {
            Credential::Session(id) | Credential::SecondFactorPending(id) => Some(id),
            Credential::ApiKey(_) => None,
        }
    }
    /// Whether the caller's session still owes its second factor.
    pub fn owes_second_factor(&self) -> bool {
        matches!(self.credential, Credential::SecondFactorPending(_))
    }
    /// Admin or superAdmin.
    pub fn is_admin(&self) -> bool {
        self.role.is_admin()
    }
    /// True when the caller is `user_id` or an admin: the usual "own record or staff" rule.
    pub fn is_self_or_admin(&self, user_id: Uuid) -> bool {
        self.user_id == user_id || self.is_admin()
    }
}
