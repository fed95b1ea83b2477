//! Domain newtypes that can only be built valid (parse, don't validate), and the shared list
//! machinery: the spec's filter values and pagination.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ToolError;

/// A syntactically plausible email address, trimmed and lower-cased (emails are login names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

impl Email {
    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Email {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let email = raw.trim().to_lowercase();
        let refused =
            || format!("must be an email address such as ada@example.com (got \"{raw}\")");
        let (local, domain) = email.split_once('@').ok_or_else(refused)?;
        let ok = !local.is_empty()
            && email.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && !domain.contains('@');
        if ok {
            Ok(Email(email))
        } else {
            Err(refused())
        }
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

impl JsonSchema for Email {
    fn schema_name() -> Cow<'static, str> {
        "Email".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "format": "email", "maxLength": 254 })
    }
}

/// A mobile number in E.164 form (`+` and 8 to 15 digits, the first not 0); spaces, dashes, dots
/// and parentheses people type are dropped. At most [`Mobile::MAX_TYPED`] characters as typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Mobile(String);

impl Mobile {
    /// The longest number accepted as typed, separators included.
    pub const MAX_TYPED: usize = 32;

    /// The normalised number, e.g. `+351912345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Mobile {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        let ok = raw.chars().count() <= Self::MAX_TYPED
            && (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        if ok {
            Ok(Mobile(compact))
        } else {
            Err(format!(
                "must be a mobile number in international form such as +351912345678 (got \"{}\")",
                raw.chars().take(40).collect::<String>()
            ))
        }
    }
}

impl From<Mobile> for String {
    fn from(m: Mobile) -> String {
        m.0
    }
}

impl JsonSchema for Mobile {
    fn schema_name() -> Cow<'static, str> {
        "Mobile".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        // Exactly what `try_from` accepts: `+`, then 8 to 15 digits (the first not 0), with the
        // separators people type anywhere.
        json_schema!({ "type": "string",
            "pattern": "^[ ().-]*\\+[ ().-]*[1-9](?:[ ().-]*[0-9]){7,14}[ ().-]*$",
            "maxLength": Self::MAX_TYPED,
            "description": "international form, e.g. +351912345678" })
    }
}

/// A new password: 8 to 128 characters. Never serialised back out.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct NewPassword(String);

impl NewPassword {
    /// The plaintext, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NewPassword(..)")
    }
}

impl TryFrom<String> for NewPassword {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let n = raw.chars().count();
        if !(8..=128).contains(&n) {
            return Err(format!(
                "a password must be 8 to 128 characters long (got {n})"
            ));
        }
        Ok(NewPassword(raw))
    }
}

impl JsonSchema for NewPassword {
    fn schema_name() -> Cow<'static, str> {
        "NewPassword".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 8, "maxLength": 128, "writeOnly": true })
    }
}

/// Free text with a length bound, trimmed; `MAX` is in characters and empty text is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Text<const MAX: usize>(String);

impl<const MAX: usize> Text<MAX> {
    /// The trimmed text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<const MAX: usize> TryFrom<String> for Text<MAX> {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        let text = raw.trim();
        let n = text.chars().count();
        if n == 0 {
            return Err("must not be empty".into());
        }
        if n > MAX {
            return Err(format!("must be at most {MAX} characters (got {n})"));
        }
        if text
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
        {
            return Err("must not contain control characters".into());
        }
        Ok(Text(text.to_string()))
    }
}

impl<const MAX: usize> From<Text<MAX>> for String {
    fn from(t: Text<MAX>) -> String {
        t.0
    }
}

impl<const MAX: usize> JsonSchema for Text<MAX> {
    fn schema_name() -> Cow<'static, str> {
        format!("Text{MAX}").into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "minLength": 1, "maxLength": MAX, "pattern": TEXT_PATTERN })
    }
}

/// What [`Text`] accepts, as a JSON Schema pattern: something other than white space, and no
/// control characters except tab, line feed and carriage return.
pub const TEXT_PATTERN: &str = "^[^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*\
     [^\\s\\u0000-\\u001F\\u007F-\\u009F]\
     [^\\u0000-\\u0008\\u000B\\u000C\\u000E-\\u001F\\u007F-\\u009F]*$";

/// A short name or title (1–200 characters).
pub type Name = Text<200>;
/// A long text such as a biography (1–5000 characters).
pub type LongText = Text<5000>;

