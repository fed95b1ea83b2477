//! What a searchable index is: a name, the document type it returns, the query that produces it
//! from the owning tables, the owning operation's visibility rule, and its free-text columns.
//!
//! Adding an index is one [`Index::of`] declaration (see [`super::indexes`] and
//! [`super::views`]). Its fields — names, types, which are filterable, sortable and searchable —
//! are derived from the document type's JSON Schema (schemars) matched against the columns of
//! the declared query, never written by hand.

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::postgres::PgRow;
use sqlx::{Column, Executor, FromRow, TypeInfo};

use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{schema_for, JsonSchema};

/// Who sees which rows of an index: the owning operation's access rule, as SQL predicates over
/// the columns of the index query (`d.` is the row). Admins see every row `always` allows.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// Holds for everyone, admins included (e.g. `d.is_active` for listings).
    pub always: Option<&'static str>,
    /// Rows anyone may see, logged in or not (e.g. published listings); `None`: none.
    pub public: Option<&'static str>,
    /// Columns naming the users a row belongs to (guest, host, reviewer …): they see it.
    pub parties: &'static [&'static str],
    /// Must also hold for everyone but admins (e.g. a message neither deleted nor moderated:
    /// hidden ones are kept for audit, and only admins still read them); an admin who is one of
    /// the row's `parties` is held to it too, as the owning operation treats them as that party.
    /// `None`: nothing more.
    pub shown: Option<&'static str>,
    /// Whether anonymous callers are refused outright (401) rather than shown public rows.
    pub login: bool,
}

impl Seen {
    /// Rows of the listed parties (and admins); a login is needed.
    pub const fn parties(parties: &'static [&'static str]) -> Seen {
        Seen {
            always: None,
            public: None,
            parties,
            shown: None,
            login: true,
        }
    }

    /// The same rule, with `shown` also holding for everyone but admins.
    pub const fn shown(self, shown: &'static str) -> Seen {
        Seen {
            shown: Some(shown),
            ..self
        }
    }

    /// The same rule, with `always` holding for everyone, admins included.
    pub const fn always(self, always: &'static str) -> Seen {
        Seen {
            always: Some(always),
            ..self
        }
    }
}

/// Free-text search of an index: the columns of its query that hold the `tsvector` (and the text
/// for fuzzy matching), and the document fields they are made of (shown by the schema route).
#[derive(Debug, Clone, Copy)]
pub struct Search {
    /// Column holding the tsvector (an expression with a GIN index on the owning table).
    pub tsv: &'static str,
    /// Column holding lower-case names and places for pg_trgm word similarity, if any.
    pub fuzzy: Option<&'static str>,
    /// The document fields the text is made of.
    pub fields: &'static [&'static str],
}

/// A field's type as filters see it.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// Free text: a value is a case-insensitive partial match.
    Text,
    /// An id (uuid): exact match.
    Id,
    /// One of a closed set of values (case-insensitive exact match).
    Enum(Vec<String>),
    /// true / false.
    Bool,
    /// A whole number.
    Integer,
    /// A number; `cents` when stored in minor units and shown in major units (money).
    Number {
        /// Stored as integer minor units.
        cents: bool,
    },
    /// A calendar date.
    Date,
    /// A point in time.
    DateTime,
    /// A list of ids: a value matches when the list contains it.
    IdList,
    /// A list of strings: a value matches when the list contains it (case-sensitive).
    TextList,
    /// Nested data: returned, not filterable.
    Nested,
}

impl Kind {
    /// The type's name as the schema route shows it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Text => "text",
            Kind::Id => "id",
            Kind::Enum(_) => "enum",
            Kind::Bool => "boolean",
            Kind::Integer => "integer",
            Kind::Number { .. } => "number",
            Kind::Date => "date",
            Kind::DateTime => "datetime",
            Kind::IdList => "idList",
            Kind::TextList => "textList",
            Kind::Nested => "object",
        }
    }

    /// The filter operators a field of this kind takes.
    pub fn operators(&self) -> &'static [&'static str] {
        match self {
            Kind::Text => &["$eq", "$ne", "$in", "$nin", "$like", "$null"],
            Kind::Id | Kind::Enum(_) => &["$eq", "$ne", "$in", "$nin", "$null"],
            Kind::Bool => &["$eq", "$ne", "$null"],
            Kind::Integer | Kind::Number { .. } | Kind::Date | Kind::DateTime => &[
                "$eq", "$ne", "$in", "$nin", "$lt", "$lte", "$gt", "$gte", "$btw", "$null",
            ],
            Kind::IdList | Kind::TextList => &["$in", "$null"],
            Kind::Nested => &[],
        }
    }
}

/// One document field, derived from the schema and the query's columns.
#[derive(Debug, Clone)]
pub struct Field {
    /// The document's (camelCase) name.
    pub name: String,
    /// Its column in the index query, when it has one of its own.
    pub column: Option<String>,
    /// Its type.
    pub kind: Kind,
    /// May be null.
    pub nullable: bool,
    /// Part of the free text `q` searches.
    pub searchable: bool,
    /// The schema's description.
    pub description: Option<String>,
}

