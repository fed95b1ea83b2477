//! The search operations: the generic index family (each takes `indexName`) and one list
//! operation per aggregated view, with the spec's 46 REST routes (the per-view routes of the
//! generic family are [`Route`]s with `indexName` bound).

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use super::engine::{Engine, Postgres, Query};
use super::filters;
use super::index::{Field, Index};
use super::saved::{self, SavedFilter};
use crate::context::Ctx;
use crate::error::ToolError;
use crate::registry::{Access, Action, Envelope, Method, Operation, Route, Service};
use crate::types::{Page, Paging};

/// The REST prefix of the BFF routes.
pub const PREFIX: &str = "/bff-api/v1";

/// The views with only get-all and get-one routes (spec §3.2).
const LIST_VIEWS: &[&str] = &[
    "BookingListView",
    "MessageThreadView",
    "ReviewDisplayView",
    "PaymentRecordView",
    "disputeDetailView",
];
/// Every view: a static `/V/{id}` route would shadow the generic `/{indexName}/list` for `V`, so
/// every view gets the whole generic set bound to its name (the get-all views' `/V/list` too).
const ALL_VIEWS: &[&str] = &[
    "BookingListView",
    "MessageThreadView",
    "ReviewDisplayView",
    "PaymentRecordView",
    "disputeDetailView",
    "ReservationDetailView",
    "chatContext",
    "ListingDetailView",
];

/// The engine every search runs on.
const ENGINE: Postgres = Postgres;

/// `indexName`: one of the index names.
struct IndexName;

impl JsonSchema for IndexName {
    fn schema_name() -> Cow<'static, str> {
        "IndexName".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "enum": super::names(),
            "description": "The index: a data object (listing, reservation, review, …) or an aggregated view (BookingListView, ReservationDetailView, …). getIndexSchema lists its fields."
        })
    }
}

/// Reads `indexName`, refusing a name that is not an index while the input is parsed (so the
/// refusal names this field even when others are missing, in the schema's words).
fn known_index_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let name = String::deserialize(d)?;
    if super::names().contains(&name.as_str()) {
        Ok(name)
    } else {
        Err(serde::de::Error::custom(format!(
            "must be one of: {}",
            super::names().join(", ")
        )))
    }
}

/// `asc` or `desc`.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrder {
    /// Smallest first.
    Asc,
    /// Largest first.
    Desc,
}

/// A search of one index.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndexSearch {
    /// The index.
    #[schemars(with = "IndexName")]
    #[serde(deserialize_with = "known_index_name")]
    pub index_name: String,
    /// Page to return (1-based, default 1).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub page: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// A sortable field (see getIndexSchema); default: newest first.
    #[schemars(length(max = 100))]
    pub sort_by: Option<String>,
    /// `asc` or `desc` (default `asc` when sortBy is given).
    pub sort_order: Option<SortOrder>,
    /// Free text: every word must match a searchable field (by prefix), or names and places
    /// match fuzzily.
    #[schemars(length(max = 200))]
    pub q: Option<String>,
    /// Conditions ANDed across fields: `{field: value | [values] | {"$gte": v, "$in": [...]}}`.
    pub filters: Option<Map<String, Value>>,
    /// Also apply one of your saved filters.
    pub filter_id: Option<Uuid>,
}

/// A search of one view (its name is the operation's).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ViewSearch {
    /// Page to return (1-based, default 1).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub page: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
    /// A sortable field (see getIndexSchema); default: newest first.
    #[schemars(length(max = 100))]
    pub sort_by: Option<String>,
    /// `asc` or `desc` (default `asc` when sortBy is given).
    pub sort_order: Option<SortOrder>,
    /// Free text.
    #[schemars(length(max = 200))]
    pub q: Option<String>,
    /// Conditions ANDed across fields, as for searchIndex.
    pub filters: Option<Map<String, Value>>,
    /// Also apply one of your saved filters.
    pub filter_id: Option<Uuid>,
}

impl ViewSearch {
    fn of(self, index: &str) -> IndexSearch {
        IndexSearch {
            index_name: index.to_string(),
            page: self.page,
            limit: self.limit,
            sort_by: self.sort_by,
            sort_order: self.sort_order,
            q: self.q,
            filters: self.filters,
            filter_id: self.filter_id,
        }
    }
}