/// A list filter value as the spec's query syntax allows: one value or several (OR-ed); the value
/// `null` matches records where the field is empty.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawFilter")]
pub enum Filter {
    /// `?f=v`
    One(String),
    /// `?f=v1&f=v2`
    Many(Vec<String>),
}

/// A [`Filter`] as it arrives, before its documented bounds are checked.
#[derive(Deserialize)]
#[serde(untagged)]
enum RawFilter {
    One(String),
    Many(Vec<String>),
}

/// The most values one filter takes, and the longest value (in characters).
const FILTER_MAX_VALUES: usize = 50;
const FILTER_MAX_CHARS: usize = 200;

impl TryFrom<RawFilter> for Filter {
    type Error = String;
    fn try_from(raw: RawFilter) -> Result<Self, String> {
        let values = match &raw {
            RawFilter::One(v) => std::slice::from_ref(v),
            RawFilter::Many(vs) => vs.as_slice(),
        };
        if values.len() > FILTER_MAX_VALUES {
            return Err(format!(
                "takes at most {FILTER_MAX_VALUES} values (got {})",
                values.len()
            ));
        }
        if let Some(long) = values.iter().find(|v| v.chars().count() > FILTER_MAX_CHARS) {
            return Err(format!(
                "each value must be at most {FILTER_MAX_CHARS} characters (got {})",
                long.chars().count()
            ));
        }
        Ok(match raw {
            RawFilter::One(v) => Filter::One(v),
            RawFilter::Many(vs) => Filter::Many(vs),
        })
    }
}

impl Filter {
    /// The values, in order; empty strings are ignored.
    pub fn values(&self) -> Vec<&str> {
        match self {
            Filter::One(v) => vec![v.as_str()],
            Filter::Many(vs) => vs.iter().map(String::as_str).collect(),
        }
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect()
    }
}

impl JsonSchema for Filter {
    fn schema_name() -> Cow<'static, str> {
        "Filter".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One value or an array of values (matched with OR); the string \"null\" matches empty fields.",
            "anyOf": [
                { "type": "string", "maxLength": 200 },
                { "type": "array", "items": { "type": "string", "maxLength": 200 }, "maxItems": 50 }
            ]
        })
    }
}

/// The schema of a [`Filter`] on an id column (`sql::id_filter`): UUIDs, or the string `null` for
/// "no id". Used as `#[schemars(with = "Option<UuidFilter>")]` on `Option<Filter>` fields, so the
/// documented schema matches what the server accepts; the value is still parsed as a [`Filter`].
pub struct UuidFilter;

impl JsonSchema for UuidFilter {
    fn schema_name() -> Cow<'static, str> {
        "UuidFilter".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One id or an array of ids (matched with OR); the string \"null\" matches records without one; empty strings are ignored.",
            "anyOf": [
                { "type": "string", "format": "uuid" },
                { "enum": ["null", ""] },
                { "type": "array", "maxItems": 50, "items": { "anyOf": [
                    { "type": "string", "format": "uuid" }, { "enum": ["null", ""] }
                ] } }
            ]
        })
    }
}

/// A day inside a date filter pattern (days 29–31 are left to `format: date`, which knows months).
const FILTER_DAY: &str = "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])";

/// A date-filter schema: exact dates (`format: date`), the given `$keywords` (and the empty string,
/// which is ignored), and the `$op-date` forms matched by `pattern` (which gets [`FILTER_DAY`] in
/// place of `D`).
fn date_filter_schema(keywords: &[&str], pattern: &str) -> Schema {
    let one = serde_json::json!({ "anyOf": [
        { "type": "string", "format": "date" },
        { "enum": keywords.iter().chain(&[""]).collect::<Vec<_>>() },
        { "type": "string", "pattern": pattern.replace('D', FILTER_DAY) }
    ] });
    json_schema!({
        "description": "One value or an array of values (matched with OR).",
        "anyOf": [ one, { "type": "array", "maxItems": 50, "items": one } ]
    })
}

/// The schema of a [`Filter`] read by `sql::date_filter`: `YYYY-MM-DD`, `$today`, `null`, and
/// `$gte-`/`$gt-`/`$lte-`/`$lt-` followed by a date.
pub struct DateFilter;

impl JsonSchema for DateFilter {
    fn schema_name() -> Cow<'static, str> {
        "DateFilter".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        date_filter_schema(&["$today", "null"], "^\\$(gte|gt|lte|lt)-D$")
    }
}

