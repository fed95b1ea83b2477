//! The auth service's records as the API shows them, and the shared input field types.

use std::borrow::Cow;

use crate::types::Choice;
use crate::types::RecordMeta;
use crate::vocabulary::Roles;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user as every User API returns it. The password hash is never part of it.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// The user's id.
    pub id: Uuid,
    /// Login email (lower-case).
    pub email: String,
    /// Full name.
    pub fullname: String,
    /// Avatar image URL.
    pub avatar: Option<String>,
    /// Role: `user`, `admin` or `superAdmin`.
    #[schemars(with = "Choice<Roles>")]
    pub role_id: String,
    /// Whether the email has been verified.
    pub email_verified: bool,
    /// Mobile number (E.164), for SMS codes and notifications.
    pub mobile: Option<String>,
    /// Whether the mobile number has been verified (reset when it changes).
    pub mobile_verified: bool,
    /// Preferred UI language (BCP 47 tag).
    pub preferred_language: Option<String>,
    /// Biography.
    pub bio: Option<String>,
    /// System fields (`isActive`, `recordVersion`, `createdAt`, `updatedAt`); `_owner`: who created the record (the user themself when registered).
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub meta: RecordMeta,
}

/// The columns of [`User`], for `SELECT`/`RETURNING`.
pub const USER_COLUMNS: &str =
    "id, email, fullname, avatar, role_id, email_verified, mobile, mobile_verified, preferred_language, bio, \
     is_active, record_version, created_at, updated_at, owner_id";

/// A public profile: what anyone may see of a user.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct BriefUser {
    /// The user's id.
    pub id: Uuid,
    /// Full name.
    pub fullname: String,
    /// Avatar image URL.
    pub avatar: Option<String>,
    /// Biography.
    pub bio: Option<String>,
    /// Always true (archived users are not found).
    pub is_active: bool,
}

/// An image URL (http, https or a path on this server), at most 2048 characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageUrl(String);

impl ImageUrl {
    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ImageUrl {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let url = raw.trim();
        let scheme_ok =
            url.starts_with("https://") || url.starts_with("http://") || url.starts_with('/');
        if !scheme_ok
            || url.len() > 2048
            || url.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err("must be an http(s) URL or a path on this server, without spaces, at most 2048 characters".into());
        }
        Ok(ImageUrl(url.to_string()))
    }
}

impl From<ImageUrl> for String {
    fn from(u: ImageUrl) -> String {
        u.0
    }
}

impl JsonSchema for ImageUrl {
    fn schema_name() -> Cow<'static, str> {
        "ImageUrl".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "uri-reference", "maxLength": 2048 })
    }
}

/// A BCP 47 language tag such as `en`, `tr` or `pt-BR`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LanguageTag(String);

impl LanguageTag {
    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LanguageTag {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let mut parts = raw.split('-');
        let primary = parts.next().unwrap_or_default();
        let primary_ok =
            (2..=3).contains(&primary.len()) && primary.chars().all(|c| c.is_ascii_alphabetic());
        let rest_ok = parts
            .all(|p| (1..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()));
        if primary_ok && rest_ok && raw.len() <= 35 {
            Ok(LanguageTag(raw))
        } else {
            Err(format!(
                "`{raw}` is not a language tag such as `en` or `pt-BR`"
            ))
        }
    }
}

impl From<LanguageTag> for String {
    fn from(t: LanguageTag) -> String {
        t.0
    }
}

impl JsonSchema for LanguageTag {
    fn schema_name() -> Cow<'static, str> {
        "LanguageTag".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "pattern": "^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$", "maxLength": 35 })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_tags() {
        for ok in ["en", "tr", "pt-BR", "zh-Hant-TW"] {
            assert!(LanguageTag::try_from(ok.to_string()).is_ok(), "{ok}");
        }
        for bad in ["", "e", "english!", "en_US", "en--x"] {
            assert!(LanguageTag::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn image_urls() {
        assert!(ImageUrl::try_from("https://x.io/a.png".to_string()).is_ok());
        assert!(ImageUrl::try_from("/auth-api/v1/a".to_string()).is_ok());
        assert!(ImageUrl::try_from("javascript:alert(1)".to_string()).is_err());
        assert!(ImageUrl::try_from("https://x.io/a b".to_string()).is_err());
    }
}