impl Field {
    /// Whether filters may name it.
    pub fn filterable(&self) -> bool {
        self.column.is_some() && self.kind != Kind::Nested
    }
    /// Whether `sortBy` may name it (scalars with a column).
    pub fn sortable(&self) -> bool {
        self.filterable() && !matches!(self.kind, Kind::IdList | Kind::TextList)
    }
}

type Decode = fn(&PgRow) -> Result<Value, ToolError>;

/// One searchable index: a per-object replica or an aggregated view.
pub struct Index {
    /// The index name in routes (`listing`, `BookingListView`).
    pub name: &'static str,
    /// What a row is, for descriptions and the schema route.
    pub about: &'static str,
    /// The operation whose access rule the index follows (`getReservation`).
    pub owner: &'static str,
    /// The row query: `SELECT <columns> FROM …` (no WHERE); its columns are the document's fields
    /// in snake_case plus what [`Seen`] and [`Search`] name. It may use `p.uid` / `p.admin` (the
    /// caller) from the `p` CTE every query starts with.
    pub select: String,
    /// The default sort column and direction (descending when true).
    pub default_sort: (&'static str, bool),
    /// Who sees which rows.
    pub seen: Seen,
    /// Free text, if the index has any.
    pub search: Option<Search>,
    /// JSON Schema of the document type.
    pub schema: Map<String, Value>,
    decode: Decode,
    fields: tokio::sync::OnceCell<Arc<Vec<Field>>>,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index").field("name", &self.name).finish()
    }
}

/// Turns a row into the document `T` serialises to: the row must decode as `T`, so only `T`'s
/// fields ever leave (extra columns such as visibility or tsvector columns are dropped).
fn decode<T>(row: &PgRow) -> Result<Value, ToolError>
where
    T: for<'r> FromRow<'r, PgRow> + Serialize,
{
    let doc = T::from_row(row).map_err(ToolError::internal)?;
    serde_json::to_value(doc).map_err(ToolError::internal)
}

impl Index {
    /// Declares an index whose rows are `T` (its JSON Schema gives the fields).
    pub fn of<T>(name: &'static str, about: &'static str, owner: &'static str) -> IndexBuilder
    where
        T: for<'r> FromRow<'r, PgRow> + Serialize + JsonSchema,
    {
        IndexBuilder(Index {
            name,
            about,
            owner,
            select: String::new(),
            default_sort: ("created_at", true),
            seen: Seen::parties(&[]),
            search: None,
            schema: schema_for::<T>(),
            decode: decode::<T>,
            fields: tokio::sync::OnceCell::new(),
        })
    }

    /// The row as its document.
    pub fn decode(&self, row: &PgRow) -> Result<Value, ToolError> {
        (self.decode)(row)
    }

    /// The fields, derived once per process from the schema and the query's described columns.
    pub async fn fields(&self, ctx: &Ctx) -> Result<Arc<Vec<Field>>, ToolError> {
        self.fields
            .get_or_try_init(|| async {
                let sql = format!(
                    "WITH p AS (SELECT NULL::uuid AS uid, false AS admin) SELECT * FROM ({}) d",
                    self.select
                );
                let mut db = ctx.db().await?;
                let described = (&mut *db).describe(&sql).await?;
                let columns: Vec<(String, String)> = described
                    .columns()
                    .iter()
                    .map(|c| (c.name().to_string(), c.type_info().name().to_string()))
                    .collect();
                Ok::<_, ToolError>(Arc::new(derive_fields(
                    &self.schema,
                    &columns,
                    self.search.map(|s| s.fields).unwrap_or(&[]),
                )))
            })
            .await
            .cloned()
    }
}

/// Finishes an [`Index`] declaration.
pub struct IndexBuilder(Index);

impl IndexBuilder {
    /// The row query (see [`Index::select`]).
    pub fn select(mut self, sql: impl Into<String>) -> Self {
        self.0.select = sql.into();
        self
    }
    /// The visibility rule.
    pub fn seen(mut self, seen: Seen) -> Self {
        self.0.seen = seen;
        self
    }
    /// Free-text search.
    pub fn search(mut self, search: Search) -> Self {
        self.0.search = Some(search);
        self
    }
    /// The default sort column (descending when `desc`).
    pub fn sort(mut self, column: &'static str, desc: bool) -> Self {
        self.0.default_sort = (column, desc);
        self
    }
    /// The finished index.
    pub fn done(self) -> Index {
        self.0
    }
}

/// Lower case without underscores: how a camelCase field and its snake_case column meet.
fn squash(name: &str) -> String {
    name.chars()
        .filter(|c| *c != '_')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Looks for `key` in a property schema or its `anyOf`/`oneOf` alternatives.
fn find<'a>(prop: &'a Value, key: &str) -> Option<&'a Value> {
    if let Some(v) = prop.get(key) {
        return Some(v);
    }
    for alts in ["anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = prop.get(alts) {
            if let Some(v) = items.iter().find_map(|alt| find(alt, key)) {
                return Some(v);
            }
        }
    }
    None
}