/// The schema of a calendar-night [`Filter`] (`catalog::common::date_filter`): also `$week`,
/// `$month`, `$lweek`, `$ltoday`, `$lin-<date>`, `$leq-<date>` and `$btw-<date>-<date>`.
pub struct NightFilter;

impl JsonSchema for NightFilter {
    fn schema_name() -> Cow<'static, str> {
        "NightFilter".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        date_filter_schema(
            &["$today", "$week", "$month", "$lweek", "$ltoday", "null"],
            "^\\$((gte|gt|lte|lt|leq|lin)-D|btw-D-D)$",
        )
    }
}

/// The schema of an amount [`Filter`] (`catalog::common::money_filter`): `120.5`, `$gte-100`,
/// `$lt-80`, `$btw-50-120.5`, or `null`.
pub struct MoneyFilter;

impl JsonSchema for MoneyFilter {
    fn schema_name() -> Cow<'static, str> {
        "MoneyFilter".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let amount = "[0-9]{1,9}(\\.[0-9]{1,2})?";
        let one = serde_json::json!({ "anyOf": [
            { "enum": ["null", ""] },
            { "type": "string", "pattern": format!("^({amount}|\\$(lte|lt|gte|gt)-{amount}|\\$btw-{amount}-{amount})$") }
        ] });
        json_schema!({
            "description": "One amount or range, or an array of them (matched with OR).",
            "anyOf": [ one, { "type": "array", "maxItems": 50, "items": one } ]
        })
    }
}

/// The schema of a [`Filter`] whose values must all be UUIDs (no `null`), such as `amenityIds`.
pub struct UuidsFilter;

impl JsonSchema for UuidsFilter {
    fn schema_name() -> Cow<'static, str> {
        "UuidsFilter".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One id or an array of ids; empty strings are ignored.",
            "anyOf": [
                { "type": "string", "format": "uuid" },
                { "const": "" },
                { "type": "array", "maxItems": 50, "items": { "anyOf": [
                    { "type": "string", "format": "uuid" }, { "const": "" }
                ] } }
            ]
        })
    }
}

/// A closed set of string values (a status, a role, a sort order): the one list the input
/// schema's `enum`, the output schema's `enum` and the parser's check all read. Declare one with
/// [`crate::choices!`].
pub trait Choices: Send + Sync + 'static {
    /// The allowed values, as stored and shown.
    const VALUES: &'static [&'static str];

    /// `raw` as its canonical value (matched case-insensitively), or the error listing the
    /// allowed values.
    fn canonical(raw: &str) -> Result<&'static str, String> {
        Self::VALUES
            .iter()
            .find(|v| v.eq_ignore_ascii_case(raw.trim()))
            .copied()
            .ok_or_else(|| {
                format!(
                    "must be one of: {} (got \"{raw}\")",
                    Self::VALUES.join(", ")
                )
            })
    }
}

/// Declares a [`Choices`] marker type: `choices!(/** docs */ BookingStatuses = ["pending", ...]);`.
#[macro_export]
macro_rules! choices {
    ($(#[$meta:meta])* $name:ident = [$($value:literal),+ $(,)?]) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub struct $name;
        impl $crate::types::Choices for $name {
            const VALUES: &'static [&'static str] = &[$($value),+];
        }
    };
}

/// One value of a [`Choices`] set. As an input field it refuses anything else with the list of
/// allowed values; on a stored `String` output field, `#[schemars(with = "Choice<X>")]` gives the
/// output schema the same `enum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice<C: Choices>(&'static str, std::marker::PhantomData<C>);

impl<C: Choices> Choice<C> {
    /// The canonical value.
    pub fn as_str(&self) -> &'static str {
        self.0
    }
}

impl<'de, C: Choices> Deserialize<'de> for Choice<C> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        C::canonical(&raw)
            .map(|v| Choice(v, std::marker::PhantomData))
            .map_err(serde::de::Error::custom)
    }
}

impl<C: Choices> Serialize for Choice<C> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0)
    }
}

impl<C: Choices> JsonSchema for Choice<C> {
    fn schema_name() -> Cow<'static, str> {
        format!("Choice_{}", std::any::type_name::<C>().replace("::", "_")).into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({ "type": "string", "enum": C::VALUES })
    }
}

/// A list filter over a [`Choices`] set: one value or several (OR-ed), each one of the allowed
/// values (case-insensitive), so a typo is a `BadInput` listing them instead of an empty list.
/// Derefs to the plain [`Filter`] holding the canonical values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumFilter<C: Choices>(Filter, std::marker::PhantomData<C>);