/// A count of one index.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndexCountInput {
    /// The index.
    #[schemars(with = "IndexName")]
    #[serde(deserialize_with = "known_index_name")]
    pub index_name: String,
    /// Free text, as for searchIndex.
    #[schemars(length(max = 200))]
    pub q: Option<String>,
    /// Conditions, as for searchIndex.
    pub filters: Option<Map<String, Value>>,
    /// Also apply one of your saved filters.
    pub filter_id: Option<Uuid>,
}

/// Names an index.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IndexRef {
    /// The index.
    #[schemars(with = "IndexName")]
    #[serde(deserialize_with = "known_index_name")]
    pub index_name: String,
}

/// One document of an index.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordRef {
    /// The index.
    #[schemars(with = "IndexName")]
    #[serde(deserialize_with = "known_index_name")]
    pub index_name: String,
    /// The document's id.
    pub id: Uuid,
}

/// A page of saved filters.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FiltersPageInput {
    /// The index.
    #[schemars(with = "IndexName")]
    #[serde(deserialize_with = "known_index_name")]
    pub index_name: String,
    /// Page (1-based, default 1).
    #[schemars(range(min = 1, max = 1_000_000))]
    pub page: Option<u32>,
    /// Rows per page (1–100, default 25).
    #[schemars(range(min = 1, max = 100))]
    pub limit: Option<u32>,
}

/// A filter to save: `{filterName, conditions}`, or the view routes' `{filters}` (with an
/// optional `filterName`, or `filters` holding `{filterName, conditions}`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schemars(extend("oneOf" = [
    { "required": ["conditions"], "not": { "required": ["filters"] } },
    { "required": ["filters"], "not": { "required": ["conditions"] } }
]))]
pub struct NewSavedFilter {
    /// The index.
    #[schemars(with = "IndexName")]
    #[serde(deserialize_with = "known_index_name")]
    pub index_name: String,
    /// A name for it (1–200 characters; default "Saved filter").
    #[schemars(length(min = 1, max = 200))]
    pub filter_name: Option<String>,
    /// The `filters` object to save.
    #[serde(default, deserialize_with = "given")]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub conditions: Option<Option<Map<String, Value>>>,
    /// The same, in the shape of the view routes.
    #[serde(default, deserialize_with = "given")]
    #[schemars(with = "Option<Map<String, Value>>")]
    pub filters: Option<Option<Map<String, Value>>>,
}

/// `Some` for a field that was sent, even as `null`: `{"filters": null, "conditions": {…}}` sends
/// both shapes and is refused like any other pair. Anything but an object or `null` is refused
/// while parsing, naming the field like every other wrong kind.
fn given<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<Map<String, Value>>>, D::Error> {
    Option::<Map<String, Value>>::deserialize(d).map(Some)
}

/// The object a saved filter's `field` holds (a sent `null` is refused).
fn object_in(
    field: &str,
    value: Option<Map<String, Value>>,
) -> Result<Map<String, Value>, ToolError> {
    value.ok_or_else(|| ToolError::field(field, "must be an object of conditions"))
}

/// One saved filter.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedFilterRef {
    /// The index.
    #[schemars(with = "IndexName")]
    #[serde(deserialize_with = "known_index_name")]
    pub index_name: String,
    /// The saved filter's id.
    pub filter_id: Uuid,
}

/// A page of documents.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexPage {
    /// The documents (their fields: getIndexSchema).
    pub records: Vec<Map<String, Value>>,
    /// Where this page sits.
    pub paging: Paging,
}

/// A count.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexCount {
    /// The index.
    pub index_name: String,
    /// Matching documents the caller may see.
    pub count: i64,
}

crate::choices!(
    /// The field types of an index schema (see [`super::index::Kind`]).
    FieldTypes = ["text", "id", "enum", "boolean", "integer", "number", "date", "datetime", "idList", "textList", "object"]
);

/// One field of an index, as the schema route shows it.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FieldInfo {
    /// The field's name.
    pub name: String,
    /// Its type, which decides how a filter value matches.
    #[serde(rename = "type")]
    #[schemars(with = "crate::types::Choice<FieldTypes>")]
    pub kind: String,
    /// The allowed values of an enum field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    /// May be null.
    pub nullable: bool,
    /// Filters may name it.
    pub filterable: bool,
    /// sortBy may name it.
    pub sortable: bool,
    /// Free text `q` searches it.
    pub searchable: bool,
    /// The filter operators it takes.
    pub operators: Vec<String>,
    /// What it holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// An index's schema: what a document holds and how it can be searched.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct IndexSchema {
    /// The index.
    pub index_name: String,
    /// What a document is.
    pub about: String,
    /// The operation whose access rule decides who sees which documents.
    pub access_rule_of: String,
    /// Whether free text `q` is supported.
    pub free_text: bool,
    /// The fields.
    pub fields: Vec<FieldInfo>,
    /// The document's JSON Schema (from its output type).
    pub json_schema: Map<String, Value>,
}