fn types_of(prop: &Value, out: &mut Vec<String>) {
    match prop.get("type") {
        Some(Value::String(t)) => out.push(t.clone()),
        Some(Value::Array(ts)) => out.extend(ts.iter().filter_map(Value::as_str).map(String::from)),
        _ => {}
    }
    for alts in ["anyOf", "oneOf"] {
        if let Some(Value::Array(items)) = prop.get(alts) {
            items.iter().for_each(|alt| types_of(alt, out));
        }
    }
}

/// The kind of a property schema; `column_type` (Postgres' name) tells money (`INT8` behind a
/// number with cents) apart.
fn kind_of(prop: &Value, column_type: Option<&str>) -> (Kind, bool) {
    let mut types = Vec::new();
    types_of(prop, &mut types);
    let nullable = types.iter().any(|t| t == "null");
    let format = find(prop, "format").and_then(Value::as_str);
    let kind = if types.iter().any(|t| t == "array") {
        let items = find(prop, "items");
        let item_format = items
            .and_then(|i| find(i, "format"))
            .and_then(Value::as_str);
        let mut item_types = Vec::new();
        if let Some(items) = items {
            types_of(items, &mut item_types);
        }
        match (item_types.first().map(String::as_str), item_format) {
            (Some("string"), Some("uuid")) => Kind::IdList,
            (Some("string"), _) => Kind::TextList,
            _ => Kind::Nested,
        }
    } else if types.iter().any(|t| t == "object") || types.is_empty() {
        Kind::Nested
    } else if types.iter().any(|t| t == "string") {
        if let Some(Value::Array(values)) = find(prop, "enum") {
            Kind::Enum(
                values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect(),
            )
        } else {
            match format {
                Some("uuid") => Kind::Id,
                Some("date") => Kind::Date,
                Some("date-time") => Kind::DateTime,
                _ => Kind::Text,
            }
        }
    } else if types.iter().any(|t| t == "integer") {
        Kind::Integer
    } else if types.iter().any(|t| t == "number") {
        let cents = find(prop, "multipleOf").is_some() && column_type == Some("INT8");
        Kind::Number { cents }
    } else if types.iter().any(|t| t == "boolean") {
        Kind::Bool
    } else {
        Kind::Nested
    };
    (kind, nullable)
}

/// The fields of a document schema, each matched with the query column of the same name
/// (camelCase vs snake_case; `_owner` is `owner_id`).
pub fn derive_fields(
    schema: &Map<String, Value>,
    columns: &[(String, String)],
    searchable: &[&str],
) -> Vec<Field> {
    let Some(Value::Object(props)) = schema.get("properties") else {
        return Vec::new();
    };
    props
        .iter()
        .map(|(name, prop)| {
            let wanted = if name == "_owner" {
                "ownerid".to_string()
            } else {
                squash(name)
            };
            let column = columns.iter().find(|(c, _)| squash(c) == wanted);
            let (kind, nullable) = kind_of(prop, column.map(|(_, t)| t.as_str()));
            Field {
                name: name.clone(),
                column: column.map(|(c, _)| c.clone()),
                kind,
                nullable,
                searchable: searchable.contains(&name.as_str()),
                description: prop
                    .get("description")
                    .and_then(Value::as_str)
                    .map(String::from),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_come_from_the_schema_and_meet_their_columns() {
        let schema = json!({"type": "object", "properties": {
            "id": {"type": "string", "format": "uuid"},
            "totalPrice": {"type": "number", "multipleOf": 0.01},
            "bookingStatus": {"type": "string", "enum": ["pending", "confirmed"]},
            "iCalUrl": {"type": ["string", "null"]},
            "_owner": {"type": ["string", "null"], "format": "uuid"},
            "guest": {"type": "object"},
            "amenityIds": {"type": "array", "items": {"type": "string", "format": "uuid"}}
        }});
        let columns: Vec<(String, String)> = [
            ("id", "UUID"),
            ("total_price", "INT8"),
            ("booking_status", "TEXT"),
            ("ical_url", "TEXT"),
            ("owner_id", "UUID"),
            ("amenity_ids", "UUID[]"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        let fields = derive_fields(schema.as_object().unwrap(), &columns, &["iCalUrl"]);
        let get = |n: &str| fields.iter().find(|f| f.name == n).unwrap();
        assert_eq!(get("totalPrice").kind, Kind::Number { cents: true });
        assert_eq!(get("iCalUrl").column.as_deref(), Some("ical_url"));
        assert!(get("iCalUrl").searchable && get("iCalUrl").nullable);
        assert_eq!(get("_owner").column.as_deref(), Some("owner_id"));
        assert!(!get("guest").filterable());
        assert_eq!(get("amenityIds").kind, Kind::IdList);
        assert!(!get("amenityIds").sortable());
        assert!(matches!(get("bookingStatus").kind, Kind::Enum(_)));
    }
}