impl<C: Choices> std::ops::Deref for EnumFilter<C> {
    type Target = Filter;
    fn deref(&self) -> &Filter {
        &self.0
    }
}

impl<'de, C: Choices> Deserialize<'de> for EnumFilter<C> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let canon = |v: &str| -> Result<String, D::Error> {
            if v.is_empty() {
                return Ok(String::new());
            }
            C::canonical(v)
                .map(str::to_string)
                .map_err(serde::de::Error::custom)
        };
        let filter = match Filter::deserialize(d)? {
            Filter::One(v) => Filter::One(canon(&v)?),
            Filter::Many(vs) => {
                Filter::Many(vs.iter().map(|v| canon(v)).collect::<Result<_, _>>()?)
            }
        };
        Ok(EnumFilter(filter, std::marker::PhantomData))
    }
}

impl<C: Choices> JsonSchema for EnumFilter<C> {
    fn schema_name() -> Cow<'static, str> {
        format!(
            "EnumFilter_{}",
            std::any::type_name::<C>().replace("::", "_")
        )
        .into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "One value or an array of values (matched with OR).",
            "anyOf": [
                { "type": "string", "enum": C::VALUES },
                { "type": "array", "items": { "type": "string", "enum": C::VALUES }, "maxItems": 50 }
            ]
        })
    }
}

/// The pagination block of a list answer.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Paging {
    /// The page returned (1-based; 0 = pagination off).
    pub page_number: u32,
    /// Rows per page.
    pub page_row_count: u32,
    /// Rows matching the filters.
    pub total_row_count: i64,
    /// Pages at this page size.
    pub page_count: i64,
}

/// The system fields every stored record carries, flattened into its output object so the JSON
/// stays flat: `isActive`, `recordVersion`, `createdAt`, `updatedAt` and `_owner`.
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct RecordMeta {
    /// False once deleted (soft delete).
    pub is_active: bool,
    /// Optimistic-concurrency version; send it back on updates to detect lost updates.
    pub record_version: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Who created or owns the record (per object: the user, host, reviewer…); null when the
    /// service owns it.
    #[serde(rename = "_owner")]
    pub owner_id: Option<Uuid>,
}

impl RecordMeta {
    /// Its columns, unqualified, for `RETURNING` the system fields alone.
    pub const COLUMNS: &'static str = "is_active, record_version, created_at, updated_at, owner_id";
}

/// [`RecordMeta`] for records that always have an owner, read from a `record_owner` column
/// (payment tickets, customers and methods, whose own `owner_id`/`user_id` is a separate field).
#[derive(Debug, Clone, Serialize, JsonSchema, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct OwnedRecordMeta {
    /// False once deleted or deactivated.
    pub is_active: bool,
    /// Optimistic-concurrency version; send it back on updates to detect lost updates.
    pub record_version: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// The user the record belongs to.
    #[serde(rename = "_owner")]
    pub record_owner: Uuid,
}

/// A validated page request: `pageNumber` (default 1; 0 returns all rows up to [`UNPAGED_CAP`])
/// and `pageRowCount` (default 25, at most the configured maximum).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Requested page (0 = all).
    pub number: u32,
    /// Rows per page.
    pub rows: u32,
}

/// The most rows `pageNumber=0` ("no pagination") returns, so nobody can dump a table at once.
pub const UNPAGED_CAP: u32 = 1000;