/// A page of saved filters.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SavedFilterList {
    /// The filters on this page, newest first.
    pub saved_filters: Vec<SavedFilter>,
    /// Where this page sits.
    pub paging: Paging,
}

fn page_of(page: Option<u32>, limit: Option<u32>) -> Result<Page, ToolError> {
    let rows = limit.unwrap_or(25);
    if !(1..=100).contains(&rows) {
        return Err(ToolError::field("limit", "must be between 1 and 100"));
    }
    let number = page.unwrap_or(1);
    if !(1..=1_000_000).contains(&number) {
        return Err(ToolError::field("page", "must be between 1 and 1000000"));
    }
    Ok(Page { number, rows })
}

fn free_text(q: Option<String>) -> Result<Option<String>, ToolError> {
    let q = q.map(|q| q.trim().to_string()).filter(|q| !q.is_empty());
    if let Some(q) = &q {
        if q.chars().count() > 200 {
            return Err(ToolError::field("q", "must be at most 200 characters"));
        }
    }
    Ok(q)
}

/// The conditions of `filters` plus the saved filter `filter_id`, checked against the fields.
async fn conditions(
    ctx: &Ctx,
    index: &Index,
    fields: &[Field],
    given: Option<&Map<String, Value>>,
    filter_id: Option<Uuid>,
) -> Result<Vec<filters::Cond>, ToolError> {
    let mut conds = match given {
        Some(f) => filters::parse(f, fields, index.name, "filters")?,
        None => Vec::new(),
    };
    if let Some(id) = filter_id {
        let saved = saved::get(ctx, index.name, id).await.map_err(|err| {
            if err.kind == crate::error::ErrorKind::NotFound {
                ToolError::field(
                    "filterId",
                    format!(
                        "you have no saved filter with this id on index `{}`",
                        index.name
                    ),
                )
            } else {
                err
            }
        })?;
        conds.extend(filters::parse(
            &saved.conditions,
            fields,
            index.name,
            "filterId",
        )?);
    }
    Ok(conds)
}

async fn run_search(ctx: Ctx, input: IndexSearch) -> Result<IndexPage, ToolError> {
    search_page(ctx, input, false).await
}

/// `searchIndex` with the page taken by the one-statement query the page-first one replaced
/// (every matching document built, then sorted and cut): the reference the equivalence test
/// compares `searchIndex` with. Not an operation.
#[doc(hidden)]
pub async fn search_index_reference(ctx: Ctx, input: Value) -> Result<Value, ToolError> {
    let input: IndexSearch = crate::registry::parse_input(input)?;
    let page = search_page(ctx, input, true).await?;
    serde_json::to_value(page).map_err(ToolError::internal)
}

/// One page of `input`'s search and the total; `reference` picks [`Query::reference`].
async fn search_page(
    ctx: Ctx,
    input: IndexSearch,
    reference: bool,
) -> Result<IndexPage, ToolError> {
    let index = super::find(&input.index_name)?;
    let fields = index.fields(&ctx).await?;
    let page = page_of(input.page, input.limit)?;
    let sort = match &input.sort_by {
        Some(name) => {
            let field = filters::sort_field(&fields, index.name, name)?;
            let desc = matches!(input.sort_order, Some(SortOrder::Desc));
            field.column.clone().map(|c| (c, desc))
        }
        None => input.sort_order.map(|order| {
            (
                index.default_sort.0.to_string(),
                matches!(order, SortOrder::Desc),
            )
        }),
    };
    let query = Query {
        conds: conditions(
            &ctx,
            index,
            &fields,
            input.filters.as_ref(),
            input.filter_id,
        )
        .await?,
        q: free_text(input.q)?,
        sort,
        limit: page.limit(),
        offset: page.offset(),
        reference,
    };
    let total = ENGINE.count(&ctx, index, &query).await?;
    let records = ENGINE
        .list(&ctx, index, &query)
        .await?
        .into_iter()
        .filter_map(|v| match v {
            Value::Object(map) => Some(map),
            _ => None,
        })
        .collect();
    Ok(IndexPage {
        records,
        paging: page.paging(total),
    })
}

async fn count_index(ctx: Ctx, input: IndexCountInput) -> Result<IndexCount, ToolError> {
    let index = super::find(&input.index_name)?;
    let fields = index.fields(&ctx).await?;
    let query = Query {
        conds: conditions(
            &ctx,
            index,
            &fields,
            input.filters.as_ref(),
            input.filter_id,
        )
        .await?,
        q: free_text(input.q)?,
        ..Query::default()
    };
    Ok(IndexCount {
        index_name: index.name.to_string(),
        count: ENGINE.count(&ctx, index, &query).await?,
    })
}

async fn index_schema(ctx: Ctx, input: IndexRef) -> Result<IndexSchema, ToolError> {
    let index = super::find(&input.index_name)?;
    let fields = index.fields(&ctx).await?;
    Ok(IndexSchema {
        index_name: index.name.to_string(),
        about: index.about.to_string(),
        access_rule_of: index.owner.to_string(),
        free_text: index.search.is_some(),
        fields: fields
            .iter()
            .map(|f| FieldInfo {
                name: f.name.clone(),
                kind: f.kind.as_str().to_string(),
                values: match &f.kind {
                    super::index::Kind::Enum(values) => Some(values.clone()),
                    _ => None,
                },
                nullable: f.nullable,
                filterable: f.filterable(),
                sortable: f.sortable(),
                searchable: f.searchable,
                operators: if f.filterable() {
                    f.kind.operators().iter().map(|s| s.to_string()).collect()
                } else {
                    Vec::new()
                },
                description: f.description.clone(),
            })
            .collect(),
        json_schema: index.schema.clone(),
    })
}

async fn get_record(ctx: Ctx, input: RecordRef) -> Result<Map<String, Value>, ToolError> {
    let index = super::find(&input.index_name)?;
    match ENGINE.get(&ctx, index, input.id).await? {
        Some(Value::Object(map)) => Ok(map),
        _ => Err(ToolError::not_found(index.name)),
    }
}

async fn list_filters(ctx: Ctx, input: FiltersPageInput) -> Result<SavedFilterList, ToolError> {
    let index = super::find(&input.index_name)?;
    let page = page_of(input.page, input.limit)?;
    let (saved_filters, total) = saved::page(&ctx, index.name, page.limit(), page.offset()).await?;
    Ok(SavedFilterList {
        saved_filters,
        paging: page.paging(total),
    })
}

async fn create_filter(ctx: Ctx, input: NewSavedFilter) -> Result<SavedFilter, ToolError> {
    let index = super::find(&input.index_name)?;
    ctx.caller()?;
    let mut name = input.filter_name;
    let conditions =
        match (input.conditions, input.filters) {
            (Some(c), None) => object_in("conditions", c)?,
            (None, Some(f)) => {
                let mut f = object_in("filters", f)?;
                // `{filters: {filterName, conditions}}` is the spec's example nested in `filters`.
                match (f.remove("conditions"), f.is_empty()) {
                    (Some(Value::Object(c)), _) => {
                        if let Some(Value::String(n)) = f.remove("filterName") {
                            name = name.or(Some(n));
                        }
                        if let Some(key) = f.keys().next() {
                            return Err(ToolError::field(
                                format!("filters.{key}"),
                                "next to `conditions` only `filterName` is allowed",
                            ));
                        }
                        c
                    }
                    (Some(_), _) => {
                        return Err(ToolError::field(
                            "filters.conditions",
                            "must be an object of conditions",
                        ))
                    }
                    (None, _) => f,
                }
            }
            (Some(_), Some(_)) => {
                return Err(ToolError::field(
                    "filters",
                    "send either `conditions` or `filters`, not both",
                ))
            }
            (None, None) => return Err(ToolError::field(
                "conditions",
                "is required: the filters object to save, e.g. {\"bookingStatus\": \"confirmed\"}",
            )),
        };
    let name = name.map(|n| n.trim().to_string()).unwrap_or_default();
    let name = if name.is_empty() {
        "Saved filter".to_string()
    } else if name.chars().count() > 200 {
        return Err(ToolError::field(
            "filterName",
            "must be at most 200 characters",
        ));
    } else {
        name
    };
    let fields = index.fields(&ctx).await?;
    filters::parse(&conditions, &fields, index.name, "conditions")?;
    saved::insert(&ctx, index.name, &name, &conditions).await
}