impl Page {
    /// Validates the two optional inputs against `max_rows`.
    pub fn new(number: Option<u32>, rows: Option<u32>, max_rows: u32) -> Result<Page, ToolError> {
        let rows = rows.unwrap_or(25);
        if rows == 0 || rows > max_rows {
            return Err(ToolError::field(
                "pageRowCount",
                format!("must be between 1 and {max_rows}"),
            ));
        }
        let number = number.unwrap_or(1);
        if number > 1_000_000 {
            return Err(ToolError::field("pageNumber", "must be at most 1000000"));
        }
        Ok(Page { number, rows })
    }
    /// SQL `LIMIT`.
    pub fn limit(&self) -> i64 {
        if self.number == 0 {
            UNPAGED_CAP as i64
        } else {
            self.rows as i64
        }
    }
    /// SQL `OFFSET`.
    pub fn offset(&self) -> i64 {
        if self.number == 0 {
            0
        } else {
            (self.number as i64 - 1) * self.rows as i64
        }
    }
    /// The response's paging block for `total` matching rows.
    pub fn paging(&self, total: i64) -> Paging {
        let per = if self.number == 0 {
            total.max(1)
        } else {
            self.rows as i64
        };
        Paging {
            page_number: self.number,
            page_row_count: if self.number == 0 {
                total.max(0) as u32
            } else {
                self.rows
            },
            total_row_count: total,
            page_count: (total + per - 1) / per,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn flattened_record_meta_keeps_the_output_schema_flat() {
        let schema = schemars::schema_for!(crate::catalog::amenities::ListingAmenity).to_value();
        assert_eq!(schema["type"], "object", "{schema}");
        for field in [
            "id",
            "name",
            "isActive",
            "recordVersion",
            "createdAt",
            "updatedAt",
            "_owner",
        ] {
            assert!(
                schema["properties"].get(field).is_some(),
                "{field} in {schema}"
            );
        }
        let schema = schemars::schema_for!(crate::booking::payments::tickets::Ticket).to_value();
        assert_eq!(schema["type"], "object", "{schema}");
        assert!(schema["properties"].get("_owner").is_some(), "{schema}");
        assert!(schema["properties"].get("ownerId").is_some(), "{schema}");
    }

    proptest::proptest! {
        /// Whatever the published schema's pattern allows (within maxLength), the parser accepts.
        #[test]
        fn every_mobile_the_schema_allows_parses(
            raw in proptest::string::string_regex(
                Mobile::json_schema(&mut SchemaGenerator::default()).as_value()["pattern"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches('^')
                    .trim_end_matches('$')
                    // (a separator run of at most one keeps most samples within maxLength)
                    .replace("]*", "]?")
                    .as_str(),
            )
            .unwrap()
            .prop_filter("within maxLength", |s| s.chars().count() <= Mobile::MAX_TYPED)
        ) {
            proptest::prop_assert!(Mobile::try_from(raw.clone()).is_ok(), "{raw:?}");
        }
    }

    #[test]
    fn mobiles_outside_the_schema_are_refused() {
        for bad in [
            "00000000",
            "+0000000000000000000000",
            "+0123456789",
            "+1234567",
            "351912345678",
            "+1234567890123456",
            "+35191234567a",
        ] {
            assert!(Mobile::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert_eq!(
            Mobile::try_from("+351 (91) 234-56.78".to_string())
                .unwrap()
                .as_str(),
            "+351912345678"
        );
    }

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::try_from(" Ada@Example.COM ".to_string())
                .unwrap()
                .as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "@x.io",
            "ada@",
            "ada@localhost",
            "a b@x.io",
            "ada@x.io.",
            "a@b@c.io",
        ] {
            assert!(Email::try_from(bad.to_string()).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_have_bounds() {
        assert!(NewPassword::try_from("short".to_string()).is_err());
        assert!(NewPassword::try_from("long enough".to_string()).is_ok());
        assert!(NewPassword::try_from("x".repeat(129)).is_err());
    }

    #[test]
    fn text_is_trimmed_and_bounded() {
        assert_eq!(
            Text::<5>::try_from("  abc ".to_string()).unwrap().as_str(),
            "abc"
        );
        assert!(Text::<5>::try_from("   ".to_string()).is_err());
        assert!(Text::<5>::try_from("abcdef".to_string()).is_err());
        assert!(Text::<5>::try_from("a\u{0}b".to_string()).is_err());
    }

    #[test]
    fn pages_compute_offsets_and_counts() {
        let p = Page::new(Some(3), Some(10), 100).unwrap();
        assert_eq!((p.limit(), p.offset()), (10, 20));
        assert_eq!(p.paging(25).page_count, 3);
        assert!(Page::new(None, Some(101), 100).is_err());
        assert!(Page::new(None, Some(0), 100).is_err());
        let all = Page::new(Some(0), None, 100).unwrap();
        assert_eq!(
            (all.limit(), all.offset(), all.paging(7).page_count),
            (1000, 0, 1)
        );
    }

    #[test]
    fn filters_accept_one_or_many() {
        let one: Filter = serde_json::from_str("\"a\"").unwrap();
        let many: Filter = serde_json::from_str("[\"a\",\"\",\"b\"]").unwrap();
        assert_eq!(one.values(), vec!["a"]);
        assert_eq!(many.values(), vec!["a", "b"]);
    }
}