async fn delete_filter(ctx: Ctx, input: SavedFilterRef) -> Result<SavedFilter, ToolError> {
    let index = super::find(&input.index_name)?;
    saved::delete(&ctx, index.name, input.filter_id).await
}

/// The rule every search follows, for the descriptions.
const WHO: &str = "anyone for public data (published listings, public reviews and aggregates); logged-in users also see their own rows (reservations they are guest or host of, their drafts, their reviews, the conversations they take part in and their messages, except deleted or moderated ones); admins see everything";

/// The routes of `suffix` (`/list`, `/count`, …) bound to each full view.
fn bound(method: Method, suffix: &str, views: &[&str], id: &str) -> Vec<Route> {
    views
        .iter()
        .map(|view| {
            Route::new(
                method,
                format!("{PREFIX}/{view}{suffix}"),
                format!("{id}{view}"),
            )
            .bind("indexName", *view)
        })
        .collect()
}

fn with_routes(
    mut op: crate::registry::OperationBuilder,
    routes: Vec<Route>,
) -> crate::registry::OperationBuilder {
    for route in routes {
        op = op.route(route);
    }
    op
}

/// The search operations.
pub fn operations() -> Vec<Operation> {
    let indexes = super::names().join(", ");
    let mut ops = vec![
        with_routes(Operation::build("searchIndex", Service::Search), {
            let mut r = vec![Route::new(Method::Get, format!("{PREFIX}/{{indexName}}/list"), "Get")];
            r.extend(bound(Method::Post, "/list", LIST_VIEWS, ""));
            r.extend(bound(Method::Get, "/list", LIST_VIEWS, "Get"));
            r
        })
        .title("Search an index")
        .describe(&format!("Searches one index of the read side and returns a page of documents. Indexes: {indexes}. Give `q` for free text (every word must match a searchable field by prefix; names and places also match with typos) and/or `filters` ({{field: value}} — text matches partially and case-insensitively, ids/enums/numbers/dates exactly; a list means any of; operators {{\"$gte\": 100, \"$lt\": 200}}, $in, $nin, $ne, $btw [min,max], $like with * wildcards, $null; the conventions' strings \"$gte-100\", \"$btw-2026-01-01-2026-02-01\", \"$today\", \"null\" also work). sortBy/sortOrder order by a sortable field; page/limit page (default 1/25, at most 100). Call getIndexSchema first to learn an index's fields. You only ever see what the owning get operation would show you."))
        .rest(Method::Post, "/bff-api/v1/{indexName}/list")
        .access(Access::Public)
        .who(WHO)
        .reads(Action::List, "records")
        .handler(run_search),
        with_routes(Operation::build("countIndex", Service::Search), {
            let mut r = vec![Route::new(Method::Get, format!("{PREFIX}/{{indexName}}/count"), "Get")];
            r.extend(bound(Method::Post, "/count", ALL_VIEWS, ""));
            r.extend(bound(Method::Get, "/count", ALL_VIEWS, "Get"));
            r
        })
        .title("Count an index")
        .describe("Counts the documents of one index that match `q` and `filters` (same syntax as searchIndex) among those you may see. Returns {indexName, count}.")
        .rest(Method::Post, "/bff-api/v1/{indexName}/count")
        .access(Access::Public)
        .who(WHO)
        .reads(Action::Get, "count")
        .envelope(Envelope::Fields)
        .handler(count_index),
        with_routes(Operation::build("getIndexSchema", Service::Search), bound(Method::Get, "/schema", ALL_VIEWS, ""))
        .title("Describe an index")
        .describe("Describes one index: what a document is, whose access rule applies, and every field with its type (enum values listed), whether it is filterable, sortable and searchable by free text, and the filter operators it takes; plus the document's JSON Schema. Use it before searchIndex.")
        .rest(Method::Get, "/bff-api/v1/{indexName}/schema")
        .access(Access::Public)
        .reads(Action::Get, "schema")
        .handler(index_schema),
        with_routes(Operation::build("listSavedFilters", Service::Search), bound(Method::Get, "/filters", ALL_VIEWS, ""))
        .title("List your saved filters")
        .describe("Lists your saved filters of one index, newest first (page/limit). Apply one with searchIndex's filterId.")
        .rest(Method::Get, "/bff-api/v1/{indexName}/filters")
        .access(Access::Authenticated)
        .who("any logged-in user, for their own saved filters")
        .reads(Action::List, "savedFilters")
        .handler(list_filters),
        with_routes(Operation::build("createSavedFilter", Service::Search), bound(Method::Post, "/filters", ALL_VIEWS, ""))
        .title("Save a filter")
        .describe("Saves a named filter for one index: send {filterName, conditions} (conditions in searchIndex's filters syntax, checked against the index's fields) or {filters} (the view routes' shape). Only you see and use it. Returns the saved filter with its id.")
        .rest(Method::Post, "/bff-api/v1/{indexName}/filters")
        .access(Access::Authenticated)
        .who("any logged-in user, for themself")
        .creates("savedFilter")
        .handler(create_filter),
        with_routes(Operation::build("deleteSavedFilter", Service::Search), bound(Method::Delete, "/filters/{filterId}", ALL_VIEWS, ""))
        .title("Delete a saved filter")
        .describe("Deletes one of your saved filters (another user's is not found). Returns its last state.")
        .rest(Method::Delete, "/bff-api/v1/{indexName}/filters/{filterId}")
        .access(Access::Authenticated)
        .who("the filter's owner")
        .deletes("savedFilter")
        .handler(delete_filter),
        with_routes(Operation::build("getIndexRecord", Service::Search), bound(Method::Get, "/{id}", ALL_VIEWS, ""))
        .title("Get one document of an index")
        .describe("Returns one document of an index by id (a listing, a reservation, a BookingListView row, a ReservationDetailView, …), if you may see it; otherwise 404, whether or not it exists.")
        .rest(Method::Get, "/bff-api/v1/{indexName}/{id}")
        .access(Access::Public)
        .who(WHO)
        .reads(Action::Get, "record")
        .handler(get_record),
    ];
    for view in super::views::all() {
        ops.push(view_operation(view.name, view.about));
    }
    ops
}

/// Each view's list operation: (view, operation name, main path, full route set).
const VIEW_OPS: &[(&str, &str, &str, bool)] = &[
    (
        "BookingListView",
        "listBookingListView",
        "/bff-api/v1/BookingListView",
        false,
    ),
    (
        "ReviewDisplayView",
        "listReviewDisplayView",
        "/bff-api/v1/ReviewDisplayView",
        false,
    ),
    (
        "PaymentRecordView",
        "listPaymentRecordView",
        "/bff-api/v1/PaymentRecordView",
        false,
    ),
    (
        "disputeDetailView",
        "listDisputeDetailView",
        "/bff-api/v1/disputeDetailView",
        false,
    ),
    (
        "ReservationDetailView",
        "listReservationDetailView",
        "/bff-api/v1/ReservationDetailView/list",
        true,
    ),
    (
        "MessageThreadView",
        "listMessageThreadView",
        "/bff-api/v1/MessageThreadView",
        false,
    ),
    (
        "chatContext",
        "listChatContext",
        "/bff-api/v1/chatContext/list",
        true,
    ),
    (
        "ListingDetailView",
        "listListingDetailView",
        "/bff-api/v1/ListingDetailView/list",
        true,
    ),
];

/// The one list operation of a view: `GET /V` for the get-all views, `POST|GET /I/list` for the
/// full ones.
fn view_operation(name: &'static str, about: &'static str) -> Operation {
    let Some(&(_, op_name, path, full)) = VIEW_OPS.iter().find(|v| v.0 == name) else {
        panic!("view {name} has no operation declared in VIEW_OPS");
    };
    let description = format!(
        "Lists {about} (the {name} view), a page at a time, each row joined in one query. Same q, filters, sortBy/sortOrder and page/limit as searchIndex (getIndexSchema with indexName {name} lists the fields). Get one row with getIndexRecord (indexName {name}). You only see rows the owning operation ({owner}) would show you.",
        owner = super::find(name).map(|i| i.owner).unwrap_or("its get operation"),
    );
    let mut op = Operation::build(op_name, Service::Search)
        .title(name)
        .describe(&description)
        .access(Access::Public)
        .who(WHO)
        .reads(Action::List, "records");
    op = if full {
        op.rest(Method::Post, path)
            .route(Route::new(Method::Get, path, "Get"))
    } else {
        op.rest(Method::Get, path)
    };
    op.handler(move |ctx: Ctx, input: ViewSearch| run_search(ctx, input.of(name)))
}
